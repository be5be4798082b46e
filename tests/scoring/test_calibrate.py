"""Calibration: rule features, learned points on planted signals, refusals."""

from __future__ import annotations

import math
import random
import re
from datetime import timedelta

import numpy as np
import pytest

from scoring.backtest import recommend_threshold
from scoring.calibrate import (
    CalibrationError,
    Example,
    _folds,
    _out_of_fold,
    _threshold_out_of_fold,
    calibrate,
    check_threshold,
    compare,
    feature_table,
    next_version,
    rule_features,
)
from scoring.engine import score
from scoring.model import ScoringModel, parse_model
from scoring.records import Activity, Contact
from tests.scoring.factories import AS_OF, activity, contact

# The points are wrong on purpose: the no-signal rule is the largest.
PLANTED = """
name: planted
version: 1
fit:
  rules:
    - {id: senior, field: job_title, matches: "(?i)\\\\b(vp|director)\\\\b", points: 5}
    - {id: big-company, field: company_size, gte: 50, points: 40}
engagement:
  half_life_days: 30
  rules:
    - {id: demo, activity: demo_request, points: 5, max_points: 15}
    - {id: unsubscribed, activity: email_unsubscribe, points: -10, decay: false}
qualify: {threshold: 40, min_fit: 5}
"""

FIT_ONLY = """
name: fit-only
version: "2026.4"
fit:
  rules:
    - {id: enterprise-plan, field: plan, eq: enterprise, points: 2}
    - {id: many-seats, field: seats, gte: 10, points: 30}
    - {id: partner, field: properties.partner, eq: true, points: 0}
qualify: {threshold: 20}
"""


def build(text: str) -> ScoringModel:
    return parse_model(text, "test.yaml")


def planted(
    seed: int,
    size: int,
    *,
    unsubscribers_convert: bool = False,
    base: float = -4.0,
    offset: int = 0,
) -> list[Example]:
    """Conversion driven by seniority and demo requests; company size carries nothing."""
    rng = random.Random(seed)
    examples = []
    for index in range(offset, offset + size):
        crm_id = f"c{index}"
        senior = rng.random() < 0.3
        who = Contact(
            crm="hubspot",
            crm_id=crm_id,
            job_title="VP Sales" if senior else "Analyst",
            company_size=rng.choice([10, 200]),
            created_at=AS_OF - timedelta(days=400),
        )
        demos = rng.choice([0, 0, 0, 1, 1, 2])
        unsubscribed = rng.random() < 0.2
        did = [_did(crm_id, f"d{k}", "demo_request", rng.uniform(0, 20)) for k in range(demos)]
        did += [_did(crm_id, f"p{k}", "page_view", rng.uniform(0, 60)) for k in range(3)]
        if unsubscribed:
            did.append(_did(crm_id, "u", "email_unsubscribe", rng.uniform(0, 60)))
        logit = (
            base + 1.8 * senior + 1.3 * demos + (1.5 * unsubscribed if unsubscribers_convert else 0)
        )
        converted = rng.random() < 1 / (1 + math.exp(-logit))
        examples.append(Example(who, did, converted))
    return examples


def fit_only(seed: int, size: int) -> list[Example]:
    """Conversion driven by the plan property alone; seats and partner carry nothing."""
    rng = random.Random(seed)
    examples = []
    for index in range(size):
        enterprise = rng.random() < 0.35
        who = Contact(
            crm="hubspot",
            crm_id=f"f{index}",
            properties={
                "plan": "enterprise" if enterprise else "free",
                "seats": rng.choice([3, 25]),
                "partner": rng.random() < 0.5,
            },
        )
        chance = 0.35 if enterprise else 0.05
        examples.append(Example(who, [], rng.random() < chance))
    return examples


def _did(contact_id: str, suffix: str, kind: str, days_ago: float) -> Activity:
    return Activity(
        crm="hubspot",
        crm_id=f"{contact_id}{suffix}",
        contact_id=contact_id,
        type=kind,
        occurred_at=AS_OF - timedelta(days=days_ago),
    )


