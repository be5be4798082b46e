"""The shared create loop: a lost answer is looked up, never re-sent blindly, and every
task gets an outcome even when every attempt stays ambiguous."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.creates import create_once
from connectors.errors import AmbiguousWriteError
from scoring.records import Crm
from scoring.writes import HandoffTask, OutcomeStatus, Priority


def task(n: int) -> HandoffTask:
    return HandoffTask(
        crm="hubspot", key=f"k{n}", contact_id=str(n), owner_id=None, subject="s", body="b",
        due_at=datetime(2026, 11, 1, tzinfo=UTC), priority=Priority.HIGH,
    )  # fmt: skip


class FlakyCrm:
    """Answers are lost (after landing, for the tasks in `lands`) `lose` times."""

    def __init__(self, lose: int, lands: set[str]) -> None:
        self.lose = lose
        self.lands = lands
        self.stored: dict[str, str] = {}
        self.sent: list[list[str]] = []

    def send(self, pending, attempt):
        self.sent.append([t.key for t in pending])
        for t in pending:
            if self.lose == 0 or t.key in self.lands:
                self.stored.setdefault(t.key, f"id-{t.key}")
        if self.lose > 0:
            self.lose -= 1
            raise AmbiguousWriteError("connection reset after sending")
        from connectors.common import ok

        return {t.key: ok(Crm.HUBSPOT, t.key, self.stored[t.key], attempt) for t in pending}, []

    def find(self, keys):
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
