"""The shared create loop: a lost answer is looked up, never re-sent blindly, and every
task gets an outcome even when every attempt stays ambiguous."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.creates import create_once
from connectors.errors import AmbiguousWriteError
from scoring.records import Crm
from scoring.writes import HandoffTask, OutcomeStatus, Priority, WriteOutcome
from tests.connectors.clock import Clock

Attempt = tuple[dict[str, WriteOutcome], list[HandoffTask]]


def task(n: int) -> HandoffTask:
    return HandoffTask(
        crm=Crm.HUBSPOT, key=f"k{n}", contact_id=str(n), owner_id=None, subject="s", body="b",
        due_at=datetime(2026, 11, 1, tzinfo=UTC), priority=Priority.HIGH,
    )  # fmt: skip


class FlakyCrm:
    """Answers are lost (after landing, for the tasks in `lands`) `lose` times."""

    def __init__(self, lose: int, lands: set[str]) -> None:
        self.lose = lose
        self.lands = lands
        self.stored: dict[str, str] = {}
        self.sent: list[list[str]] = []

    def send(self, pending: list[HandoffTask], attempt: int) -> Attempt:
        self.sent.append([t.key for t in pending])
        for t in pending:
            if self.lose == 0 or t.key in self.lands:
                self.stored.setdefault(t.key, f"id-{t.key}")
        if self.lose > 0:
            self.lose -= 1
            raise AmbiguousWriteError("connection reset after sending")
        from connectors.common import ok

        return {t.key: ok(Crm.HUBSPOT, t.key, self.stored[t.key], attempt) for t in pending}, []

    def find(self, keys: list[str]) -> dict[str, str]:
        return {k: v for k, v in self.stored.items() if k in keys}


def test_only_what_did_not_land_is_sent_again() -> None:
    crm = FlakyCrm(lose=1, lands={"k1"})
    outcomes = create_once(Crm.HUBSPOT, [task(1), task(2)], crm.send, crm.find, 5, 0)
    assert crm.sent == [["k1", "k2"], ["k2"]]
    assert {k: o.status for k, o in outcomes.items()} == {
        "k1": OutcomeStatus.OK,
        "k2": OutcomeStatus.OK,
    }
    assert len(crm.stored) == 2


def test_every_task_has_an_outcome_when_all_attempts_are_ambiguous() -> None:
    crm = FlakyCrm(lose=10, lands=set())
    outcomes = create_once(Crm.HUBSPOT, [task(1), task(2)], crm.send, crm.find, 3, 0)
    assert set(outcomes) == {"k1", "k2"}
    assert all(o.status is OutcomeStatus.FAILED for o in outcomes.values())
    assert "not known to be created" in (outcomes["k1"].message or "")


class LaggingCrm(FlakyCrm):
    """Creates land, but the search finds them only `lag` seconds after they did."""

    def __init__(self, lose: int, lands: set[str], clock: Clock, lag: float) -> None:
        super().__init__(lose, lands)
        self.clock = clock
        self.lag = lag
        self.landed_at: dict[str, float] = {}
        self.searches: list[list[str]] = []

    def send(self, pending: list[HandoffTask], attempt: int) -> Attempt:
        for t in pending:
            if self.lose == 0 or t.key in self.lands:
                self.landed_at.setdefault(t.key, self.clock())
        return super().send(pending, attempt)

    def find(self, keys: list[str]) -> dict[str, str]:
        self.searches.append(list(keys))
        visible = {k for k, at in self.landed_at.items() if at + self.lag <= self.clock()}
        return {k: v for k, v in self.stored.items() if k in keys and k in visible}


def test_a_lost_create_is_not_sent_again_before_the_search_index_caught_up() -> None:
    clock = Clock()
    crm = LaggingCrm(lose=1, lands={"k1", "k2"}, clock=clock, lag=3.0)
    outcomes = create_once(
        Crm.HUBSPOT, [task(1), task(2)], crm.send, crm.find, 5, 5.0,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    # Searched at once (inside the lag: nothing seen), then once the window had passed.
    assert crm.searches == [["k1", "k2"], ["k1", "k2"]]
    assert clock.slept == [5.0]
    assert crm.sent == [["k1", "k2"]], "a create that landed was sent again"
    assert {o.status for o in outcomes.values()} == {OutcomeStatus.OK}
    assert len(crm.stored) == 2


def test_a_lookup_that_finds_everything_at_once_does_not_wait() -> None:
    clock = Clock()
    crm = LaggingCrm(lose=1, lands={"k1"}, clock=clock, lag=0.0)
    outcomes = create_once(
        Crm.HUBSPOT, [task(1)], crm.send, crm.find, 5, 5.0, clock=clock, sleep=clock.sleep
    )
    assert clock.slept == []
    assert crm.searches == [["k1"]]
    assert outcomes["k1"].status is OutcomeStatus.OK


class PickyCrm:
    """Refuses a whole batch (as HubSpot does) when any of its tasks is in `bad`."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.sent: list[list[str]] = []
        self.stored: dict[str, str] = {}

    def send(self, pending: list[HandoffTask], attempt: int) -> Attempt:
        from connectors.common import ok
        from connectors.errors import BatchRejected

        keys = [t.key for t in pending]
        self.sent.append(keys)
        if self.bad & set(keys):
            raise BatchRejected(
                "HubSpot: HTTP 400 VALIDATION_ERROR: owner 7 is deactivated", status=400
            )
        for k in keys:
            self.stored[k] = f"id-{k}"
        return {k: ok(Crm.HUBSPOT, k, self.stored[k], attempt) for k in keys}, []

    def find(self, keys: list[str]) -> dict[str, str]:
        raise AssertionError("a refused batch created nothing: no lookup is needed")


def test_a_batch_refused_for_one_task_is_split_until_that_task_stands_alone() -> None:
    crm = PickyCrm(bad={"k6"})
    tasks = [task(n) for n in range(1, 11)]
    outcomes = create_once(Crm.HUBSPOT, tasks, crm.send, crm.find, 3, 0)
    assert set(outcomes) == {t.key for t in tasks}
    assert set(crm.stored) == {t.key for t in tasks} - {"k6"}
    bad = outcomes["k6"]
    assert bad.status is OutcomeStatus.FAILED
    assert "k6" in (bad.message or "") and "owner 7 is deactivated" in (bad.message or "")
    assert "contact 6" in (bad.message or "")
    assert all(outcomes[t.key].status is OutcomeStatus.OK for t in tasks if t.key != "k6")
    # Halving: about 2·log2(n) requests, never one per task.
    assert len(crm.sent) <= 1 + 2 * 4
    assert ["k6"] in crm.sent


def test_a_refused_single_task_is_that_tasks_failure() -> None:
    crm = PickyCrm(bad={"k1"})
    outcomes = create_once(Crm.HUBSPOT, [task(1)], crm.send, crm.find, 3, 0)
    assert crm.sent == [["k1"]]
    assert outcomes["k1"].status is OutcomeStatus.FAILED