def points(model: ScoringModel) -> dict[str, float]:
    rules = [*model.fit.rules, *model.engagement.rules]
    return {rule.id: rule.points for rule in rules}  # type: ignore[attr-defined]


# --- features ---------------------------------------------------------------------------


FEATURES = """
name: f
version: 1
fit:
  rules:
    - {id: cto, field: job_title, eq: CTO, points: 20}
    - {id: student, field: job_title, eq: student, points: -40}
engagement:
  half_life_days: 30
  max_points: 5
  rules:
    - {id: demo, activity: demo_request, points: 10, max_points: 15}
    - {id: clicks, activity: email_click, points: 0, max_points: 2}
    - {id: pricing, activity: page_view, where: {url_contains: /pricing}, at_least: 2,
       points: 25}
    - {id: bounce, activity: email_bounce, points: -20, decay: false}
qualify: {threshold: 50}
"""


def test_features_are_effective_occurrences() -> None:
    model = build(FEATURES)
    did = [
        activity("demo_request", days_ago=0),
        activity("demo_request", days_ago=0),
        activity("email_click", days_ago=0),
        activity("email_click", days_ago=30),
        activity("email_click", days_ago=30),
        activity("page_view", days_ago=1, url="/pricing"),
        activity("page_view", days_ago=2, url="/pricing"),
        activity("email_bounce", days_ago=300),
    ]
    features = rule_features(model, contact(job_title="CTO"), did, AS_OF)
    assert features == {
        "cto": 1.0,
        "student": 0.0,
        "demo": 1.5,  # two at full weight, capped at 15 points = 1.5 occurrences
        "clicks": 2.0,  # a candidate: 1 + 0.5 + 0.5, uncapped
        "pricing": 1.0,  # a window rule fires once
        "bounce": 1.0,  # a penalty counts as a positive occurrence
    }
    # Reading features changes nothing the engine gives for the model itself.
    result = score(model, contact(job_title="CTO"), did, AS_OF)
    assert result.engagement == 5 and result.fit == 20


def test_feature_of_a_decayed_occurrence() -> None:
    model = build(FEATURES)
    features = rule_features(model, contact(), [activity("demo_request", days_ago=30)], AS_OF)
    assert features["demo"] == pytest.approx(0.5, abs=1e-4)
    assert features["cto"] == 0.0


def test_an_example_is_scored_as_of_its_own_cut() -> None:
    """Examples from several cut dates share one table: each is read as of its own cut."""
    model = build(FEATURES)
    demo = [activity("demo_request", days_ago=30)]
    later = Example(contact(), demo, True, as_of=AS_OF + timedelta(days=30))
    table = feature_table(model, [Example(contact(), demo, True), later], AS_OF)
    demo_column = table.rules.index("demo")
    assert table.rows[0][demo_column] == pytest.approx(0.5, abs=1e-4)
    assert table.rows[1][demo_column] == pytest.approx(0.25, abs=1e-4)


# --- the fit ----------------------------------------------------------------------------


def test_planted_rules_end_dominant_and_rank_better() -> None:
    model = build(PLANTED)
    train, holdout = planted(1, 420), planted(2, 180, offset=420)
    result = calibrate(model, train, AS_OF)
    learned = points(result.model)
    assert max(abs(p) for p in learned.values()) == 40  # the model's own scale
    ranked = sorted(learned, key=lambda rule: -abs(learned[rule]))
    assert set(ranked[:2]) == {"senior", "demo"}
    assert learned["senior"] >= 20 and learned["demo"] >= 20
    assert abs(learned["big-company"]) <= 5
    assert "big-company" in {change.rule for change in result.zeroed}
    comparison = compare(model, result.model, holdout, AS_OF)
    assert comparison.size == 180 and comparison.converters == sum(e.converted for e in holdout)
    assert comparison.auc_after is not None and comparison.auc_before is not None
    assert comparison.auc_after > comparison.auc_before + 0.1


