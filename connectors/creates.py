"""Creating records that must not exist twice: the one loop both connectors use.

A create whose answer was lost (or was a 5xx) may have landed, or may still land: it is
never sent again blindly. The records are looked up by their idempotency key at once;
those not found are looked up again once `settle_s` has passed since the failure (a
request the client gave up on may still be processed, and a CRM's search index lags its
writes by seconds), and only those still not found are sent again.

A batch refused as a whole (`BatchRejected`: HubSpot validates every input of a batch
before creating any) is split in halves until the refused records stand alone, so that
one bad input costs only its own record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from connectors.common import chunks, failed, ok
from connectors.errors import AmbiguousWriteError, BatchRejected, ConnectorError
from scoring.records import Crm
from scoring.writes import HandoffTask, WriteOutcome

# One attempt: the outcomes it settled, and the tasks worth sending again.
SendAttempt = Callable[[list[HandoffTask], int], tuple[dict[str, WriteOutcome], list[HandoffTask]]]
Find = Callable[[list[str]], dict[str, str]]


def create_in_batches(
    crm: Crm,
    tasks: Sequence[HandoffTask],
    batch_size: int,
    send: SendAttempt,
    find: Find,
    attempts: int,
    settle_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[WriteOutcome]:
    """One outcome per task, in order: batches of `batch_size`, each made `create_once`."""
    outcomes: dict[str, WriteOutcome] = {}
    for batch in chunks(list(tasks), batch_size):
        outcomes.update(
            create_once(crm, batch, send, find, attempts, settle_s, clock=clock, sleep=sleep)
        )
    return [outcomes[task.key] for task in tasks]


def create_once(
    crm: Crm,
    tasks: Sequence[HandoffTask],
    send: SendAttempt,
    find: Find,
    attempts: int,
    settle_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, WriteOutcome]:
    """Outcomes by task key, one for every task, whatever happened.

    Nothing raises out of here: by now the stages have moved and the claims are held, so
    every task needs an outcome its caller can record (a failed one keeps its claim for
    the next attempt, which looks the task up before creating it).
    """
    return _Creator(crm, send, find, attempts, settle_s, clock, sleep).run(list(tasks), 1)


class _Creator:
    def __init__(
        self,
        crm: Crm,
        send: SendAttempt,
        find: Find,
        attempts: int,
        settle_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.crm = crm
        self.send = send
        self.find = find
        self.attempts = attempts
        self.settle_s = settle_s
        self.clock = clock
        self.sleep = sleep

    def run(self, tasks: list[HandoffTask], first: int) -> dict[str, WriteOutcome]:
        """Send `tasks` until each is settled or the attempts run out; `first` counts sends."""
        outcomes: dict[str, WriteOutcome] = {}
        pending = tasks
        for attempt in range(first, first + self.attempts):
            try:
                settled, retry = self.send(pending, attempt)
            except AmbiguousWriteError as exc:
                failed_at = self.clock()
                try:
                    found = self._look_up(pending, failed_at)
                except ConnectorError as lookup:
                    for task in pending:
                        outcomes[task.key] = self._failed(
                            task, f"not known to be created: {exc}; lookup: {lookup}", attempt
                        )
                    break
                for task in pending:
                    if task.key in found:
                        outcomes[task.key] = ok(self.crm, task.key, found[task.key], attempt)
                    else:
                        # Stays the outcome if no later attempt settles it.
                        outcomes[task.key] = self._failed(
                            task, f"not known to be created: {exc}", attempt
                        )
                pending = [t for t in pending if t.key not in found]
                if not pending:
                    break
                continue
            except BatchRejected as exc:
                if len(pending) == 1:
                    outcomes[pending[0].key] = self._failed(pending[0], exc.message, attempt)
                else:
                    # The CRM names no record: halve until the refused ones stand alone.
                    # Nothing of a refused batch was created, so no lookup is needed.
                    middle = len(pending) // 2
                    for half in (pending[:middle], pending[middle:]):
                        outcomes.update(self.run(half, attempt + 1))
                break
            except ConnectorError as exc:
                # Refused (auth, a spent budget) or still failing after the retry policy:
                # the CRM said no, so nothing was created.
                for task in pending:
                    outcomes[task.key] = self._failed(task, exc.message, attempt)
                break
            outcomes.update(settled)
            if not retry:
                break
            pending = retry
        return outcomes

    def _look_up(self, pending: list[HandoffTask], failed_at: float) -> dict[str, str]:
        """Ids of the pending tasks the CRM has, trusting a "not found" only after the lag."""
        keys = [t.key for t in pending]
        searched_at = self.clock()
        found = self.find(keys)
        missing = [k for k in keys if k not in found]
        if missing and searched_at < failed_at + self.settle_s:
            wait = failed_at + self.settle_s - self.clock()
            if wait > 0:
                self.sleep(wait)
            found.update(self.find(missing))
        return found

    def _failed(self, task: HandoffTask, message: str, attempt: int) -> WriteOutcome:
        text = f"task {task.key} for contact {task.contact_id}: {message}"
        return failed(self.crm, task.key, text, attempt)
