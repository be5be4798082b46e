"""Engine behaviour: operators, decay, caps, windows, negatives, evidence, as_of."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scoring.engine import score
from scoring.model import parse_model
from tests.scoring.factories import AS_OF, activity, contact


def build(text: str):
    return parse_model(text, "test.yaml")


FIT = """
name: t
version: 1
fit:
  rules:
    - {id: r, field: %s, %s, points: 10}
qualify: {threshold: 10}
"""


@pytest.mark.parametrize(
    ("field", "operator", "value", "hit"),
    [
        ("company_size", "gte: 50", 50, True),
        ("company_size", "gte: 50", 49, False),
        ("company_size", "gt: 50", 50, False),
        ("company_size", "lt: 50", 49, True),
        ("company_size", "lte: 50", 51, False),
        ("company_size", "gte: 10, lt: 100", 99, True),
        ("company_size", "gte: 10, lt: 100", 100, False),
        ("company_size", "eq: 7", 7, True),
        ("company_size", "gte: 1", None, False),
        ("industry", "eq: SaaS", " saas ", True),
        ("industry", "in: [software, saas]", "Software", True),
        ("industry", "in: [software, saas]", "retail", False),
        ("job_title", "matches: '(?i)^vp'", "VP Sales", True),
        ("job_title", "matches: '(?i)^vp'", None, False),
        ("job_title", "exists: true", "", False),
        ("job_title", "exists: false", None, True),
        ("seats", "gte: 100", "250", True),
        ("seats", "gte: 100", "lots", False),
        ("seats", "eq: 250", "250", True),
    ],
)
def test_fit_operators(field: str, operator: str, value: object, hit: bool) -> None:
    model = build(FIT % (field, operator))
    who = (
        contact(properties={field: value})
        if field == "seats"
        else contact(**({field: value} if value is not None else {}))
    )
    result = score(model, who, [], AS_OF)
    assert result.fit == (10 if hit else 0)
    assert ("r" in result.matched_fit) is hit


ENGAGEMENT = """
name: t
version: 1
engagement:
  half_life_days: %s
  rules:
    - id: dl
      activity: content_download
      points: 10
      max_points: 25
    - id: unsub
      activity: email_unsubscribe
      points: -50
      decay: false
qualify: {threshold: 1}
"""


def test_half_life_halves_points() -> None:
    model = build(ENGAGEMENT % 30)
    fresh = score(model, contact(), [activity("content_download", 0)], AS_OF)
    month = score(model, contact(), [activity("content_download", 30)], AS_OF)
    two = score(model, contact(), [activity("content_download", 60)], AS_OF)
    assert (fresh.engagement, month.engagement, two.engagement) == (10, 5, 2.5)


def test_no_half_life_means_no_decay() -> None:
    model = build(ENGAGEMENT % "null")
    assert score(model, contact(), [activity("content_download", 400)], AS_OF).engagement == 10


def test_cap_limits_a_rule_and_reason_shows_capped_points() -> None:
    model = build(ENGAGEMENT % "null")
    acts = [activity("content_download", d) for d in range(1, 6)]
    result = score(model, contact(), acts, AS_OF)
    assert result.engagement == 25
    (reason,) = result.reasons
    assert reason.points == 25
    assert len(reason.evidence) == 5


def test_negative_signal_and_its_reason() -> None:
    model = build(ENGAGEMENT % 30)
    unsub = activity("email_unsubscribe", 100)
    result = score(model, contact(), [activity("content_download", 0), unsub], AS_OF)
    assert result.engagement == -40
    assert {"rule": "unsub", "points": -50.0, "evidence": [unsub.crm_id]} in [
        r.model_dump() for r in result.reasons
    ]


def test_activities_after_as_of_are_ignored() -> None:
    model = build(ENGAGEMENT % "null")
    assert score(model, contact(), [activity("content_download", -1)], AS_OF).engagement == 0


def test_engagement_since_ignores_older_activity() -> None:
    model = build(ENGAGEMENT % "null")
    acts = [activity("content_download", 10), activity("content_download", 2)]
    since = AS_OF - timedelta(days=5)
    result = score(model, contact(), acts, AS_OF, engagement_since=since)
    assert result.engagement == 10
    assert result.reasons[0].evidence == [acts[1].crm_id]


def test_where_filters_equality_and_contains() -> None:
    model = build(
        """