def test_learned_model_keeps_its_rules_and_scales_caps() -> None:
    model = build(PLANTED)
    result = calibrate(model, planted(1, 420), AS_OF)
    new = result.model
    assert [rule.id for rule in new.fit.rules] == ["senior", "big-company"]
    assert new.fit.rules[0].matches == model.fit.rules[0].matches
    demo = new.engagement.rules[0]
    # The cap stays three occurrences: 15 points at 5 a demo before.
    assert demo.max_points == 3 * demo.points
    assert (new.name, new.version) == ("planted-calibrated", 2)
    assert new.qualify.threshold == result.threshold.threshold
    assert result.threshold.threshold is not None and result.threshold.threshold > 0
    assert result.threshold.in_band


def test_the_engagement_sections_cap_is_dropped_and_said() -> None:
    """The points are learned from uncapped features: the section's cap would flatten the
    most engaged, so the new model has none, and the calibration says which it dropped."""
    capped = PLANTED.replace("  half_life_days: 30\n", "  half_life_days: 30\n  max_points: 12\n")
    model = build(capped)
    assert model.engagement.max_points == 12
    result = calibrate(model, planted(1, 420), AS_OF)
    assert result.model.engagement.max_points is None
    assert result.dropped_cap == 12
    assert calibrate(build(PLANTED), planted(1, 420), AS_OF).dropped_cap is None


def test_min_fit_lets_through_the_closest_share() -> None:
    model = build(PLANTED)
    train = planted(1, 420)
    new = calibrate(model, train, AS_OF).model
    old_fit = [score(model, e.contact, e.activities, AS_OF).fit for e in train]
    new_fit = [score(new, e.contact, e.activities, AS_OF).fit for e in train]

    def share(scores: list[float], cut: float) -> float:
        return sum(s >= cut for s in scores) / len(scores)

    wanted = share(old_fit, 5)
    assert new.qualify.min_fit is not None
    reached = abs(share(new_fit, new.qualify.min_fit) - wanted)
    assert all(reached <= abs(share(new_fit, cut) - wanted) for cut in {*new_fit, 1e9})


def test_a_penalty_the_data_contradicts_ends_at_zero() -> None:
    model = build(PLANTED)
    result = calibrate(model, planted(3, 500, unsubscribers_convert=True), AS_OF)
    change = {change.rule: change for change in result.rules}["unsubscribed"]
    assert change.new == 0 and change.status == "zeroed"
    assert change.why.startswith("opposite sign") and change.z is not None and change.z > 1.96


def test_fit_only_data_with_custom_properties() -> None:
    model = build(FIT_ONLY)
    train, holdout = fit_only(4, 600), fit_only(5, 300)
    result = calibrate(model, train, AS_OF)
    learned = points(result.model)
    assert learned["enterprise-plan"] == 30
    assert abs(learned["many-seats"]) <= 4 and abs(learned["partner"]) <= 4
    assert result.model.version == "2026.5"
    comparison = compare(model, result.model, holdout, AS_OF)
    assert comparison.auc_after is not None and comparison.auc_before is not None
    assert comparison.auc_after > comparison.auc_before + 0.1


def test_rules_that_never_fire_keep_their_points() -> None:
    model = build(PLANTED.replace("email_unsubscribe", "support_complaint"))
    result = calibrate(model, planted(1, 420), AS_OF)
    change = {change.rule: change for change in result.rules}["unsubscribed"]
    assert (change.status, change.new, change.why) == ("kept", -10, "fires for no contact")


# --- refusals ---------------------------------------------------------------------------


def relabel(examples: list[Example], converters: int) -> list[Example]:
    return [
        Example(example.contact, example.activities, index < converters)
        for index, example in enumerate(examples)
    ]


