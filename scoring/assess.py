"""One contact assessed: its score, its lifecycle decision, its write plan, and what to record.

`assess` is the whole lifecycle policy as one pure function of what the store knows about
a contact (a `Snapshot`) and the instant: it decides, and returns what the store must
remember (a `WrittenStateChange`) and the audit trail (`AssessEvent`s); the caller records
them and carries out the plan. No store, no connector, no clock.

The rules beyond `lifecycle.decide`:

- Where a contact stands is the later of the stage last pulled and the stage this service
  last wrote (a pull read just before a write lags behind it).
- A lead status older than the stage this service wrote is no verdict on that stage.
- A contact whose handoff another run is finishing is left to that run.
- A recycled contact is rescored at once from the moment of recycling, so the written
  score says it must earn MQL again; one already in nurture only has that moment kept.
- A stage move sent before a crash and not known finished is finished, or forgotten when
  the contact is already there.
- An MQL this service wrote, seen at SQL or later, is counted once as accepted by sales.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from scoring.engine import CompiledModel
from scoring.lifecycle import (
    LifecycleDecision,
    SalesFeedback,
    Transition,
    accepted_by_sales,
    decide,
    feedback_for,
    later_stage,
    stay,
)
from scoring.model import ScoringModel
from scoring.plan import WritePlan, plan_writes, resume_stage_move
from scoring.records import Activity, Contact, LifecycleStage, ScoreResult
from scoring.writes import StageChange, WrittenStateChange


@dataclass(frozen=True)
class WrittenSnapshot:
    """What this service last wrote to the CRM for a contact, as the store remembers it."""

    written: Mapping[str, Any] = field(default_factory=dict)
    stage: LifecycleStage | None = None
    stage_written_at: datetime | None = None
    mql_transitions: int = 0
    recycled_at: datetime | None = None
    stage_intent: StageChange | None = None  # a stage move sent, not known finished


@dataclass(frozen=True)
class Snapshot:
    """Everything the policy reads about one contact."""

    contact: Contact
    activities: Sequence[Activity]
    lead_status_key: str | None  # the canonical key of the contact's lead status
    written: WrittenSnapshot = field(default_factory=WrittenSnapshot)
    claim_pending: bool = False  # a handoff claimed by a run that has not created its task


class EventKind(StrEnum):
    DECISION = "decision"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class AssessEvent:
    """One audit row the assessment asks for."""

    kind: EventKind
    action: str
    detail: Mapping[str, Any]
    message: str | None = None


@dataclass(frozen=True)
class Assessment:
    """One contact's new score, lifecycle decision and write plan, and what to record."""

    contact: Contact  # with the stage it stands at
    activities: Sequence[Activity]
    result: ScoreResult
    decision: LifecycleDecision
    plan: WritePlan
    mql_transitions: int
    change: WrittenStateChange = field(default_factory=WrittenStateChange)
    events: tuple[AssessEvent, ...] = ()


def assess(
    model: ScoringModel, compiled: CompiledModel, snapshot: Snapshot, now: datetime
) -> Assessment:
    """Score the contact as of `now`, decide its stage, plan its writes.

    `compiled` is `compile_model(model)`, compiled once for a batch.
    """
    state = snapshot.written
    contact, acts = snapshot.contact, snapshot.activities
    result = compiled.score(contact, acts, now, engagement_since=state.recycled_at)
    feedback = feedback_for(snapshot.lead_status_key)
    if feedback is not SalesFeedback.NONE and _predates(contact, state.stage_written_at):
        # The CRM row was last modified before this service wrote the stage: its lead
        # status is no verdict on that stage (times are the CRM's and ours; the overlap
        # window is far larger than any clock skew that matters here).
        feedback = SalesFeedback.NONE
    current = later_stage(contact.lifecycle_stage, state.stage)
    if current != contact.lifecycle_stage:
        contact = contact.model_copy(update={"lifecycle_stage": current})
    decision = decide(current, feedback, result, state.recycled_at)
    if decision.handoff_due and snapshot.claim_pending:
        decision = stay("a handoff for this contact is being finished")
    recycled_at: datetime | None = None
    if decision.transition is Transition.RECYCLED:
        # From now on MQL must be re-earned: the written score says so at once, so the
        # next run, which scores from this moment, finds nothing to change.
        result = compiled.score(contact, acts, now, engagement_since=now)
        if decision.target_stage is None:
            # Already in nurture: only the moment from which to re-earn is kept.
            recycled_at = now
    plan = plan_writes(
        model, contact, acts, result, decision, dict(state.written), state.mql_transitions, now
    )
    clear_intent = False
    if state.stage_intent is not None:
        resumed = resume_stage_move(state.stage_intent, contact.lifecycle_stage)
        if resumed is not None and plan.stage is None:
            # A move sent before a crash or failure, not known finished: finish it.
            plan = plan.model_copy(update={"stage": resumed})
        elif resumed is None:
            clear_intent = True
    events: list[AssessEvent] = []
    if decision.transition is not Transition.NONE or not plan.is_empty:
        events.append(_decision_event(result, decision, plan))
    accepted: LifecycleStage | None = None
    if current is not None and accepted_by_sales(current, state.stage):
        # Counted once: the stage recorded next is no longer MQL.
        accepted = current
        events.append(AssessEvent(EventKind.FEEDBACK, "accepted", {"stage": current.value}))
    change = WrittenStateChange(
        stage=accepted, recycled_at=recycled_at, clear_stage_intent=clear_intent
    )
    return Assessment(
        contact, acts, result, decision, plan, state.mql_transitions, change, tuple(events)
    )


def _predates(contact: Contact, stage_written_at: datetime | None) -> bool:
    return (
        stage_written_at is not None
        and contact.updated_at is not None
        and contact.updated_at <= stage_written_at
    )


def _decision_event(
    result: ScoreResult, decision: LifecycleDecision, plan: WritePlan
) -> AssessEvent:
    return AssessEvent(
        kind=EventKind.DECISION,
        action=decision.transition.value,
        detail={
            "total": result.total,
            "grade": result.grade,
            "is_mql": result.is_mql,
            "model": f"{result.model_name}@{result.model_version}",
            "reasons": [r.model_dump() for r in result.reasons],
            "target_stage": decision.target_stage.value if decision.target_stage else None,
            "planned": {
                "update": plan.update.values if plan.update else None,
                "stage": plan.stage.to_stage.value if plan.stage else None,
                "handoff": plan.handoff.key if plan.handoff else None,
            },
        },
        message=decision.reason,
    )
