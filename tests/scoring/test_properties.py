"""Properties that must hold for any contact and any history (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.engine import score
from scoring.model import parse_model
from scoring.records import Activity, ActivityType, Contact
from tests.scoring.factories import AS_OF

MODEL = parse_model(Path("scoring/models/default.yaml").read_text(), "default.yaml")
RULES = MODEL.engagement.rules

# Which activity types only ever earn points, and which only ever lose them, under the
# default model (a page view may match both page rules; both are positive).
POSITIVE = sorted(
    {t for r in RULES for t in r.activity_types if r.points > 0}
    - {t for r in RULES for t in r.activity_types if r.points < 0}
)
NEGATIVE = sorted({t for r in RULES for t in r.activity_types if r.points < 0})

contacts = st.builds(
    Contact,
    crm=st.just("hubspot"),
    crm_id=st.just("c1"),
    job_title=st.sampled_from([None, "VP Sales", "Student", "Manager", "Engineer"]),
    company_size=st.one_of(st.none(), st.integers(0, 10_000)),
    industry=st.sampled_from([None, "SaaS", "retail", "software"]),
    country=st.sampled_from([None, "US", "Brazil"]),
)

counter = iter(range(10**9))


def activities(types: list[ActivityType] | None = None) -> st.SearchStrategy[Activity]:
    return st.builds(
        lambda kind, age, url: Activity(
            crm="hubspot",
            crm_id=f"a{next(counter)}",
            contact_id="c1",
            type=kind,
            occurred_at=AS_OF - timedelta(seconds=age),
            url=url,
        ),
        st.sampled_from(types or list(ActivityType)),
        st.integers(0, 400 * 86_400),
        st.sampled_from([None, "/pricing", "/blog/post", "/pricing/enterprise"]),
    )


histories = st.lists(activities(), max_size=25)


@settings(max_examples=150, deadline=None)
@given(contacts, histories, activities(POSITIVE))
def test_a_positive_activity_never_lowers_the_score(who, history, extra) -> None:
    before = score(MODEL, who, history, AS_OF)
    after = score(MODEL, who, [*history, extra], AS_OF)
    assert after.total >= before.total
    assert after.engagement >= before.engagement


@settings(max_examples=150, deadline=None)
@given(contacts, histories, activities(NEGATIVE))
def test_a_negative_activity_never_raises_the_score(who, history, extra) -> None:
    before = score(MODEL, who, history, AS_OF)
    after = score(MODEL, who, [*history, extra], AS_OF)
    assert after.total <= before.total


@settings(max_examples=150, deadline=None)
@given(contacts, histories, activities(POSITIVE), st.integers(1, 200 * 86_400))
def test_moving_a_positive_activity_into_the_past_never_raises_engagement(
    who, history, moved, seconds
) -> None:
    older = moved.model_copy(update={"occurred_at": moved.occurred_at - timedelta(seconds=seconds)})
    newer_result = score(MODEL, who, [*history, moved], AS_OF)
    older_result = score(MODEL, who, [*history, older], AS_OF)
    assert older_result.engagement <= newer_result.engagement


@settings(max_examples=150, deadline=None)
@given(contacts, histories)
def test_caps_are_never_exceeded(who, history) -> None:
    result = score(MODEL, who, history, AS_OF)
    by_rule = {r.rule: r.points for r in result.reasons}
    for rule in RULES:
        if rule.max_points is not None and rule.id in by_rule:
            assert abs(by_rule[rule.id]) <= rule.max_points
    assert MODEL.engagement.max_points is not None
    assert result.engagement <= MODEL.engagement.max_points


@settings(max_examples=150, deadline=None)
@given(contacts, histories, st.randoms(use_true_random=False))
def test_order_of_activities_does_not_matter(who, history, rnd) -> None:
    shuffled = list(history)
    rnd.shuffle(shuffled)
    assert score(MODEL, who, history, AS_OF) == score(MODEL, who, shuffled, AS_OF)


@settings(max_examples=100, deadline=None)
@given(contacts, histories)
def test_reasons_account_for_every_point(who, history) -> None:
    result = score(MODEL, who, history, AS_OF)
    assert abs(sum(r.points for r in result.reasons) - result.total) < 0.05