def test_too_few_converters_is_refused() -> None:
    examples = relabel(planted(1, 400), 29)
    with pytest.raises(CalibrationError, match="29 converters of 400 contacts"):
        calibrate(build(PLANTED), examples, AS_OF)


@pytest.mark.parametrize("converted", [True, False])
def test_one_sided_data_is_refused(converted: bool) -> None:
    examples = [Example(e.contact, e.activities, converted) for e in planted(1, 200)]
    kind = "non-converters" if converted else "converters"
    with pytest.raises(CalibrationError, match=f"has 0 {kind}"):
        calibrate(build(PLANTED), examples, AS_OF)


def test_a_model_that_fires_on_nothing_is_refused() -> None:
    model = build(FIT_ONLY)
    message = re.escape("no rule of fit-only@2026.4 fires on the data")
    with pytest.raises(CalibrationError, match=message):
        calibrate(model, planted(1, 400), AS_OF)


def test_constant_features_are_refused() -> None:
    model = build(PLANTED)
    same = [
        Example(e.contact.model_copy(update={"job_title": "VP", "company_size": 500}), [], c)
        for e, c in zip(planted(1, 200), [i % 3 == 0 for i in range(200)], strict=True)
    ]
    with pytest.raises(CalibrationError, match="same for every contact"):
        calibrate(model, same, AS_OF)


def test_no_signal_at_all_is_refused() -> None:
    rng = random.Random(9)
    examples = [Example(e.contact, e.activities, rng.random() < 0.3) for e in planted(1, 300)]
    with pytest.raises(CalibrationError, match="better than the base rate alone"):
        calibrate(build(PLANTED), examples, AS_OF)


SENIOR = """
name: senior
version: 1
fit:
  rules:
    - {id: senior, field: job_title, matches: "(?i)^vp", points: 50}
qualify: {threshold: 40}
"""


def people(size: int, seniors: int, converted_seniors: int) -> list[Example]:
    """`size` contacts, the first `seniors` of them VPs, the first `converted_seniors` converted."""
    return [
        Example(
            contact(crm_id=f"p{i}", job_title="VP Sales" if i < seniors else "Analyst"),
            [],
            i < converted_seniors,
        )
        for i in range(size)
    ]


def test_a_threshold_that_lets_through_the_same_share_in_band_holds() -> None:
    check = check_threshold(build(SENIOR), people(10, 2, 1), people(20, 4, 1), AS_OF, (0.15, 0.30))
    assert check is not None
    assert (check.threshold, check.train_share, check.holdout_share) == (40, 0.2, 0.2)
    assert (check.holdout_mqls, check.holdout_conversion) == (4, 0.25)
    assert check.holds


def test_a_threshold_whose_share_moves_on_the_holdout_does_not_hold() -> None:
    """Four times the training share over the threshold, and conversion out of the band."""
    check = check_threshold(build(SENIOR), people(10, 2, 1), people(20, 16, 2), AS_OF, (0.15, 0.30))
    assert check is not None
    assert (check.holdout_share, check.holdout_mqls, check.holdout_conversion) == (0.8, 16, 0.125)
    assert not check.in_band
    assert not check.holds


def test_a_threshold_in_share_but_out_of_band_does_not_hold() -> None:
    check = check_threshold(build(SENIOR), people(10, 2, 1), people(20, 4, 3), AS_OF, (0.15, 0.30))
    assert check is not None
    assert (check.holdout_share, check.holdout_conversion) == (0.2, 0.75)
    assert not check.holds


def test_no_threshold_no_check() -> None:
    model = build(SENIOR.replace("qualify: {threshold: 40}", "qualify: {min_grade: C}"))
    assert check_threshold(model, people(10, 2, 1), people(10, 2, 1), AS_OF, (0.15, 0.30)) is None


@pytest.mark.parametrize(
    ("given", "expected"), [(1, 2), ("2026.4", "2026.5"), ("v9", "v10"), ("beta", "beta.1")]
)
def test_next_version(given: str | int, expected: str | int) -> None:
    assert next_version(given) == expected


