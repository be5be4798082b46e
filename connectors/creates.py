"""Creating records that must not exist twice: the one loop both connectors use.

A create whose answer was lost (or was a 5xx) may have landed, or may still land: it is
never sent again blindly. The records are looked up by their idempotency key at once;
those not found are looked up again once `settle_s` has passed since the failure (a
request the client gave up on may still be processed, and a CRM's search index lags its
writes by seconds), and only those still not found are sent again.

A batch refused as a whole (`BatchRejected`: HubSpot validates every input of a batch
before creating any) is split in halves until the refused records stand alone, so that
one bad input costs only its own record. Records an answer marks retriable (a 207's
rate-limited part) are sent again after a backoff (`connectors.retry.retry_partial`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from connectors.common import chunks, failed, ok
from connectors.errors import AmbiguousWriteError, BatchRejected, ConnectorError
from connectors.retry import PartialAnswer, RetryPolicy, retry_partial
from scoring.records import Crm
from scoring.writes import HandoffTask, WriteOutcome

# One attempt: the outcomes it settled, and the tasks worth sending again.
SendAttempt = Callable[[list[HandoffTask], int], tuple[dict[str, WriteOutcome], list[HandoffTask]]]
Find = Callable[[list[str]], dict[str, str]]
Attempt = PartialAnswer[str, WriteOutcome, WriteOutcome]


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
    backoff: RetryPolicy | None = None,
) -> list[WriteOutcome]:
    """One outcome per task, in order: batches of `batch_size`, each made `create_once`."""
    outcomes: dict[str, WriteOutcome] = {}
    for batch in chunks(list(tasks), batch_size):
        outcomes.update(
            create_once(
                crm,
                batch,
                send,
                find,
                attempts,
                settle_s,
                clock=clock,
                sleep=sleep,
                backoff=backoff,
            )
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
    backoff: RetryPolicy | None = None,
) -> dict[str, WriteOutcome]:
    """Outcomes by task key, one for every task, whatever happened.

    Nothing raises out of here: by now the stages have moved and the claims are held, so
    every task needs an outcome its caller can record (a failed one keeps its claim for
    the next attempt, which looks the task up before creating it).

    `attempts` sends at most per task; `backoff` (a connector's retry policy) spaces the
    re-sends of tasks an answer marked retriable (default: `RetryPolicy`'s).
    """
    # The number of attempts is the caller's; only the waits come from the policy.
    policy = (backoff or RetryPolicy()).model_copy(update={"max_attempts": attempts})
    return _Creator(crm, send, find, policy, settle_s, clock, sleep).run(list(tasks), 1)


class _Creator:
    def __init__(
        self,
        crm: Crm,
        send: SendAttempt,
        find: Find,
        policy: RetryPolicy,
        settle_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.crm = crm
        self.send = send
        self.find = find
        self.policy = policy
        self.settle_s = settle_s
        self.clock = clock
        self.sleep = sleep

    def run(self, tasks: list[HandoffTask], first: int) -> dict[str, WriteOutcome]:
        """Send `tasks` until each is settled or the attempts run out; `first` counts sends."""
        result = retry_partial(
            self._attempt,
            {task.key: task for task in tasks},
            self.policy,
            what=f"{self.crm.value} tasks create",
            first_attempt=first,
            sleep=self.sleep,
        )
        # A task still failing keeps the failure its last attempt ended with.
        return {**result.settled, **result.failing}

    def _attempt(self, pending: dict[str, HandoffTask], attempt: int) -> Attempt:
        """One send of the pending tasks, read as a partial answer."""
        tasks = list(pending.values())
        try:
            settled, retry = self.send(tasks, attempt)
        except AmbiguousWriteError as exc:
            return self._after_ambiguous(tasks, exc, attempt)
        except BatchRejected as exc:
            if len(tasks) == 1:
                return PartialAnswer(
                    settled={tasks[0].key: self._failed(tasks[0], exc.message, attempt)}
                )
            # The CRM names no record: halve until the refused ones stand alone. Nothing
            # of a refused batch was created, so no lookup is needed.
            middle = len(tasks) // 2
            halves: dict[str, WriteOutcome] = {}
            for half in (tasks[:middle], tasks[middle:]):
                halves.update(self.run(half, attempt + 1))
            return PartialAnswer(settled=halves)
        except ConnectorError as exc:
            # Refused (auth, a spent budget) or still failing after the retry policy:
            # the CRM said no, so nothing was created.
            return PartialAnswer(
                settled={t.key: self._failed(t, exc.message, attempt) for t in tasks}
            )
        again = {t.key for t in retry}
        return PartialAnswer(
            settled={k: o for k, o in settled.items() if k not in again},
            retriable={
                t.key: settled.get(t.key) or self._failed(t, "not created", attempt) for t in retry
            },
        )

    def _after_ambiguous(
        self, tasks: list[HandoffTask], exc: AmbiguousWriteError, attempt: int
    ) -> Attempt:
        """Tasks found settled; the others to send again, failed if no attempt is left."""
        failed_at = self.clock()
        try:
            found = self._look_up(tasks, failed_at)
        except ConnectorError as lookup:
            return PartialAnswer(
                settled={
                    t.key: self._failed(
                        t, f"not known to be created: {exc}; lookup: {lookup}", attempt
                    )
                    for t in tasks
                }
            )
        return PartialAnswer(
            settled={
                t.key: ok(self.crm, t.key, found[t.key], attempt) for t in tasks if t.key in found
            },
            retriable={
                t.key: self._failed(t, f"not known to be created: {exc}", attempt)
                for t in tasks
                if t.key not in found
            },
            # The lookup has waited out the CRM's lag (`settle_s`) already: what it did
            # not find is sent again without a further wait.
            retry_after=0.0,
        )

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
