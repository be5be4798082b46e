"""The lifecycle policy: forward only, never demote SQL and later, recycle rejections."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scoring.engine import score
from scoring.lifecycle import (
    LeadStatusKey,
    SalesFeedback,
    Transition,
    decide,
    is_backward,
)
from scoring.records import LifecycleStage as S
from tests.scoring.factories import AS_OF, activity, contact, model

POINTS = model("points")
QUALIFYING = [activity("webinar_attended", 20), activity("demo_request", 20)]


def result(is_mql: bool):
    acts = QUALIFYING if is_mql else []
    outcome = score(POINTS, contact(), acts, AS_OF)
    assert outcome.is_mql is is_mql
    return outcome


@pytest.mark.parametrize("stage", [None, S.SUBSCRIBER, S.LEAD])
def test_promotes_to_mql_with_a_handoff(stage) -> None:
    decision = decide(stage, SalesFeedback.NONE, result(True))
    assert decision.transition is Transition.PROMOTED_TO_MQL
    assert decision.target_stage is S.MQL
    assert decision.lead_status is LeadStatusKey.MQL
    assert decision.handoff_due


@pytest.mark.parametrize("stage", [S.SQL, S.OPPORTUNITY, S.CUSTOMER])
@pytest.mark.parametrize("feedback", list(SalesFeedback))
@pytest.mark.parametrize("is_mql", [True, False])
def test_never_touches_sql_and_later(stage, feedback, is_mql) -> None:
    decision = decide(stage, feedback, result(is_mql))
    assert decision.target_stage is None and not decision.handoff_due


def test_mql_that_no_longer_scores_stays_mql() -> None:
    decision = decide(S.MQL, SalesFeedback.NONE, result(False))
    assert decision.target_stage is None and not decision.handoff_due


def test_mql_stays_without_a_second_handoff() -> None:
    assert not decide(S.MQL, SalesFeedback.NONE, result(True)).handoff_due


def test_not_qualified_lead_stays() -> None:
    assert decide(S.LEAD, SalesFeedback.NONE, result(False)).target_stage is None


def test_rejected_mql_is_recycled_to_nurture() -> None:
    decision = decide(S.MQL, SalesFeedback.REJECTED, result(True))
    assert decision.transition is Transition.RECYCLED
    assert decision.target_stage is S.LEAD
    assert decision.lead_status is LeadStatusKey.RECYCLED
    assert not decision.handoff_due
    assert is_backward(S.MQL, decision.target_stage)


def test_recycled_lead_must_re_earn_with_new_engagement() -> None:
    recycled_at = AS_OF - timedelta(days=10)
    old_only = score(POINTS, contact(), QUALIFYING, AS_OF, engagement_since=recycled_at)
    assert not old_only.is_mql
    assert decide(S.LEAD, SalesFeedback.REJECTED, old_only, recycled_at).target_stage is None

    fresh = [*QUALIFYING, activity("webinar_attended", 2), activity("demo_request", 1)]
    re_earned = score(POINTS, contact(), fresh, AS_OF, engagement_since=recycled_at)
    decision = decide(S.LEAD, SalesFeedback.REJECTED, re_earned, recycled_at)
    assert decision.transition is Transition.PROMOTED_TO_MQL and decision.handoff_due
    assert recycled_at.isoformat() in decision.reason


@pytest.mark.parametrize("stage", [None, S.LEAD, S.MQL])
def test_accepted_becomes_sql(stage) -> None:
    decision = decide(stage, SalesFeedback.ACCEPTED, result(False))
    assert decision.transition is Transition.ACCEPTED_AS_SQL
    assert decision.target_stage is S.SQL and not decision.handoff_due


def test_is_backward() -> None:
    assert is_backward(S.MQL, S.LEAD)
    assert not is_backward(S.LEAD, S.MQL)
    assert not is_backward(None, S.LEAD)


@pytest.mark.parametrize(
    ("key", "feedback"),
    [
        ("rejected", SalesFeedback.REJECTED),
        ("recycled", SalesFeedback.REJECTED),
        ("sql", SalesFeedback.ACCEPTED),
        ("open", SalesFeedback.NONE),
        (None, SalesFeedback.NONE),
    ],
)
def test_feedback_from_status_keys(key, feedback) -> None:
    from scoring.lifecycle import feedback_for

    assert feedback_for(key) is feedback


@pytest.mark.parametrize(
    ("pulled", "written", "expected"),
    [
        (None, None, None),
        (S.LEAD, S.MQL, S.MQL),
        (S.SQL, S.MQL, S.SQL),
        (None, S.MQL, S.MQL),
        (S.MQL, S.LEAD, S.MQL),
        (S.LEAD, None, S.LEAD),
    ],
)
def test_later_stage(pulled, written, expected) -> None:
    from scoring.lifecycle import later_stage

    assert later_stage(pulled, written) is expected


def test_accepted_by_sales_only_for_our_mqls() -> None:
    from scoring.lifecycle import accepted_by_sales

    assert accepted_by_sales(S.SQL, S.MQL) and accepted_by_sales(S.CUSTOMER, S.MQL)
    assert not accepted_by_sales(S.SQL, S.SQL) and not accepted_by_sales(S.SQL, None)
    assert not accepted_by_sales(S.MQL, S.MQL)


def test_a_lead_rejected_before_any_mql_is_not_handed_off_on_old_engagement() -> None:
    decision = decide(S.LEAD, SalesFeedback.REJECTED, result(True), recycled_at=None)
    assert decision.transition is Transition.RECYCLED
    assert decision.target_stage is None and not decision.handoff_due