def test_the_threshold_is_judged_on_out_of_fold_order() -> None:
    """Twenty contacts with learned totals 200, 190, ..., 10; three converters.

    On the totals themselves the three are the top three, and the band rule would take
    the ten highest (3 of 10 = 30%). Out of fold the converters rank 1st, 6th and 16th:
    ten contacts would hold only two of them, and sixteen hold all three at 18.75%, in
    the band, so the threshold is the 16th total, 50.
    """
    learned = [200.0 - 10 * index for index in range(20)]
    labels = [index < 3 for index in range(20)]
    ranks = {0: 0, 1: 5, 2: 15}  # the converters' places out of fold
    others = iter(rank for rank in range(20) if rank not in ranks.values())
    place = [ranks[index] if index in ranks else next(others) for index in range(20)]
    unseen = [-float(rank) for rank in place]

    in_sample = recommend_threshold(learned, labels)
    assert (in_sample.threshold, in_sample.volume) == (110.0, 10)
    pick = _threshold_out_of_fold(unseen, labels, learned, (0.15, 0.30))
    assert (pick.threshold, pick.volume, pick.recall) == (50.0, 16, 1.0)
    assert pick.conversion == pytest.approx(3 / 16)
    assert pick.in_band and "out of fold" in pick.reason


def test_out_of_fold_scores_rank_by_what_the_other_folds_learned() -> None:
    """A rule that marks every converter, beside noise: each fold learns it from the
    others, and the same data gives the same scores."""

    rows, target, contacts = [], [], []
    rng = random.Random(5)
    for index in range(400):
        converted = rng.random() < 0.3
        rows.append([1.0 if converted else 0.0, rng.random()])
        target.append(int(converted))
        contacts.append(f"c{index}")
    matrix = np.asarray(rows)
    scores = _out_of_fold(matrix, np.asarray(target), [0, 1], [0.0, 0.0], _folds(contacts), 1.0)
    assert len(scores) == 400
    assert scores == _out_of_fold(
        matrix, np.asarray(target), [0, 1], [0.0, 0.0], _folds(contacts), 1.0
    )
    converters = [s for s, t in zip(scores, target, strict=True) if t]
    others = [s for s, t in zip(scores, target, strict=True) if not t]
    assert min(converters) > max(others)  # the real signal is learned in every fold


def test_a_fold_with_one_class_left_is_scored_in_sample_not_at_one_score() -> None:
    """Every converter's id falls in one fold: the other folds hold none, so that fold
    cannot be scored out of fold; its examples still rank by the signal."""
    import zlib

    held = [f"c{i}" for i in range(2000) if zlib.crc32(f"c{i}".encode()) % 5 == 0][:40]
    others = [f"c{i}" for i in range(2000) if zlib.crc32(f"c{i}".encode()) % 5 != 0][:160]
    contacts = held + others
    converted = [index < 20 for index in range(len(held))] + [False] * len(others)
    matrix = np.asarray([[1.0 if c else 0.0] for c in converted])
    scores = _out_of_fold(
        matrix, np.asarray(converted, dtype=int), [0], [0.0], _folds(contacts), 1.0
    )
    first = scores[: len(held)]
    assert min(first[:20]) > max(first[20:])


def test_equal_out_of_fold_scores_are_ordered_by_the_learned_totals() -> None:
    """Four contacts tied out of fold; the converter has the highest learned total. With
    the band at 50-100%, the threshold that takes it alone (40) is judged to hold it,
    wherever it stands in the input: ties do not fall to the input's order."""
    for labels, learned in (
        ([True, False, False, False], [40.0, 30.0, 20.0, 10.0]),
        ([False, False, False, True], [10.0, 20.0, 30.0, 40.0]),
    ):
        pick = _threshold_out_of_fold([0.0] * 4, labels, learned, (0.5, 1.0))
        assert (pick.threshold, pick.volume, pick.conversion) == (40.0, 1, 1.0)
