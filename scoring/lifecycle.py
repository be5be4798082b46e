"""The lifecycle policy: which stage a contact should be in after a new score.

Forward only: subscriber → lead → MQL → SQL → opportunity → customer. The service
promotes subscribers and leads to MQL, marks leads sales accepted as SQL, and recycles
MQLs that sales rejected back to nurture; it never demotes SQL or anything later.
A recycled lead must earn MQL again with engagement after the rejection: callers score
it with `engagement_since` set to the moment it was recycled.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from scoring.records import LifecycleStage, ScoreResult

STAGE_ORDER: tuple[LifecycleStage, ...] = tuple(LifecycleStage)
PROTECTED: frozenset[LifecycleStage] = frozenset(
    {LifecycleStage.SQL, LifecycleStage.OPPORTUNITY, LifecycleStage.CUSTOMER}
)
PROMOTABLE: frozenset[LifecycleStage | None] = frozenset(
    {None, LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD}
)


class SalesFeedback(StrEnum):
    """What the lead status (mapped from the CRM's value) says sales decided."""

    NONE = "none"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# Canonical lead-status keys (the mappings give their CRM values) and what sales meant.
REJECTED_KEYS: frozenset[str] = frozenset({"rejected", "recycled", "unqualified"})
ACCEPTED_KEYS: frozenset[str] = frozenset({"sql", "accepted"})


def feedback_for(status_key: str | None) -> SalesFeedback:
    """Sales' verdict from a canonical lead-status key (None: no verdict)."""
    if status_key in REJECTED_KEYS:
        return SalesFeedback.REJECTED
    if status_key in ACCEPTED_KEYS:
        return SalesFeedback.ACCEPTED
    return SalesFeedback.NONE


class LeadStatusKey(StrEnum):
    """Canonical lead statuses the service writes; mappings give their CRM values."""

    MQL = "mql"
    SQL = "sql"
    RECYCLED = "recycled"


class Transition(StrEnum):
    NONE = "none"
    PROMOTED_TO_MQL = "promoted_to_mql"
    ACCEPTED_AS_SQL = "accepted_as_sql"
    RECYCLED = "recycled"


class LifecycleDecision(BaseModel):
    """The target stage (None: leave as is), the lead status to write, and why."""

    model_config = ConfigDict(frozen=True)

    transition: Transition
    target_stage: LifecycleStage | None
    lead_status: LeadStatusKey | None
    handoff_due: bool
    reason: str


def is_backward(current: LifecycleStage | None, target: LifecycleStage) -> bool:
    """True when `target` comes before `current` in the forward order."""
    if current is None:
        return False
    return STAGE_ORDER.index(target) < STAGE_ORDER.index(current)


def later_stage(
    pulled: LifecycleStage | None, written: LifecycleStage | None
) -> LifecycleStage | None:
    """Where a contact stands: the further along of the stage last pulled from the CRM and
    the stage this service last wrote (a pull read just before the write lags behind it)."""
    if written is None:
        return pulled
    if pulled is None or is_backward(written, pulled):
        return written
    return pulled


def accepted_by_sales(current: LifecycleStage | None, written: LifecycleStage | None) -> bool:
    """True the first time an MQL this service wrote is seen at SQL or later."""
    return written is LifecycleStage.MQL and current in PROTECTED


def decide(
    current: LifecycleStage | None,
    feedback: SalesFeedback,
    result: ScoreResult,
    recycled_at: datetime | None = None,
) -> LifecycleDecision:
    """Apply the lifecycle policy to one contact.

    `recycled_at` is when the service last recycled this contact; `result` must have been
    scored with `engagement_since=recycled_at` so that old engagement cannot re-qualify it.
    """
    if current in PROTECTED:
        return stay(f"stage {current} is past MQL and is never changed by scoring")

    # Everything not protected is MQL or promotable, so acceptance always moves to SQL.
    if feedback is SalesFeedback.ACCEPTED:
        return LifecycleDecision(
            transition=Transition.ACCEPTED_AS_SQL,
            target_stage=LifecycleStage.SQL,
            lead_status=None,
            handoff_due=False,
            reason="sales accepted the lead",
        )

    if feedback is SalesFeedback.REJECTED and current is LifecycleStage.MQL:
        return LifecycleDecision(
            transition=Transition.RECYCLED,
            target_stage=LifecycleStage.LEAD,
            lead_status=LeadStatusKey.RECYCLED,
            handoff_due=False,
            reason="sales rejected the MQL: back to nurture until it earns MQL again",
        )

    if current is LifecycleStage.MQL:
        return stay("already an MQL; stages only move forward")

    if feedback is SalesFeedback.REJECTED and recycled_at is None:
        # Rejected before this service ever made it an MQL (by hand, or another tool):
        # it is in nurture already, and old engagement must not hand it to sales again.
        return LifecycleDecision(
            transition=Transition.RECYCLED,
            target_stage=None,
            lead_status=None,
            handoff_due=False,
            reason="sales rejected this lead earlier: it must earn MQL with new engagement",
        )

    if result.is_mql:
        since = f" with engagement since {recycled_at.isoformat()}" if recycled_at else ""
        return LifecycleDecision(
            transition=Transition.PROMOTED_TO_MQL,
            target_stage=LifecycleStage.MQL,
            lead_status=LeadStatusKey.MQL,
            handoff_due=True,
            reason=f"met the MQL criteria of {result.model_name}@{result.model_version}{since}",
        )
    return stay("does not meet the MQL criteria")


def stay(reason: str) -> LifecycleDecision:
    """A decision to leave the contact where it is."""
    return LifecycleDecision(
        transition=Transition.NONE,
        target_stage=None,
        lead_status=None,
        handoff_due=False,
        reason=reason,
    )
