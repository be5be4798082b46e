"""Creating records that must not exist twice: the one loop both connectors use.

A create whose answer was lost may have landed (or may still land): it is never sent
again blindly. The records are looked up by their idempotency key after a short settle,
and only those not found are sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from connectors.common import chunks, failed, ok
from connectors.errors import AmbiguousWriteError, ConnectorError
from scoring.records import Crm
from scoring.writes import HandoffTask, WriteOutcome

# One attempt: the outcomes it settled, and the tasks worth sending again.
SendAttempt = Callable[[list[HandoffTask], int], tuple[dict[str, WriteOutcome], list[HandoffTask]]]


def create_in_batches(
    crm: Crm,
    tasks: Sequence[HandoffTask],
    batch_size: int,
    send: SendAttempt,
    find: Callable[[list[str]], dict[str, str]],
    attempts: int,
    settle_s: float,
) -> list[WriteOutcome]:
    """One outcome per task, in order: batches of `batch_size`, each made `create_once`."""
    outcomes: dict[str, WriteOutcome] = {}
    for batch in chunks(list(tasks), batch_size):
        outcomes.update(create_once(crm, batch, send, find, attempts, settle_s))
    return [outcomes[task.key] for task in tasks]


def create_once(
    crm: Crm,
    tasks: Sequence[HandoffTask],
    send: SendAttempt,
    find: Callable[[list[str]], dict[str, str]],
    attempts: int,
    settle_s: float,
) -> dict[str, WriteOutcome]:
    """Outcomes by task key, one for every task, whatever happened.

    Nothing raises out of here: by now the stages have moved and the claims are held, so
    every task needs an outcome its caller can record (a failed one keeps its claim for
    the next attempt, which looks the task up before creating it).
    """
    outcomes: dict[str, WriteOutcome] = {}
    pending = list(tasks)
    for attempt in range(1, attempts + 1):
        try:
            settled, retry = send(pending, attempt)
        except AmbiguousWriteError as exc:
            time.sleep(settle_s)
            try:
                found = find([t.key for t in pending])
            except ConnectorError as lookup:
                for task in pending:
                    outcomes[task.key] = failed(
                        crm, task.key, f"not known to be created: {exc}; lookup: {lookup}", attempt
                    )
                break
            for task in pending:
                if task.key in found:
                    outcomes[task.key] = ok(crm, task.key, found[task.key], attempt)
                else:
                    # Stays the outcome if no later attempt settles it.
                    outcomes[task.key] = failed(
                        crm, task.key, f"not known to be created: {exc}", attempt
                    )
            pending = [t for t in pending if t.key not in found]
            if not pending:
                break
            continue
        except ConnectorError as exc:
            # Refused (auth, validation, a whole-batch error) or still failing after the
            # retry policy: the CRM said no, so nothing was created.
            for task in pending:
                outcomes[task.key] = failed(crm, task.key, exc.message, attempt)
            break
        outcomes.update(settled)
        if not retry:
            break
        pending = retry
    return outcomes
