"""The store on SQLite and PostgreSQL: mirror upserts, cursors, scores, claims, audit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from scoring.records import Activity, Contact, Crm, LifecycleStage
from scoring.writes import HandoffTask, Priority, WrittenStateChange
from store import audit, cursors, handoffs, mirror, scores
from store.audit import AuditEvent
from store.tables import ActivityRow, ContactRow

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def contact(i: int, **fields: object) -> Contact:
    return Contact(crm="hubspot", crm_id=str(i), email=f"p{i}@x.io", **fields)


def activity(i: int, contact_id: str, **fields: object) -> Activity:
    return Activity(
        crm="hubspot",
        crm_id=f"a{i}",
        contact_id=contact_id,
        type="page_view",
        occurred_at=NOW - timedelta(hours=i),
        **fields,
    )


def count_rows(engine: Engine, table: type[SQLModel]) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_migrations_match_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_contacts_upsert_by_crm_and_id(engine: Engine) -> None:
    mirror.upsert_contacts(engine, [contact(1, job_title="Engineer"), contact(2)], NOW)
    mirror.upsert_contacts(
        engine, [contact(1, job_title="VP", properties={"seats": 40}), contact(3)], NOW
    )
    assert count_rows(engine, ContactRow) == 3
    (one,) = mirror.load_contacts(engine, Crm.HUBSPOT, ["1"])
    assert one.job_title == "VP" and one.properties == {"seats": 40}


def test_activities_round_trip_with_attributes(engine: Engine) -> None:
    acts = [
        activity(1, "1", url="/pricing", attributes={"referrer": "g2"}),
        activity(2, "1", asset="Guide", asset_type="ebook"),
        activity(3, "2"),
    ]
    mirror.upsert_activities(engine, acts)
    mirror.upsert_activities(engine, acts[:1])  # a re-read page adds nothing
    assert count_rows(engine, ActivityRow) == 3
    loaded = mirror.load_activities(engine, Crm.HUBSPOT, ["1", "2"])
    by_id = {a.crm_id: a for group in loaded.values() for a in group}
    assert by_id["a1"] == acts[0] and by_id["a2"] == acts[1]
    assert by_id["a1"].occurred_at.tzinfo is not None


def test_deleted_contacts_are_not_loaded(engine: Engine) -> None:
    mirror.upsert_contacts(engine, [contact(1), contact(2)], NOW)
    assert mirror.mark_deleted(engine, Crm.HUBSPOT, ["2"]) == 1
    assert [c.crm_id for c in mirror.load_contacts(engine, Crm.HUBSPOT)] == ["1"]


def test_find_contact_by_id_or_email(engine: Engine) -> None:
    mirror.upsert_contacts(engine, [contact(7)], NOW)
    found = mirror.find_contact(engine, "P7@X.IO")
    assert found is not None and found.crm_id == "7"
    assert mirror.find_contact(engine, "7") == found
    assert mirror.find_contact(engine, "nobody") is None


def test_cursor_only_moves_forward(engine: Engine) -> None:
    assert cursors.cursor_for(engine, "hubspot", "contacts") is None
    cursors.advance_cursor(engine, "hubspot", "contacts", NOW, NOW)
    cursors.advance_cursor(engine, "hubspot", "contacts", NOW - timedelta(days=1), NOW)
    assert cursors.cursor_for(engine, "hubspot", "contacts") == NOW
    cursors.advance_cursor(engine, "hubspot", "contacts", NOW + timedelta(seconds=1), NOW)
    assert cursors.cursor_for(engine, "hubspot", "contacts") == NOW + timedelta(seconds=1)


def task(contact_id: str = "1", n: int = 1) -> HandoffTask:
    return HandoffTask(
        crm="hubspot",
        key=f"hubspot:{contact_id}:mql:{n}",
        contact_id=contact_id,
        owner_id=None,
        subject="s",
        body="b",
        due_at=NOW,
        priority=Priority.HIGH,
    )


def scored(engine: Engine, *contact_ids: str) -> None:
    from scoring.records import ScoreResult

    scores.save_scores(
        engine,
        [
            ScoreResult(
                crm="hubspot",
                crm_id=c,
                fit=0,
                engagement=0,
                total=0,
                grade="D",
                is_mql=False,
                reasons=[],
                model_name="m",
                model_version="1",
                as_of=NOW,
            )
            for c in contact_ids
        ],
        None,
    )


def test_a_transition_is_claimed_once(engine: Engine) -> None:
    scored(engine, "1")
    assert handoffs.claim_transition(engine, task(), 0, "run-a", NOW)
    # A run that planned from the same count, or reuses the key, stands aside.
    assert not handoffs.claim_transition(engine, task(), 0, "run-b", NOW)
    assert not handoffs.claim_transition(engine, task(), 1, "run-b", NOW)
    assert scores.written_states(engine, "hubspot", ["1"])["1"].mql_transitions == 1
    assert handoffs.pending_contacts(engine, "hubspot", ["1", "2"]) == {"1"}
    handoffs.record_task(engine, task().key, "T1", NOW)
    assert handoffs.task_of(engine, task().key) == "T1"
    assert handoffs.pending_contacts(engine, "hubspot", ["1"]) == set()


def test_a_released_transition_can_be_claimed_again(engine: Engine) -> None:
    scored(engine, "1")
    assert handoffs.claim_transition(engine, task(), 0, "run-a", NOW)
    handoffs.release_transition(engine, task(), 0)
    assert scores.written_states(engine, "hubspot", ["1"])["1"].mql_transitions == 0
    assert handoffs.claim_transition(engine, task(), 0, "run-b", NOW)


def test_stale_claims_are_taken_over_once(engine: Engine) -> None:
    scored(engine, "1", "2")
    handoffs.claim_transition(engine, task("1"), 0, "crashed", NOW - timedelta(hours=1))
    handoffs.claim_transition(engine, task("2"), 0, "alive", NOW)
    cutoff = NOW - timedelta(minutes=15)
    taken = handoffs.take_over_stale(engine, "hubspot", "run-b", NOW, cutoff)
    assert [t.key for t in taken] == [task("1").key] and taken[0] == task("1")
    assert handoffs.take_over_stale(engine, "hubspot", "run-c", NOW, cutoff) == []


def test_work_a_live_run_holds_is_not_counted_as_left_undone(engine: Engine) -> None:
    """What a run reports as pending leaves out claims another live run is finishing.

    Two workers (a backfill and a sync) on one CRM: the sync must not fail its run over
    handoffs the backfill is in the middle of, nor forget them if their owner is gone.
    """
    from flows.claims import held_elsewhere

    scored(engine, "1", "2", "3", "4", "5")
    other_live = f"{socket.gethostname()}:{os.getppid()}"  # the test runner's parent lives
    gone = f"{socket.gethostname()}:{_ended_pid()}"
    handoffs.claim_transition(engine, task("1"), 0, other_live, NOW)
    handoffs.claim_transition(engine, task("2"), 0, gone, NOW)
    handoffs.claim_transition(engine, task("3"), 0, other_live, NOW - timedelta(hours=1))
    handoffs.claim_transition(engine, task("4"), 0, "me:1", NOW)
    held = held_elsewhere("me:1", NOW)
    assert sorted(handoffs.unfinished(engine, "hubspot", held)) == ["2", "3", "4"]
    assert sorted(handoffs.unfinished(engine, "hubspot")) == ["1", "2", "3", "4"]

    change = {"crm": "hubspot", "from_stage": "lead", "to_stage": "mql"}
    scores.record_stage_intents(engine, "hubspot", {
        "1": {**change, "crm_id": "1", "by": other_live, "by_at": NOW.isoformat()},
        "2": {**change, "crm_id": "2", "by": gone, "by_at": NOW.isoformat()},
        "5": {**change, "crm_id": "5"},  # recorded before owners were: left undone
    })  # fmt: skip
    assert sorted(scores.contacts_needing_write(engine, "hubspot", held)) == ["2", "5"]
    assert scores.claim_writes(engine, "hubspot", ["3"], other_live, NOW, NOW - timedelta(1))
    scores.mark_needs_write(engine, "hubspot", {"3"}, set())
    assert "3" not in scores.contacts_needing_write(engine, "hubspot", held)
    assert "3" in scores.contacts_needing_write(engine, "hubspot")


def _ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_scores_history_and_written_state(engine: Engine) -> None:
    from scoring.records import ScoreResult

    def result(total: float) -> ScoreResult:
        return ScoreResult(
            crm="hubspot", crm_id="1", fit=total, engagement=0, total=total, grade="A",
            is_mql=True, reasons=[], model_name="m", model_version="1", as_of=NOW,
        )  # fmt: skip

    scores.save_scores(engine, [result(10)], "run-1")
    written = WrittenStateChange(
        values={"score": 10}, stage=LifecycleStage.MQL, stage_written_at=NOW
    )
    scores.record_written(engine, "hubspot", "1", written)
    scores.save_scores(engine, [result(20)], "run-2")
    state = scores.written_states(engine, "hubspot", ["1"])["1"]
    assert (state.written, state.stage, state.stage_written_at) == ({"score": 10}, "mql", NOW)
    assert scores.score_of(engine, "hubspot", "1")["total"] == 20


def test_audit_history(engine: Engine) -> None:
    audit.record(
        engine,
        [AuditEvent("hubspot", "1", "decision", "promoted_to_mql", detail={"total": 60})],
        "run-1",
        NOW,
    )
    (row,) = audit.history(engine, "hubspot", "1")
    assert (row["action"], row["flow_run_id"], row["detail"]) == (
        "promoted_to_mql",
        "run-1",
        {"total": 60},
    )
    assert row["at"] == NOW


def test_a_stale_pull_does_not_undo_a_newer_row(engine: Engine) -> None:
    earlier, later = NOW - timedelta(hours=1), NOW
    mirror.upsert_contacts(engine, [contact(1, lifecycle_stage="lead", updated_at=earlier)], NOW)
    mirror.set_stage(engine, Crm.HUBSPOT, "1", "mql")
    # Another run pulled before the service wrote the stage: same modification time.
    mirror.upsert_contacts(engine, [contact(1, lifecycle_stage="lead", updated_at=earlier)], NOW)
    assert mirror.load_contacts(engine, Crm.HUBSPOT, ["1"])[0].lifecycle_stage == "mql"
    # The CRM's newer version wins.
    mirror.upsert_contacts(engine, [contact(1, lifecycle_stage="sql", updated_at=later)], NOW)
    assert mirror.load_contacts(engine, Crm.HUBSPOT, ["1"])[0].lifecycle_stage == "sql"
