"""Backtest figures against a history small enough to work out by hand.

Twelve contacts scored at one cut. Four converted (c1, c3, c5, c9): the base rate is 1/3.

    id   total fit eng grade MQL source   converted lead  activities
    c1   90    40  50  A     yes web      yes       10    9
    c2   80    40  40  A     yes web      no        -     8
    c3   80    25  55  B     yes event    yes       30    5
    c4   70    25  45  B     yes event    no        -     7
    c5   60    40  20  A     no  web      yes       20    3
    c6   50    10  40  C     no  unknown  no        -     6
    c7   50    10  40  C     no  event    no        -     2
    c8   40    25  15  B     no  web      no        -     4
    c9   30    10  20  C     no  unknown  yes       none  1
    c10  20     0  20  D     no  web      no        -     1
    c11  10     0  10  D     no  unknown  no        -     0
    c12  10     0  10  D     no  event    no        -     0

(c5 scores 60 but is no MQL: a model's criteria can say no above any threshold. c9's
conversion has no date, so it has no lead time.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from scoring.backtest import (
    Decile,
    MqlFigures,
    ScoredContact,
    SweepPoint,
    auc,
    baseline_auc,
    by_group,
    judge,
    label_at,
    lift_by_decile,
    median,
    mql_figures,
    recommend_threshold,
    sweep,
    thin_sweep,
    unjudgeable,
)

CUT = datetime(2026, 6, 1, tzinfo=UTC)
TABLE = [
    # id, total, fit, engagement, grade, mql, source, converted, lead days, activities
    ("c1", 90, 40, 50, "A", True, "web", True, 10.0, 9),
    ("c2", 80, 40, 40, "A", True, "web", False, None, 8),
    ("c3", 80, 25, 55, "B", True, "event", True, 30.0, 5),
    ("c4", 70, 25, 45, "B", True, "event", False, None, 7),
    ("c5", 60, 40, 20, "A", False, "web", True, 20.0, 3),
    ("c6", 50, 10, 40, "C", False, "unknown", False, None, 6),
    ("c7", 50, 10, 40, "C", False, "event", False, None, 2),
    ("c8", 40, 25, 15, "B", False, "web", False, None, 4),
    ("c9", 30, 10, 20, "C", False, "unknown", True, None, 1),
    ("c10", 20, 0, 20, "D", False, "web", False, None, 1),
    ("c11", 10, 0, 10, "D", False, "unknown", False, None, 0),
    ("c12", 10, 0, 10, "D", False, "event", False, None, 0),
]
ROWS = [
    ScoredContact(
        contact_id=cid,
        cut=CUT,
        total=float(total),
        fit=float(fit),
        engagement=float(eng),
        grade=grade,
        is_mql=mql,
        source=source,
        activities=acts,
        converted=conv,
        lead_days=lead,
    )
    for cid, total, fit, eng, grade, mql, source, conv, lead, acts in TABLE
]
TOTALS = [row.total for row in ROWS]
LABELS = [row.converted for row in ROWS]


def test_auc_of_the_total_counts_a_tie_as_half() -> None:
    # 4 converters x 8 others = 32 pairs. Pairs each converter wins:
    #   c1 90: all 8 -> 8
    #   c3 80: 70,50,50,40,20,10,10 -> 7, and the tie with c2 (80) -> 0.5: 7.5
    #   c5 60: 50,50,40,20,10,10 -> 6
    #   c9 30: 20,10,10 -> 3
    # (8 + 7.5 + 6 + 3) / 32 = 24.5 / 32
    assert auc(TOTALS, LABELS) == 24.5 / 32 == 0.765625


def test_auc_of_fit_and_of_engagement_alone() -> None:
    # fit: converters 40, 25, 40, 10; others 40, 25, 10, 10, 25, 0, 0, 0
    #   40: 7 lower + tie with c2 -> 7.5 (twice: c1 and c5)
    #   25: 5 lower (10, 10, 0, 0, 0) + ties with c4, c8 -> 6
    #   10: 3 lower (0, 0, 0) + ties with c6, c7 -> 4
    # (7.5 + 6 + 7.5 + 4) / 32 = 25 / 32
    assert auc([r.fit for r in ROWS], LABELS) == 25 / 32
    # engagement: converters 50, 55, 20, 20; others 40, 45, 40, 40, 15, 20, 10, 10
    #   50 and 55 beat all 8 -> 16; each 20 beats 15, 10, 10 and ties c10 -> 3.5 twice
    # (16 + 7) / 32 = 23 / 32
    assert auc([r.engagement for r in ROWS], LABELS) == 23 / 32


def test_the_naive_baseline_ranks_by_activity_count() -> None:
    # converters 9, 5, 3, 1; others 8, 7, 6, 2, 4, 1, 0, 0
    #   9: 8;  5: 2, 4, 1, 0, 0 -> 5;  3: 2, 1, 0, 0 -> 4;  1: 0, 0 and a tie -> 2.5
    # 19.5 / 32
    assert baseline_auc(ROWS) == 19.5 / 32


def test_auc_edge_cases() -> None:
    assert auc([1, 2, 3], [False, False, False]) is None
    assert auc([1, 2, 3], [True, True, True]) is None
    assert auc([], []) is None
    assert auc([5, 5, 5, 5], [True, False, True, False]) == 0.5  # all tied: a coin toss
    assert auc([1, 2], [True, False]) == 0.0  # perfectly backwards
    with pytest.raises(ValueError, match="2 scores but 1 labels"):
        auc([1, 2], [True])


def test_lift_by_decile_keeps_ties_together() -> None:
    # Highest first; a run of equal scores joins the decile of its first member,
    # position p of 12 in decile 1 + p * 10 // 12:
    #   p0 c1 90 -> 1;  p1 c2/c3 80 -> 1;  p3 c4 70 -> 3;  p4 c5 60 -> 4;
    #   p5 c6/c7 50 -> 5;  p7 c8 40 -> 6;  p8 c9 30 -> 7;  p9 c10 20 -> 8;
    #   p10 c11/c12 10 -> 9;  deciles 2 and 10 stay empty.
    # Overall conversion 4/12 = 1/3, so lift = decile conversion * 3.
    assert lift_by_decile(TOTALS, LABELS) == [
        Decile(1, 3, 2, 2 / 3, 2.0, 80.0, 90.0),  # c1, c2, c3: c1 and c3 converted
        Decile(2, 0, 0, None, None, None, None),
        Decile(3, 1, 0, 0.0, 0.0, 70.0, 70.0),
        Decile(4, 1, 1, 1.0, 3.0, 60.0, 60.0),
        Decile(5, 2, 0, 0.0, 0.0, 50.0, 50.0),
        Decile(6, 1, 0, 0.0, 0.0, 40.0, 40.0),
        Decile(7, 1, 1, 1.0, 3.0, 30.0, 30.0),
        Decile(8, 1, 0, 0.0, 0.0, 20.0, 20.0),
        Decile(9, 2, 0, 0.0, 0.0, 10.0, 10.0),
        Decile(10, 0, 0, None, None, None, None),
    ]


def test_lift_does_not_depend_on_input_order() -> None:
    backwards = lift_by_decile(TOTALS[::-1], LABELS[::-1])
    assert backwards == lift_by_decile(TOTALS, LABELS)


def test_mql_figures_at_the_models_own_decision() -> None:
    # MQLs c1..c4: 4 of 12. Converters among them c1, c3: conversion 2/4. Recall: 2 of
    # the 4 converters. Lead times of converted MQLs 10 and 30: median 20.
    assert mql_figures(ROWS) == MqlFigures(
        contacts=12,
        converters=4,
        mqls=4,
        mql_converters=2,
        mql_rate=1 / 3,
        conversion=0.5,
        recall=0.5,
        median_lead_days=20.0,
    )


def test_figures_by_grade_in_grade_order() -> None:
    groups = by_group(ROWS, lambda row: row.grade, ("A", "B", "C", "D"))
    assert [g.group for g in groups] == ["A", "B", "C", "D"]
    a, b, c, d = (g.figures for g in groups)
    # A: c1, c2, c5. Converted c1, c5; MQLs c1, c2; converted MQL c1 (lead 10).
    assert a == MqlFigures(3, 2, 2, 1, 2 / 3, 0.5, 0.5, 10.0)
    # B: c3, c4, c8. Converted c3; MQLs c3, c4; converted MQL c3 (lead 30).
    assert b == MqlFigures(3, 1, 2, 1, 2 / 3, 0.5, 1.0, 30.0)
    # C: c6, c7, c9. Converted c9, no MQL: conversion unknown, recall 0.
    assert c == MqlFigures(3, 1, 0, 0, 0.0, None, 0.0, None)
    # D: c10, c11, c12. Nobody converted, no MQL.
    assert d == MqlFigures(3, 0, 0, 0, 0.0, None, None, None)


def test_figures_by_lead_source_largest_first() -> None:
    groups = by_group(ROWS, lambda row: row.source)
    assert [(g.group, g.figures.contacts) for g in groups] == [
        ("web", 5),  # c1 c2 c5 c8 c10
        ("event", 4),  # c3 c4 c7 c12
        ("unknown", 3),  # c6 c9 c11
    ]
    web, event, unknown = (g.figures for g in groups)
    # web: converted c1, c5; MQLs c1, c2 -> conversion 1/2, recall 1/2
    assert (web.converters, web.mqls, web.conversion, web.recall) == (2, 2, 0.5, 0.5)
    # event: converted c3; MQLs c3, c4 -> conversion 1/2, recall 1/1
    assert (event.converters, event.mqls, event.conversion, event.recall) == (1, 2, 0.5, 1.0)
    # unknown: converted c9, no MQL -> conversion unknown, recall 0
    assert (unknown.converters, unknown.mqls, unknown.conversion, unknown.recall) == (
        1,
        0,
        None,
        0.0,
    )


# Threshold sweep over the distinct totals (MQL when total >= threshold):
#   t   MQLs converted conversion recall
#   90  1    1         1          1/4
#   80  3    2         2/3        2/4
#   70  4    2         1/2        2/4
#   60  5    3         3/5        3/4
#   50  7    3         3/7        3/4
#   40  8    3         3/8        3/4
#   30  9    4         4/9        1
#   20  10   4         4/10       1
#   10  12   4         4/12       1
SWEEP = [
    SweepPoint(90.0, 1, 1, 1.0, 0.25),
    SweepPoint(80.0, 3, 2, 2 / 3, 0.5),
    SweepPoint(70.0, 4, 2, 0.5, 0.5),
    SweepPoint(60.0, 5, 3, 0.6, 0.75),
    SweepPoint(50.0, 7, 3, 3 / 7, 0.75),
    SweepPoint(40.0, 8, 3, 3 / 8, 0.75),
    SweepPoint(30.0, 9, 4, 4 / 9, 1.0),
    SweepPoint(20.0, 10, 4, 0.4, 1.0),
    SweepPoint(10.0, 12, 4, 1 / 3, 1.0),
]


def test_sweep_one_point_per_distinct_score() -> None:
    assert sweep(TOTALS, LABELS) == SWEEP


def test_a_long_sweep_is_thinned_keeping_both_ends() -> None:
    # 9 points to 3: indexes round(i * 8 / 2) = 0, 4, 8
    assert [p.threshold for p in thin_sweep(SWEEP, 3)] == [90.0, 50.0, 10.0]
    # The recommended threshold stays in, as a fourth point.
    assert [p.threshold for p in thin_sweep(SWEEP, 3, keep=30.0)] == [90.0, 50.0, 30.0, 10.0]
    assert thin_sweep(SWEEP, 50) == SWEEP


def test_recommended_threshold_is_the_best_recall_in_band() -> None:
    # Band 35%-45%: in it are 50 (3/7, recall 3/4), 40 (3/8, 3/4), 30 (4/9, 1), 20 (4/10, 1).
    # Highest recall 1 at 30 and at 20: the tie goes to the higher threshold, 30.
    pick = recommend_threshold(TOTALS, LABELS, (0.35, 0.45))
    assert (pick.threshold, pick.volume, pick.conversion, pick.recall, pick.in_band) == (
        30.0,
        9,
        4 / 9,
        1.0,
        True,
    )
    assert "inside 35%-45%" in pick.reason


def test_band_bounds_are_included() -> None:
    # Band exactly 50%-60%: 70 (1/2, recall 1/2) and 60 (3/5, recall 3/4) are in: 60 wins.
    pick = recommend_threshold(TOTALS, LABELS, (0.5, 0.6))
    assert (pick.threshold, pick.in_band) == (60.0, True)


def test_no_threshold_in_the_default_band() -> None:
    # Every conversion is 1/3 or more, above 15%-30%. The closest is 1/3 at 10
    # (1/3 - 0.30 = 1/30 away): every contact an MQL.
    pick = recommend_threshold(TOTALS, LABELS)
    assert (pick.threshold, pick.volume, pick.conversion, pick.recall, pick.in_band) == (
        10.0,
        12,
        1 / 3,
        1.0,
        False,
    )
    assert "no threshold gives conversion inside 15%-30%" in pick.reason
    assert "above the band" in pick.reason


def test_closest_to_the_band_from_below() -> None:
    # Band 70%-80%: nothing in it; 2/3 at 80 is 1/30 below, 1 at 90 is 1/5 above: 80.
    pick = recommend_threshold(TOTALS, LABELS, (0.7, 0.8))
    assert (pick.threshold, pick.in_band) == (80.0, False)
    assert "below the band" in pick.reason


def test_a_bad_band_is_refused() -> None:
    with pytest.raises(ValueError, match="band"):
        recommend_threshold(TOTALS, LABELS, (0.3, 0.15))


def test_judge_gathers_every_figure() -> None:
    figures = judge(ROWS, (0.35, 0.45))
    assert (figures.rows, figures.converters, figures.base_rate) == (12, 4, 1 / 3)
    assert (figures.auc_total, figures.auc_fit, figures.auc_engagement) == (
        24.5 / 32,
        25 / 32,
        23 / 32,
    )
    assert figures.mql == mql_figures(ROWS)
    assert [g.group for g in figures.by_grade] == ["A", "B", "C", "D"]
    assert [g.group for g in figures.by_source] == ["web", "event", "unknown"]
    assert figures.lift == lift_by_decile(TOTALS, LABELS)
    assert figures.sweep == SWEEP
    assert figures.recommended.threshold == 30.0
    assert unjudgeable(ROWS) is None


def test_no_converters_cannot_be_judged() -> None:
    nobody = [
        ScoredContact(**{**row.__dict__, "converted": False, "lead_days": None}) for row in ROWS
    ]
    assert unjudgeable(nobody) == ("no converters among 12 contacts: conversion cannot be judged")
    assert unjudgeable([]) == "no contacts to judge at the cut dates"
    figures = judge(nobody)
    assert figures.auc_total is None and figures.auc_fit is None
    assert all(d.lift is None for d in figures.lift)
    assert figures.mql.recall is None and figures.mql.conversion == 0.0
    pick = figures.recommended
    assert (pick.threshold, pick.volume, pick.in_band) == (None, 0, False)
    assert pick.reason == "no converters: conversion cannot be judged"
    assert recommend_threshold([], []).reason == "no contacts to judge"


@pytest.mark.parametrize(
    ("converted", "converted_at", "expected"),
    [
        (False, None, (False, None)),
        (True, None, (True, None)),  # no date: taken as given
        (True, CUT - timedelta(days=1), None),  # already sales' at the cut: left out
        (True, CUT, (True, 0.0)),
        (True, CUT + timedelta(days=45, hours=12), (True, 45.5)),
        (True, CUT + timedelta(days=90), (True, 90.0)),  # the horizon's last day counts
        (True, CUT + timedelta(days=90, seconds=1), (False, None)),  # after it: not yet
    ],
)
def test_label_at_a_cut(
    converted: bool, converted_at: datetime | None, expected: tuple[bool, float | None] | None
) -> None:
    assert label_at(converted, converted_at, CUT, 90) == expected


def test_median() -> None:
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.booleans()), min_size=2, max_size=40
    )
)
def test_auc_agrees_with_scikit_learn(pairs: list[tuple[int, bool]]) -> None:
    scores = [float(score) for score, _ in pairs]
    labels = [label for _, label in pairs]
    ours = auc(scores, labels)
    if len(set(labels)) < 2:
        assert ours is None
    else:
        assert ours == pytest.approx(roc_auc_score(labels, scores))
