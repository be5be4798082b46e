"""The lifecycle policy as one pure function: `assess` on snapshots, no store, no connector."""

from __future__ import annotations

from datetime import timedelta

from scoring.assess import (
    Assessment,
    EventKind,
    Snapshot,
    WrittenSnapshot,
    assess,
)
from scoring.engine import compile_model
from scoring.lifecycle import Transition
from scoring.model import parse_model
from scoring.records import Activity, LifecycleStage
from scoring.writes import StageChange, WrittenStateChange
from tests.scoring.factories import AS_OF, activity, contact

MODEL = parse_model(
    """
name: policy
version: 1
fit:
  rules:
    - {id: senior, field: job_title, matches: "(?i)^vp", points: 30}
engagement:
  half_life_days: 30
  rules:
    - {id: demo, activity: demo_request, points: 40, decay: false}
qualify: {threshold: 60}
""",
    "policy.yaml",
)
COMPILED = compile_model(MODEL)
LEAD, MQL, SQL = LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL
WRITTEN_AT = AS_OF - timedelta(days=10)


def demo(days_ago: float) -> list[Activity]:
    return [activity("demo_request", days_ago=days_ago)]


def run(
    stage: LifecycleStage | None = LEAD,
    activities: list[Activity] | None = None,
    status: str | None = None,
    written: WrittenSnapshot | None = None,
    *,
    claim_pending: bool = False,
    updated_days_ago: float = 1,
) -> Assessment:
    """A VP (30 fit points) at `stage`; a demo request (40 points) makes an MQL."""
    who = contact(
        job_title="VP Marketing",
        lifecycle_stage=stage,
        lead_status=status,
        updated_at=AS_OF - timedelta(days=updated_days_ago),
    )
    snapshot = Snapshot(
        who, activities or [], status, written or WrittenSnapshot(), claim_pending=claim_pending
    )
    return assess(MODEL, COMPILED, snapshot, AS_OF)


def test_a_lead_meeting_the_criteria_is_promoted_with_a_handoff_and_a_decision_row() -> None:
    out = run(LEAD, demo(3))
    assert out.decision.transition is Transition.PROMOTED_TO_MQL
    assert out.plan.stage is not None and out.plan.stage.to_stage is MQL
    assert out.plan.handoff is not None
    assert [(e.kind, e.action) for e in out.events] == [(EventKind.DECISION, "promoted_to_mql")]
    assert out.change.is_empty


def test_a_lead_below_the_criteria_stays_and_only_its_score_is_written() -> None:
    out = run(LEAD)
    assert out.decision.transition is Transition.NONE
    assert out.plan.stage is None and out.plan.handoff is None
    assert out.plan.update is not None  # the first score is written
    assert out.change.is_empty


def test_where_a_contact_stands_is_the_later_of_pulled_and_written() -> None:
    """The pull read LEAD just before this service wrote MQL: the contact is an MQL."""
    out = run(LEAD, demo(3), written=WrittenSnapshot(stage=MQL, stage_written_at=WRITTEN_AT))
    assert out.contact.lifecycle_stage is MQL
    assert out.decision.transition is Transition.NONE
    assert out.plan.handoff is None


def test_a_rejection_older_than_the_written_stage_is_no_verdict() -> None:
    written = WrittenSnapshot(stage=MQL, stage_written_at=WRITTEN_AT)
    out = run(MQL, demo(3), "rejected", written, updated_days_ago=11)
    assert out.decision.transition is Transition.NONE


def test_a_rejection_after_the_written_stage_recycles_the_mql() -> None:
    written = WrittenSnapshot(stage=MQL, stage_written_at=WRITTEN_AT)
    out = run(MQL, demo(3), "rejected", written, updated_days_ago=1)
    assert out.decision.transition is Transition.RECYCLED
    assert out.plan.stage is not None
    assert (out.plan.stage.to_stage, out.plan.stage.lead_status) == (LEAD, "recycled")
    # Rescored from this moment: old engagement no longer counts.
    assert out.result.engagement == 0 and not out.result.is_mql
    assert out.change.recycled_at is None  # recorded with the stage move, not here


def test_a_lead_rejected_before_it_was_ever_an_mql_keeps_only_the_moment() -> None:
    out = run(LEAD, demo(3), "unqualified")
    assert out.decision.transition is Transition.RECYCLED
    assert out.plan.stage is None and out.plan.handoff is None
    assert out.change == WrittenStateChange(recycled_at=AS_OF)
    assert out.result.engagement == 0


def test_a_recycled_lead_earns_mql_again_only_with_new_engagement() -> None:
    since = AS_OF - timedelta(days=5)
    old = run(LEAD, demo(8), written=WrittenSnapshot(recycled_at=since))
    assert old.decision.transition is Transition.NONE
    new = run(LEAD, demo(2), written=WrittenSnapshot(recycled_at=since))
    assert new.decision.transition is Transition.PROMOTED_TO_MQL


def test_a_handoff_another_run_is_finishing_is_left_to_it() -> None:
    out = run(LEAD, demo(3), claim_pending=True)
    assert out.decision.transition is Transition.NONE
    assert out.decision.reason == "a handoff for this contact is being finished"
    assert out.plan.handoff is None and out.plan.stage is None


def test_a_stage_move_sent_before_a_crash_is_finished() -> None:
    intent = StageChange(crm="hubspot", crm_id="c1", from_stage=LEAD, to_stage=MQL)
    written = WrittenSnapshot(stage_intent=intent, mql_transitions=1)
    out = run(LEAD, [], written=written)  # no longer meets the criteria: the move stands
    assert out.plan.stage == intent
    assert not out.change.clear_stage_intent


def test_a_stage_move_already_done_is_forgotten() -> None:
    intent = StageChange(crm="hubspot", crm_id="c1", from_stage=LEAD, to_stage=MQL)
    out = run(MQL, [], written=WrittenSnapshot(stage_intent=intent))
    assert out.plan.stage is None
    assert out.change == WrittenStateChange(clear_stage_intent=True)


def test_an_mql_seen_at_sql_is_counted_accepted_once() -> None:
    written = WrittenSnapshot(stage=MQL, stage_written_at=WRITTEN_AT, mql_transitions=1)
    out = run(SQL, demo(3), written=written)
    assert out.decision.transition is Transition.NONE  # SQL is never changed
    assert out.change == WrittenStateChange(stage=SQL)
    feedback = [(e.action, dict(e.detail)) for e in out.events if e.kind is EventKind.FEEDBACK]
    assert feedback == [("accepted", {"stage": SQL.value})]
    again = run(SQL, demo(3), written=WrittenSnapshot(stage=SQL, mql_transitions=1))
    assert not [e for e in again.events if e.kind is EventKind.FEEDBACK]
    assert again.change.is_empty


def test_assess_is_pure() -> None:
    """The same snapshot and instant give the same assessment."""
    did = demo(3)
    assert run(LEAD, did) == run(LEAD, did)
