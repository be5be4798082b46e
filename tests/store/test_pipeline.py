"""Plan and apply with an in-memory CRM: diffs, one handoff per transition, recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from flows import pipeline, recovery
from scoring.model import parse_model
from scoring.records import Activity, Contact, Crm
from store import handoffs, mirror, scores
from store.audit import history
from tests.fake_crm import MemoryCrm

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
MODEL = parse_model(Path("scoring/models/example.yaml").read_text(), "example.yaml")
STATUS = {"UNQUALIFIED": "rejected", "BAD_TIMING": "recycled"}


def status_key(value: str | None) -> str | None:
    return STATUS.get(value or "")


def seed(engine: Engine, *, lead_status: str | None = None, stage: str = "lead") -> None:
    hot = Contact(
        crm="hubspot", crm_id="1", first_name="Dana", email="dana@northwind.io",
        company="Northwind", company_size=300, job_title="VP Sales", industry="software",
        lifecycle_stage=stage, lead_status=lead_status, owner_id="o1",
    )  # fmt: skip
    cold = Contact(crm="hubspot", crm_id="2", company_size=5, lifecycle_stage="lead")
    mirror.upsert_contacts(engine, [hot, cold], NOW)
    mirror.upsert_activities(engine, qualifying_activities(NOW))


def qualifying_activities(at: datetime, prefix: str = "a") -> list[Activity]:
    def act(n: int, kind: str, days: float, **extra: object) -> Activity:
        return Activity(
            crm="hubspot", crm_id=f"{prefix}{n}", contact_id="1", type=kind,
            occurred_at=at - timedelta(days=days), **extra,
        )  # fmt: skip

    return [
        act(1, "page_view", 1, url="https://x.io/pricing"),
        act(2, "page_view", 3, url="https://x.io/pricing"),
        act(3, "webinar_attended", 2, campaign="Q4 tour"),
    ]


def run(engine: Engine, crm: MemoryCrm, now: datetime = NOW, ids=("1", "2")):
    decided = pipeline.score_and_plan(engine, MODEL, Crm.HUBSPOT, list(ids), status_key, now, "r")
    return decided, pipeline.apply_plans(engine, crm, decided, now, "r", "worker-1")


def test_first_run_writes_scores_stage_and_one_task(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    _, report = run(engine, crm)
    assert report.new_mqls == ["1"]
    assert crm.stages == {"1": "mql"}
    assert crm.properties["1"]["grade"] == "A" and crm.properties["2"]["grade"] == "D"
    (task,) = crm.tasks.values()
    assert task.key == "hubspot:1:mql:1" and task.owner_id == "o1"
    assert "Northwind" in task.subject and "pricing" in task.body and "Q4 tour" in task.body
    assert task.due_at == NOW + timedelta(hours=24) and task.priority == "high"
    assert crm.calls == ["update:2", "stages:1", "tasks:1"]


def test_rerun_with_nothing_new_plans_zero_writes(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    run(engine, crm)
    crm.calls.clear()
    decided, report = run(engine, crm)
    assert all(d.plan.is_empty for d in decided)
    assert report.updated == 0 and report.tasks_created == []
    assert crm.calls == []


def test_only_changed_values_are_written(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    run(engine, crm)
    # Two weeks on, the webinar's points have faded and the pricing window has passed.
    decided, _ = run(engine, crm, NOW + timedelta(days=14))
    update = next(d.plan.update for d in decided if d.contact.crm_id == "1")
    assert update is not None and "grade" not in update.values and "score" in update.values
    assert next(d.plan.update for d in decided if d.contact.crm_id == "2") is None


def test_failed_stage_move_defers_the_handoff_to_the_next_run(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    crm.fail_stages.add("1")
    _, report = run(engine, crm)
    assert crm.tasks == {} and report.failures[0][:2] == ("1", "stage")
    crm.fail_stages.clear()
    _, report = run(engine, crm)
    assert [t.key for t in crm.tasks.values()] == ["hubspot:1:mql:1"]


def test_crash_between_claim_and_create_is_finished_once(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    crm.die = "before_create"
    with pytest.raises(SystemExit):
        run(engine, crm)
    assert crm.tasks == {} and handoffs.task_of(engine, "hubspot:1:mql:1") is None
    crm.die = None
    later = NOW + timedelta(hours=1)
    decided, _ = run(engine, crm, later)
    assert all(d.plan.handoff is None for d in decided)  # the stage already moved
    finished = recovery.finish_interrupted_handoffs(engine, crm, later, "r2", "worker-2")
    assert len(crm.tasks) == 1 and len(finished.tasks_created) == 1
    assert handoffs.task_of(engine, "hubspot:1:mql:1") == next(iter(crm.tasks))
    assert recovery.finish_interrupted_handoffs(engine, crm, later, "r3", "w").tasks_created == []


def test_crash_between_create_and_record_finds_the_task(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    crm.die = "after_create"
    with pytest.raises(SystemExit):
        run(engine, crm)
    crm.die = None
    later = NOW + timedelta(hours=1)
    finished = recovery.finish_interrupted_handoffs(engine, crm, later, "r2", "worker-2")
    task_id = next(iter(crm.tasks))
    assert len(crm.tasks) == 1 and finished.tasks_created == [("1", task_id)]
    assert handoffs.task_of(engine, "hubspot:1:mql:1") == task_id
    actions = [(e["action"], e["outcome"]) for e in history(engine, "hubspot", "1")]
    assert ("create_task", "already_done") in actions


def test_a_young_claim_is_left_to_its_run(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    crm.die = "before_create"
    with pytest.raises(SystemExit):
        run(engine, crm)
    soon = NOW + timedelta(minutes=1)
    assert (
        recovery.finish_interrupted_handoffs(engine, MemoryCrm(), soon, "r", "w").tasks_created
        == []
    )


def test_rejected_mql_is_recycled_and_must_re_earn(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    run(engine, crm)
    # Sales rejects: the next pull brings the status; the service recycles the lead.
    seed(engine, lead_status="UNQUALIFIED", stage="mql")
    later = NOW + timedelta(days=1)
    _, report = run(engine, crm, later)
    assert crm.stages["1"] == "lead" and ("1", "mql", "lead") in report.stage_moves
    state = scores.written_states(engine, "hubspot", ["1"])["1"]
    assert state.recycled_at == later
    # Old engagement does not bring it back...
    seed(engine, lead_status="BAD_TIMING", stage="lead")
    decided, _ = run(engine, crm, later + timedelta(days=1))
    assert not decided[0].result.is_mql and len(crm.tasks) == 1
    # ...new engagement after the rejection does, with a second, distinct handoff.
    fresh_at = later + timedelta(days=5)
    mirror.upsert_activities(engine, qualifying_activities(fresh_at, prefix="b"))
    _, report = run(engine, crm, fresh_at)
    assert report.new_mqls == ["1"]
    assert sorted(t.key for t in crm.tasks.values()) == ["hubspot:1:mql:1", "hubspot:1:mql:2"]


def test_a_backward_move_cut_between_its_two_requests_is_finished_by_the_rerun(
    engine: Engine,
) -> None:
    seed(engine)
    crm = MemoryCrm()
    run(engine, crm)
    seed(engine, lead_status="UNQUALIFIED", stage="mql")
    later = NOW + timedelta(days=1)
    crm.die = "mid_backward_move"
    with pytest.raises(SystemExit):
        run(engine, crm, later)
    crm.die = None
    assert crm.stages["1"] == ""  # the CRM now shows no stage at all
    # The next pull brings the contact as the CRM holds it: no stage.
    seed(engine, lead_status="UNQUALIFIED", stage=None)
    assert "1" in scores.contacts_needing_write(engine, "hubspot")
    _, report = run(engine, crm, later + timedelta(minutes=15))
    assert crm.stages["1"] == "lead"
    assert [(c, to) for c, _, to in report.stage_moves] == [("1", "lead")]
    state = scores.written_states(engine, "hubspot", ["1"])["1"]
    assert state.stage == "lead" and state.stage_intent is None
    assert "1" not in scores.contacts_needing_write(engine, "hubspot")


def test_every_decision_and_write_is_audited(engine: Engine) -> None:
    seed(engine)
    run(engine, MemoryCrm())
    actions = [(e["kind"], e["action"], e["outcome"]) for e in history(engine, "hubspot", "1")]
    assert actions == [
        ("decision", "promoted_to_mql", None),
        ("write", "update_properties", "ok"),
        ("write", "change_stage", "ok"),
        ("write", "create_task", "ok"),
    ]


def test_accepted_and_recycled_feed_the_conversion_figures(engine: Engine) -> None:
    from store.audit import conversion

    seed(engine)
    crm = MemoryCrm()
    run(engine, crm)
    assert conversion(engine, "hubspot") == {"mqls": 1, "accepted": 0, "recycled": 0}
    seed(engine, stage="sql")  # sales took the MQL forward
    run(engine, crm, NOW + timedelta(days=1))
    run(engine, crm, NOW + timedelta(days=2))  # counted once, not per run
    assert conversion(engine, "hubspot") == {"mqls": 1, "accepted": 1, "recycled": 0}
    assert crm.stages == {"1": "mql"}  # written once, never demoted from SQL
    assert crm.calls.count("stages:1") == 1


def test_a_stale_stage_in_the_mirror_does_not_hand_off_twice(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    run(engine, crm)
    # Another run's pull, read before the stage was written, puts "lead" back.
    seed(engine)
    decided, report = run(engine, crm, NOW + timedelta(minutes=1))
    hot = next(d for d in decided if d.contact.crm_id == "1")
    assert hot.plan.handoff is None and hot.plan.stage is None
    assert len(crm.tasks) == 1 and report.new_mqls == []


def test_only_one_of_two_runs_counts_a_transition(engine: Engine) -> None:
    seed(engine)
    first, second = MemoryCrm(), MemoryCrm()
    # Both runs plan from the same state, then apply one after the other.
    plans_a = pipeline.score_and_plan(engine, MODEL, Crm.HUBSPOT, ["1"], status_key, NOW, "a")
    plans_b = pipeline.score_and_plan(engine, MODEL, Crm.HUBSPOT, ["1"], status_key, NOW, "b")
    pipeline.apply_plans(engine, first, plans_a, NOW, "a", "wa")
    report = pipeline.apply_plans(engine, second, plans_b, NOW, "b", "wb")
    assert len(first.tasks) == 1 and second.tasks == {} and report.new_mqls == []
    assert scores.written_states(engine, "hubspot", ["1"])["1"].mql_transitions == 1


def test_a_run_dying_between_claim_and_stage_move_is_finished_once(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    crm.die = "before_stage"
    with pytest.raises(SystemExit):
        run(engine, crm)
    crm.die = None
    assert crm.stages == {} and crm.tasks == {}
    # Within the lease a new run leaves the claimed transition alone...
    soon = NOW + timedelta(minutes=1)
    decided, report = run(engine, crm, soon)
    assert report.new_mqls == [] and crm.tasks == {}
    assert next(d for d in decided if d.contact.crm_id == "1").plan.handoff is None
    # ...and after it the transition is finished: stage, then one task.
    later = NOW + timedelta(hours=1)
    finished = recovery.finish_interrupted_handoffs(engine, crm, later, "r2", "worker-2")
    assert crm.stages == {"1": "mql"} and len(crm.tasks) == 1
    assert len(finished.tasks_created) == 1
    decided, report = run(engine, crm, later)
    assert report.new_mqls == [] and len(crm.tasks) == 1


def test_contacts_with_failed_writes_are_remembered_until_written(engine: Engine) -> None:
    seed(engine)
    crm = MemoryCrm()
    crm.fail_updates.add("2")
    crm.fail_stages.add("1")
    run(engine, crm)
    assert sorted(scores.contacts_needing_write(engine, "hubspot")) == ["1", "2"]
    crm.fail_updates.clear()
    crm.fail_stages.clear()
    _, report = run(engine, crm, NOW + timedelta(minutes=5))
    assert scores.contacts_needing_write(engine, "hubspot") == []
    assert report.new_mqls == ["1"] and crm.properties["2"]["grade"] == "D"
