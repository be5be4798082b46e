"""Backtest figures: how well a scoring model's scores and MQL decisions foretold conversion.

Pure functions over scores and outcomes (no I/O, no clock). `flows/backtest.py` replays a
history through the engine and hands the results here.

Vocabulary: a *row* is one contact scored at one cut date; it is *converted* when the
contact converted (became an SQL) within the horizon after the cut. Conversion of a set of
MQLs is converters among them over their number; recall is the share of all converters
that the set holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from scoring.model import GRADE_LETTERS

DEFAULT_BAND: tuple[float, float] = (0.15, 0.30)
DECILES = 10
SWEEP_POINTS = 50
SECONDS_PER_DAY = 86_400.0
UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class ScoredContact:
    """One contact scored by one model at one cut, with what happened after the cut."""

    contact_id: str
    cut: datetime
    total: float
    fit: float
    engagement: float
    grade: str
    is_mql: bool  # the model's own decision (threshold, gates, criteria)
    source: str  # lead source, UNKNOWN_SOURCE when the contact does not say
    activities: int  # activities up to the cut: the naive baseline's score
    converted: bool  # converted within the horizon after the cut
    lead_days: float | None  # days from the cut to the conversion, when dated


def label_at(
    converted: bool, converted_at: datetime | None, cut: datetime, horizon_days: float
) -> tuple[bool, float | None] | None:
    """The label of a contact at a cut, and the days from the cut to its conversion.

    None when the contact converted before the cut (it was already sales'): leave it out.
    Converted within `horizon_days` after the cut (both ends included) is True; later is
    False. A conversion without a date is taken as given (True, no lead time).
    """
    if not converted:
        return False, None
    if converted_at is None:
        return True, None
    if converted_at < cut:
        return None
    if converted_at - cut > timedelta(days=horizon_days):
        return False, None
    return True, (converted_at - cut).total_seconds() / SECONDS_PER_DAY


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """ROC AUC of `scores` against `labels` (Mann-Whitney U; a tie counts as half).

    The probability that a converter picked at random scores higher than a non-converter
    picked at random. None when every label is the same (nothing to rank against).
    """
    _same_length(scores, labels)
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    # Rank sum of the positives, tied scores sharing their average rank (1-based).
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        average_rank = (start + end) / 2 + 1
        rank_sum += average_rank * sum(1 for i in order[start : end + 1] if labels[i])
        start = end + 1
    u = rank_sum - positives * (positives + 1) / 2
    return u / (positives * negatives)


@dataclass(frozen=True)
class SweepPoint:
    """What an MQL threshold would have done: MQL when score >= threshold."""

    threshold: float
    volume: int  # MQLs
    converters: int  # converters among the MQLs
    conversion: float  # converters / volume
    recall: float | None  # converters / all converters; None when there are none


def sweep(scores: Sequence[float], labels: Sequence[bool]) -> list[SweepPoint]:
    """One point per distinct score, highest threshold first."""
    _same_length(scores, labels)
    total_converters = sum(1 for label in labels if label)
    pairs = sorted(zip(scores, labels, strict=True), key=lambda pair: -pair[0])
    points: list[SweepPoint] = []
    volume = converters = 0
    for index, (score, label) in enumerate(pairs):
        volume += 1
        converters += 1 if label else 0
        if index + 1 < len(pairs) and pairs[index + 1][0] == score:
            continue
        points.append(
            SweepPoint(
                threshold=score,
                volume=volume,
                converters=converters,
                conversion=converters / volume,
                recall=converters / total_converters if total_converters else None,
            )
        )
    return points


def thin_sweep(
    points: Sequence[SweepPoint], most: int = SWEEP_POINTS, keep: float | None = None
) -> list[SweepPoint]:
    """At most `most` points of a sweep, evenly spaced by rank; both ends kept, and the
    point at threshold `keep` too (one more then) when it would be left out."""
    if len(points) <= most:
        return list(points)
    if most < 2:
        raise ValueError("keep at least 2 points")
    picks = {round(i * (len(points) - 1) / (most - 1)) for i in range(most)}
    picks |= {i for i, point in enumerate(points) if point.threshold == keep}
    return [points[i] for i in sorted(picks)]


@dataclass(frozen=True)
class ThresholdPick:
    """The recommended MQL threshold and what it would have done."""

    threshold: float | None
    volume: int
    conversion: float | None
    recall: float | None
    in_band: bool
    reason: str


def recommend_threshold(
    scores: Sequence[float],
    labels: Sequence[bool],
    band: tuple[float, float] = DEFAULT_BAND,
) -> ThresholdPick:
    """The threshold (a contact is MQL when score >= threshold) to recommend.

    Candidates are the distinct scores. Among those whose MQL conversion lies inside the
    band (bounds included), the one with the highest recall; on a tie the higher
    threshold (fewer MQLs for the same converters). When none is inside the band, the one
    whose conversion is closest to it, with `in_band` False; on a tie the higher recall,
    then the higher threshold.
    """
    low, high = band
    if not 0 <= low <= high <= 1:
        raise ValueError(f"band {band!r}: expected 0 <= low <= high <= 1")
    points = sweep(scores, labels)
    if not points:
        return ThresholdPick(None, 0, None, None, False, "no contacts to judge")
    if points[-1].converters == 0:
        return ThresholdPick(
            None, 0, None, None, False, "no converters: conversion cannot be judged"
        )
    exact_low, exact_high = _exact(low), _exact(high)
    band_text = f"{low:.0%}-{high:.0%}"

    def distance(point: SweepPoint) -> Fraction:
        rate = Fraction(point.converters, point.volume)
        return max(exact_low - rate, rate - exact_high, Fraction(0))

    def preference(point: SweepPoint) -> tuple[Fraction, float, float]:
        # Smallest distance, then highest recall, then highest threshold.
        return (distance(point), -(point.recall or 0.0), -point.threshold)

    best = min(points, key=preference)
    in_band = distance(best) == 0
    if in_band:
        reason = (
            f"the highest recall ({best.recall:.1%}) with MQL conversion "
            f"({best.conversion:.1%}) inside {band_text}"
        )
    else:
        side = "below" if best.conversion < low else "above"
        reason = (
            f"no threshold gives conversion inside {band_text}; the closest gives "
            f"{best.conversion:.1%} ({side} the band)"
        )
    return ThresholdPick(
        threshold=best.threshold,
        volume=best.volume,
        conversion=best.conversion,
        recall=best.recall,
        in_band=in_band,
        reason=reason,
    )


def _exact(rate: float) -> Fraction:
    """A rate as written (0.15 is 3/20, not the nearest binary float)."""
    return Fraction(repr(rate))


def _same_length(scores: Sequence[float], labels: Sequence[bool]) -> None:
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")


@dataclass(frozen=True)
class Decile:
    """One tenth of the contacts by score, 1 the highest; tied scores share a decile."""

    decile: int
    contacts: int
    converters: int
    conversion: float | None  # None for an empty decile
    lift: float | None  # conversion / overall conversion
    low: float | None  # lowest and highest score in the decile
    high: float | None


def lift_by_decile(
    scores: Sequence[float], labels: Sequence[bool], groups: int = DECILES
) -> list[Decile]:
    """Conversion per decile of score over the overall conversion.

    Contacts are ordered by score, highest first; a run of equal scores goes whole into
    the decile of its first member (position p of n is in decile 1 + p * groups // n),
    so a decile may be empty when a large tie fills the ones after it.
    """
    _same_length(scores, labels)
    if groups < 1:
        raise ValueError("at least one group")
    n = len(scores)
    overall = sum(1 for label in labels if label) / n if n else 0.0
    pairs = sorted(zip(scores, labels, strict=True), key=lambda pair: -pair[0])
    members: list[list[tuple[float, bool]]] = [[] for _ in range(groups)]
    group = 0
    for position, pair in enumerate(pairs):
        if position == 0 or pair[0] != pairs[position - 1][0]:
            group = position * groups // n
        members[group].append(pair)
    deciles: list[Decile] = []
    for index, chosen in enumerate(members, 1):
        converters = sum(1 for _, label in chosen if label)
        conversion = converters / len(chosen) if chosen else None
        deciles.append(
            Decile(
                decile=index,
                contacts=len(chosen),
                converters=converters,
                conversion=conversion,
                lift=conversion / overall if conversion is not None and overall else None,
                low=min((score for score, _ in chosen), default=None),
                high=max((score for score, _ in chosen), default=None),
            )
        )
    return deciles


@dataclass(frozen=True)
class MqlFigures:
    """What the model's own MQL decision did on a set of contacts."""

    contacts: int
    converters: int
    mqls: int
    mql_converters: int
    mql_rate: float | None  # mqls / contacts
    conversion: float | None  # mql_converters / mqls (MQL -> SQL)
    recall: float | None  # mql_converters / converters
    median_lead_days: float | None  # cut to conversion, converted MQLs with a date


def mql_figures(rows: Sequence[ScoredContact]) -> MqlFigures:
    converters = sum(1 for row in rows if row.converted)
    mqls = [row for row in rows if row.is_mql]
    hits = [row for row in mqls if row.converted]
    return MqlFigures(
        contacts=len(rows),
        converters=converters,
        mqls=len(mqls),
        mql_converters=len(hits),
        mql_rate=_ratio(len(mqls), len(rows)),
        conversion=_ratio(len(hits), len(mqls)),
        recall=_ratio(len(hits), converters),
        median_lead_days=median([row.lead_days for row in hits if row.lead_days is not None]),
    )


@dataclass(frozen=True)
class GroupFigures:
    """MQL figures within one group (a grade, a lead source)."""

    group: str
    figures: MqlFigures


def by_group(
    rows: Sequence[ScoredContact],
    key: Callable[[ScoredContact], str],
    order: Sequence[str] = (),
) -> list[GroupFigures]:
    """MQL figures per group: the groups in `order` first, then the rest by size and name."""
    groups: dict[str, list[ScoredContact]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    rank = {name: index for index, name in enumerate(order)}
    names = sorted(groups, key=lambda name: (rank.get(name, len(rank)), -len(groups[name]), name))
    return [GroupFigures(group=name, figures=mql_figures(groups[name])) for name in names]


@dataclass(frozen=True)
class ModelFigures:
    """Every figure of one model on one set of rows (one cut, or all cuts pooled)."""

    rows: int
    converters: int
    base_rate: float | None  # converters / rows
    auc_total: float | None
    auc_fit: float | None
    auc_engagement: float | None
    mql: MqlFigures
    by_grade: list[GroupFigures]
    by_source: list[GroupFigures]
    lift: list[Decile]
    sweep: list[SweepPoint]  # thinned to SWEEP_POINTS, the recommended one kept
    recommended: ThresholdPick


def judge(rows: Sequence[ScoredContact], band: tuple[float, float] = DEFAULT_BAND) -> ModelFigures:
    """All figures of one model over `rows`."""
    labels = [row.converted for row in rows]
    totals = [row.total for row in rows]
    converters = sum(labels)
    recommended = recommend_threshold(totals, labels, band)
    return ModelFigures(
        rows=len(rows),
        converters=converters,
        base_rate=_ratio(converters, len(rows)),
        auc_total=auc(totals, labels),
        auc_fit=auc([row.fit for row in rows], labels),
        auc_engagement=auc([row.engagement for row in rows], labels),
        mql=mql_figures(rows),
        by_grade=by_group(rows, lambda row: row.grade, GRADE_LETTERS),
        by_source=by_group(rows, lambda row: row.source),
        lift=lift_by_decile(totals, labels),
        sweep=thin_sweep(sweep(totals, labels), SWEEP_POINTS, recommended.threshold),
        recommended=recommended,
    )


def baseline_auc(rows: Sequence[ScoredContact]) -> float | None:
    """AUC of the naive baseline: the count of activities up to the cut."""
    return auc([float(row.activities) for row in rows], [row.converted for row in rows])


def unjudgeable(rows: Sequence[ScoredContact]) -> str | None:
    """Why these rows cannot be judged, or None when they can."""
    if not rows:
        return "no contacts to judge at the cut dates"
    converters = sum(1 for row in rows if row.converted)
    if converters == 0:
        return f"no converters among {len(rows)} contacts: conversion cannot be judged"
    if converters == len(rows):
        return f"all {len(rows)} contacts converted: there is nothing to rank them against"
    return None


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
