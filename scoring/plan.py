"""The write plan: what to change in the CRM after a new score, and nothing more.

A plan is a diff against what was last written, so a contact whose written values did
not change is not written again, and a re-run with nothing new plans nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from scoring.handoff import build_handoff, top_reasons
from scoring.lifecycle import LifecycleDecision
from scoring.model import ScoringModel
from scoring.records import Activity, Contact, LifecycleStage, ScoreResult
from scoring.writes import HandoffTask, PropertyUpdate, StageChange, WriteValue

REASONS_SUMMARY_MAX = 1_000  # CRM text properties take more, but sales reads a line


class WritePlan(BaseModel):
    """The writes for one contact; empty when the CRM already shows the right state."""

    model_config = ConfigDict(frozen=True)

    crm_id: str
    update: PropertyUpdate | None = None
    stage: StageChange | None = None
    handoff: HandoffTask | None = None

    @property
    def is_empty(self) -> bool:
        return self.update is None and self.stage is None and self.handoff is None


def written_values(result: ScoreResult, model: ScoringModel) -> dict[str, WriteValue]:
    """The values the CRM should show, rounded as they are written."""
    summary = "; ".join(
        f"{r.rule} {r.points:+.0f}" for r in top_reasons(result, model.handoff.top_reasons)
    )
    return {
        "score": round(result.total),
        "fit": round(result.fit),
        "engagement": round(result.engagement),
        "grade": result.grade,
        "reasons": summary[:REASONS_SUMMARY_MAX],
        "model_version": f"{result.model_name}@{result.model_version}",
    }


def plan_writes(
    model: ScoringModel,
    contact: Contact,
    activities: Iterable[Activity],
    result: ScoreResult,
    decision: LifecycleDecision,
    last_written: Mapping[str, WriteValue],
    mql_transitions: int,
    now: datetime,
) -> WritePlan:
    """Diff the new state against `last_written`; a handoff only for a new MQL transition.

    `mql_transitions` counts the contact's earlier MQL transitions: the next one's number
    is part of the handoff's idempotency key.
    """
    wanted = written_values(result, model)
    changed = {k: v for k, v in wanted.items() if last_written.get(k) != v}
    update = (
        PropertyUpdate(crm=contact.crm, crm_id=contact.crm_id, values=changed) if changed else None
    )
    stage = None
    if decision.target_stage is not None and decision.target_stage != contact.lifecycle_stage:
        stage = StageChange(
            crm=contact.crm,
            crm_id=contact.crm_id,
            from_stage=contact.lifecycle_stage,
            to_stage=decision.target_stage,
            lead_status=decision.lead_status.value if decision.lead_status else None,
        )
    handoff = None
    if decision.handoff_due:
        handoff = build_handoff(model, contact, activities, result, mql_transitions + 1, now)
    return WritePlan(crm_id=contact.crm_id, update=update, stage=stage, handoff=handoff)


def resume_stage_move(
    intent: StageChange | None, current: LifecycleStage | None
) -> StageChange | None:
    """The rest of a stage move that was sent but not known to be finished, if any.

    A contact with no stage, or still at the move's starting stage, is finished toward
    the intended stage; one already there needs nothing; one somewhere else was moved by
    someone since, and that move stands.
    """
    if intent is None or current == intent.to_stage:
        return None
    if current is None or current == intent.from_stage:
        return intent.model_copy(update={"from_stage": current})
    return None