name: t
version: 1
engagement:
  rules:
    - id: pricing
      activity: [page_view, email_click]
      where: {url_contains: /Pricing, campaign: Spring}
      points: 5
qualify: {threshold: 1}
"""
    )
    acts = [
        activity("page_view", 1, url="https://x.io/pricing?a=1", campaign="spring"),
        activity("email_click", 1, url="https://x.io/PRICING", campaign="Spring"),
        activity("page_view", 1, url="https://x.io/pricing", campaign="autumn"),
        activity("page_view", 1, url="https://x.io/blog", campaign="Spring"),
        activity("page_view", 1, url=None, campaign="Spring"),
    ]
    result = score(model, contact(), acts, AS_OF)
    assert result.engagement == 10
    # Same instant: evidence is ordered by id, whatever the input order.
    assert result.reasons[0].evidence == sorted([acts[0].crm_id, acts[1].crm_id])


def test_where_reads_free_form_attributes() -> None:
    model = build(
        """
name: t
version: 1
engagement:
  rules:
    - {id: g2, activity: page_view, where: {referrer_contains: g2.com}, points: 7}
qualify: {threshold: 1}
"""
    )
    acts = [activity("page_view", 1, attributes={"referrer": "https://www.g2.com/x"})]
    assert score(model, contact(), acts, AS_OF).engagement == 7


def test_engagement_total_cap_is_a_reason() -> None:
    model = build(
        """
name: t
version: 1
engagement:
  max_points: 15
  rules:
    - {id: demo, activity: demo_request, points: 30}
qualify: {threshold: 1}
"""
    )
    result = score(model, contact(), [activity("demo_request", 1)], AS_OF)
    assert result.engagement == 15
    assert [(r.rule, r.points) for r in result.reasons] == [("demo", 30), ("engagement-cap", -15)]
    assert sum(r.points for r in result.reasons) == result.total


def test_gates_min_grade_and_min_engagement() -> None:
    model = build(
        """
name: t
version: 1
fit:
  rules:
    - {id: big, field: company_size, gte: 100, points: 30}
  grades: {A: 30, B: 20, C: 10}
engagement:
  rules:
    - {id: demo, activity: demo_request, points: 30}
qualify: {threshold: 30, min_grade: B, min_engagement: 20}
"""
    )
    big, small = contact(company_size=500), contact(company_size=5)
    demo = [activity("demo_request", 1)]
    assert score(model, big, demo, AS_OF).is_mql
    assert not score(model, big, [], AS_OF).is_mql  # fit alone reaches 30, engagement gate fails
    assert not score(model, small, demo, AS_OF).is_mql  # grade D
    assert score(model, big, demo, AS_OF).grade == "A"


def test_reasons_sum_to_total_on_the_default_model() -> None:
    from pathlib import Path

    default = parse_model(Path("scoring/models/default.yaml").read_text(), "default.yaml")
    who = contact(job_title="VP Engineering", company_size=800, industry="SaaS", country="US")
    acts = [activity("demo_request", 3), activity("page_view", 1, url="/pricing")]
    result = score(default, who, acts, AS_OF)
    assert round(sum(r.points for r in result.reasons), 2) == result.total
    assert result.is_mql and result.grade == "A"


def test_engagement_since_keeps_negative_signals() -> None:
    model = build(ENGAGEMENT % "null")
    unsub = activity("email_unsubscribe", 30)
    acts = [unsub, activity("content_download", 30), activity("content_download", 1)]
    result = score(model, contact(), acts, AS_OF, engagement_since=AS_OF - timedelta(days=5))
    assert result.engagement == 10 - 50
    assert [r.rule for r in result.reasons] == ["dl", "unsub"]
