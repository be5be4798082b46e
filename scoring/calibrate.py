"""Learn a model's points from outcomes: the same rules, the same readable form, new numbers.

Every rule is one feature per contact, read from the engine itself so that a feature means
exactly what the rule scores: a fit rule is 1 when it matches and 0 when it does not; an
engagement rule is its contribution (decayed, capped) divided by its points, its
*effective occurrences* (a window rule is 1 when it fires). A rule at 0 points, a
candidate, has no cap in occurrences: its feature is its uncapped decayed count.

`calibrate` fits a logistic regression of conversion on those features and turns the
coefficients back into integer points on the model's own scale. Pure: no I/O, no clock;
the instant to score as of is always an argument.
"""

from __future__ import annotations

import bisect
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import numpy as np

from scoring.backtest import ThresholdPick, auc, recommend_threshold
from scoring.engine import CompiledModel, compile_model
from scoring.model import (
    MAX_POINTS,
    EngagementRule,
    FitGrade,
    FitRule,
    ScoringModel,
)
from scoring.records import Activity, Contact, ScoreResult
from scoring.regression import STRENGTHS, Choice, choose_strength, fit_toward, slope

MIN_CLASS = 30
"""Converters, and non-converters, the training data needs at the least."""
DEFAULT_TOP = 100.0
"""The largest absolute point of a model whose rules were all at 0 points."""
DRIFT_RATIO = 1.5
"""How far the share of contacts at or over the learned threshold may move between the
training data and the holdout before the threshold is reported as not holding."""
FOLDS = 5
"""Folds by contact: of the cross-validation that chooses the pull toward the model's
points, and of the out-of-fold fit the MQL threshold is chosen on."""
MIN_SPREAD = math.sqrt(0.01 * 0.99)
"""The least spread a feature is standardised by (see `_scaling`)."""
CALIBRATED_SUFFIX = "-calibrated"
# A probe model scores every rule at these points, so a reason's points divided by them is
# the rule's feature; reasons keep two decimals, so features keep four.
_UNIT = 100.0

Section = Literal["fit", "engagement"]
Status = Literal["learned", "zeroed", "kept"]


class CalibrationError(ValueError):
    """The data cannot support a calibration; the message says why and what would."""


@dataclass(frozen=True)
class Example:
    """One labelled contact: who, what they did, whether they converted.

    `as_of`, where set, is the instant this example is scored as of, instead of the
    `now` a function is given: examples drawn at several cut dates train one model.
    """

    contact: Contact
    activities: Sequence[Activity]
    converted: bool
    as_of: datetime | None = None


@dataclass(frozen=True)
class FeatureTable:
    """Features by rule (columns, in model order) for examples (rows), with their labels."""

    rules: tuple[str, ...]
    rows: tuple[tuple[float, ...], ...]
    labels: tuple[bool, ...]


@dataclass(frozen=True)
class RuleChange:
    """A rule's points before and after, and why it ended where it did."""

    rule: str
    section: Section
    old: float
    new: float
    status: Status
    why: str = ""
    z: float | None = None


@dataclass(frozen=True)
class Calibration:
    """The learned model and how it was reached."""

    model: ScoringModel
    rules: tuple[RuleChange, ...]
    scale: float
    threshold: ThresholdPick
    train_size: int
    train_converters: int
    dropped_cap: float | None = None  # the engagement section's cap, gone from the new model
    strength: float | None = None  # the pull toward the model's points the fits used

    @property
    def zeroed(self) -> tuple[RuleChange, ...]:
        """Rules the data did not support, now at 0 points."""
        return tuple(change for change in self.rules if change.status == "zeroed")

    @property
    def kept(self) -> tuple[RuleChange, ...]:
        """Rules the data could not judge (never or always firing), at their old points."""
        return tuple(change for change in self.rules if change.status == "kept")


@dataclass(frozen=True)
class Comparison:
    """Two models' AUC on the same examples (None where one class is missing)."""

    size: int
    converters: int
    auc_before: float | None
    auc_after: float | None


@dataclass(frozen=True)
class ThresholdCheck:
    """The learned MQL threshold where it was learned and where it is judged.

    Scores drift when the data does (a campaign, a new source, a tracking change): a
    threshold chosen on the training data can let through far more, or far fewer, on the
    holdout, and its conversion leave the band although the ranking holds.
    """

    threshold: float
    train_share: float  # of the training examples, the share at or over the threshold
    holdout_share: float
    holdout_mqls: int
    holdout_conversion: float | None  # None: nobody on the holdout reaches the threshold
    band: tuple[float, float]

    @property
    def in_band(self) -> bool:
        low, high = self.band
        return self.holdout_conversion is not None and low <= self.holdout_conversion <= high

    @property
    def holds(self) -> bool:
        """About the training share on the holdout, and a conversion inside the band."""
        if self.train_share == 0 or self.holdout_share == 0:
            return self.train_share == self.holdout_share
        ratio = self.holdout_share / self.train_share
        return 1 / DRIFT_RATIO <= ratio <= DRIFT_RATIO and self.in_band


def check_threshold(
    model: ScoringModel,
    train: Sequence[Example],
    holdout: Sequence[Example],
    now: datetime,
    band: tuple[float, float],
) -> ThresholdCheck | None:
    """`model`'s MQL threshold on both sides of a split; None without a threshold or data."""
    threshold = model.qualify.threshold
    if threshold is None or not train or not holdout:
        return None
    trained = [total >= threshold for total in totals(model, train, now)]
    judged = [total >= threshold for total in totals(model, holdout, now)]
    mqls = sum(judged)
    converted = sum(
        over and example.converted for over, example in zip(judged, holdout, strict=True)
    )
    return ThresholdCheck(
        threshold=threshold,
        train_share=sum(trained) / len(trained),
        holdout_share=mqls / len(judged),
        holdout_mqls=mqls,
        holdout_conversion=converted / mqls if mqls else None,
        band=band,
    )


def rule_ids(model: ScoringModel) -> tuple[str, ...]:
    """Every rule's id, fit rules first, in the model's order: the feature columns."""
    return (
        *(rule.id for rule in model.fit.rules),
        *(rule.id for rule in model.engagement.rules),
    )


def rule_features(
    model: ScoringModel, contact: Contact, activities: Sequence[Activity], now: datetime
) -> dict[str, float]:
    """One contact's feature for every rule of `model`, as of `now`."""
    return dict(zip(rule_ids(model), _Probe(model).read(contact, activities, now), strict=True))


def feature_table(model: ScoringModel, examples: Sequence[Example], now: datetime) -> FeatureTable:
    """Every example's features, as of `now`."""
    probe = _Probe(model)
    rows = tuple(
        probe.read(example.contact, example.activities, example.as_of or now)
        for example in examples
    )
    return FeatureTable(
        rules=rule_ids(model),
        rows=rows,
        labels=tuple(example.converted for example in examples),
    )


def totals(model: ScoringModel, examples: Sequence[Example], now: datetime) -> list[float]:
    """Every example's total score under `model`, as `mqlsync score` would give it."""
    return [result.total for result in _results(model, examples, now)]


def compare(
    before: ScoringModel, after: ScoringModel, examples: Sequence[Example], now: datetime
) -> Comparison:
    """How well each model ranks converters above the others on `examples` (AUC)."""
    labels = [example.converted for example in examples]
    return Comparison(
        size=len(examples),
        converters=sum(labels),
        auc_before=auc(totals(before, examples, now), labels),
        auc_after=auc(totals(after, examples, now), labels),
    )


def calibrate(
    model: ScoringModel,
    train: Sequence[Example],
    now: datetime,
    *,
    band: tuple[float, float] = (0.15, 0.30),
    strength: float | None = None,
) -> Calibration:
    """`model` with points learned from `train`; raise `CalibrationError` if it cannot be.

    The fit: a logistic regression of conversion on the rule features, standardised,
    with a penalty that pulls every coefficient toward the model's own points (in
    log-odds: the points times the log-odds per point of the model's total on the data;
    a candidate at 0 points is pulled toward 0). The model is the team's hypothesis and
    the data moves it as far as the evidence goes: little data, or a model whose total
    already ranks well, stays near the team's proportions; plenty of data, or a model
    whose total predicts nothing, goes where the data says. How hard the pull is
    (`strength`, the inverse of the penalty) is chosen, unless given, by which of
    `STRENGTHS` predicts held-out contacts best (`FOLDS` folds by contact). No class
    weights: the coefficients stay log-odds ratios (the base rate only moves the
    intercept, which points do not use) and the MQL threshold is chosen by volume, not by
    a probability of 0.5.

    A rule with non-zero points keeps its sign by design (an unsubscribe stays a
    penalty; collinear rules would otherwise trade signs and make the model unreadable):
    while any coefficient points against its rule's sign, the one most against it ends at
    0, is listed, and the rest are fitted again. A candidate at 0 points may take either
    sign. A rule that never fires, or fires for everyone, cannot be judged: it keeps its
    old points. A rule whose learned points round to 0 is listed with the zeroed ones.

    The scale: one factor for all rules, chosen so that the largest absolute learned
    point equals the model's largest absolute point; points are then rounded to integers
    (a rule that rounds to 0 is zeroed). A capped engagement rule keeps its cap in
    occurrences (new `max_points` = new points x old cap / old points); the engagement
    section's own cap is dropped, as the points were learned without it.

    Other point thresholds keep the share of training contacts they let through: the
    fit grades and `min_fit` on the new fit points, `min_engagement` on the new
    engagement points. The MQL `threshold` (where the model has one) is the band rule
    (`recommend_threshold`) judged out of fold: each training contact is ranked by a fit
    of the learned rules that did not see them (`FOLDS` folds by contact), and a threshold
    of the new totals is judged by the converters among as many contacts in that order.
    Judged on the totals it learned from, the band rule would see conversion higher than
    new contacts give, and pick a threshold that lets too many through.
    """
    labels = [example.converted for example in train]
    _refuse_small(labels)
    table = feature_table(model, train, now)
    matrix = np.asarray(table.rows, dtype=float).reshape(len(train), len(table.rules))
    old = _points(model)
    signs = [old[rule] for rule in table.rules]
    unjudged = _unjudged(model, matrix)
    active = [index for index in range(len(signs)) if index not in unjudged]
    target = np.asarray(labels, dtype=int)
    folds = _folds([example.contact.crm_id for example in train])
    fitted, dropped, chosen = _learn(matrix, target, active, signs, folds, strength)
    scale = _scale(model, [coefficient for coefficient, _ in fitted.values()])
    sections = _sections(model)
    changes: list[RuleChange] = []
    for index, rule in enumerate(table.rules):
        entry = (rule, sections[rule], old[rule])
        if index in unjudged:
            changes.append(RuleChange(*entry, old[rule], "kept", unjudged[index]))
        elif index in dropped:
            z, why = dropped[index]
            changes.append(RuleChange(*entry, 0, "zeroed", why, z))
        else:
            coefficient, z = fitted[index]
            new = round(coefficient * scale)
            status: Status = "learned" if new != 0 else "zeroed"
            changes.append(RuleChange(*entry, new, status, "" if new else "rounds to 0 points", z))
    if all(change.status != "learned" for change in changes):
        raise CalibrationError(
            f"no rule of {model.version_label} keeps points on {len(train)} contacts: "
            "every one either goes against its sign or rounds to 0, nothing was learned"
        )
    learned = _rebuilt(model, {change.rule: change.new for change in changes})
    learned = _same_shares(model, learned, train, now)
    kept = [index for index, change in enumerate(changes) if change.status == "learned"]
    unseen = _out_of_fold(matrix, target, kept, signs, folds, chosen)
    pick = _threshold_out_of_fold(unseen, labels, totals(learned, train, now), band)
    if learned.qualify.threshold is not None and pick.threshold is not None:
        qualify = learned.qualify.model_copy(update={"threshold": _tidy(pick.threshold)})
        learned = learned.model_copy(update={"qualify": qualify})
    return Calibration(
        model=learned,
        rules=tuple(changes),
        scale=scale,
        threshold=pick,
        train_size=len(train),
        train_converters=sum(labels),
        dropped_cap=model.engagement.max_points if model.engagement.rules else None,
        strength=chosen,
    )


def calibrated_name(name: str) -> str:
    """The name a calibrated model takes: one `-calibrated` suffix, never two."""
    return name if name.endswith(CALIBRATED_SUFFIX) else name + CALIBRATED_SUFFIX


def next_version(version: str | int) -> str | int:
    """The version after `version`: 3 -> 4, "2026.4" -> "2026.5", "beta" -> "beta.1"."""
    if isinstance(version, int):
        return version + 1
    digits = re.search(r"(\d+)$", version)
    if digits is None:
        return f"{version}.1"
    return version[: digits.start()] + str(int(digits.group(1)) + 1)


class _Probe:
    """A copy of a model whose every rule scores `_UNIT` points per effective occurrence."""

    def __init__(self, model: ScoringModel) -> None:
        self.ids = rule_ids(model)
        self.fit_ids = frozenset(rule.id for rule in model.fit.rules)
        fit = model.fit.model_copy(
            update={
                "rules": [rule.model_copy(update={"points": _UNIT}) for rule in model.fit.rules]
            }
        )
        engagement = model.engagement.model_copy(
            update={
                "rules": [_unit_rule(rule) for rule in model.engagement.rules],
                "max_points": None,
            }
        )
        self.compiled: CompiledModel = compile_model(
            model.model_copy(update={"fit": fit, "engagement": engagement})
        )

    def read(
        self, contact: Contact, activities: Sequence[Activity], now: datetime
    ) -> tuple[float, ...]:
        result = self.compiled.score(contact, activities, now)
        found = {reason.rule: reason.points / _UNIT for reason in result.reasons}
        return tuple(
            (1.0 if rule in result.matched_fit else 0.0)
            if rule in self.fit_ids
            else found.get(rule, 0.0)
            for rule in self.ids
        )


def _unit_rule(rule: EngagementRule) -> EngagementRule:
    cap = _occurrence_cap(rule)
    return rule.model_copy(
        update={
            "points": _UNIT,
            "max_points": None if cap is None else min(cap * _UNIT, MAX_POINTS),
        }
    )


def _occurrence_cap(rule: EngagementRule) -> float | None:
    """The cap of a rule in occurrences; none for a candidate (its cap has no unit)."""
    if rule.max_points is None or rule.points == 0:
        return None
    return rule.max_points / abs(rule.points)


def _results(model: ScoringModel, examples: Sequence[Example], now: datetime) -> list[ScoreResult]:
    compiled = compile_model(model)
    return [
        compiled.score(example.contact, example.activities, example.as_of or now)
        for example in examples
    ]


def _refuse_small(labels: Sequence[bool]) -> None:
    converters = sum(labels)
    others = len(labels) - converters
    for count, kind in ((converters, "converters"), (others, "non-converters")):
        if count < MIN_CLASS:
            raise CalibrationError(
                f"the training data has {count} {kind} of {len(labels)} contacts: "
                f"calibration needs at least {MIN_CLASS} converters and {MIN_CLASS} "
                "non-converters"
            )


def _sections(model: ScoringModel) -> dict[str, Section]:
    fit: dict[str, Section] = {rule.id: "fit" for rule in model.fit.rules}
    return fit | {rule.id: "engagement" for rule in model.engagement.rules}


def _points(model: ScoringModel) -> dict[str, float]:
    rules: list[FitRule | EngagementRule] = [*model.fit.rules, *model.engagement.rules]
    return {rule.id: rule.points for rule in rules}


def _unjudged(model: ScoringModel, matrix: np.ndarray) -> dict[int, str]:
    """Columns the data cannot judge (the same for every contact), with why."""
    if not matrix.any():
        raise CalibrationError(
            f"no rule of {model.version_label} fires on the data: nothing to learn from "
            "(check that the contacts and activities are the ones the model reads)"
        )
    flat = {
        index: "fires for no contact" if not matrix[:, index].any() else "same for every contact"
        for index in range(matrix.shape[1])
        if matrix[:, index].min() == matrix[:, index].max()
    }
    if len(flat) == matrix.shape[1]:
        raise CalibrationError(
            f"every rule of {model.version_label} is the same for every contact: "
            "no rule tells converters from the others"
        )
    return flat


def _learn(
    matrix: np.ndarray,
    target: np.ndarray,
    active: list[int],
    signs: list[float],
    folds: np.ndarray,
    strength: float | None,
) -> tuple[dict[int, tuple[float, float]], dict[int, tuple[float, str]], float]:
    """Fit toward the model's points; drop the rule most against its sign while any is.

    Returns (coefficient per unit of feature, z) of every column left, (z, why) of every
    column dropped, and the strength the fits used (chosen by cross-validation on the
    first fit when `strength` is None).
    """
    active = list(active)
    dropped: dict[int, tuple[float, str]] = {}
    while active:
        _, spread, standard, prior = _standard_with_prior(matrix[:, active], target, signs, active)
        if strength is None:
            choice = choose_strength(standard, target, prior, folds)
            _refuse_no_signal(choice, len(target))
            strength = choice.strength
        fit = fit_toward(standard, target, prior, strength)
        against = [i for i, column in enumerate(active) if signs[column] * fit.coefficients[i] < 0]
        if not against:
            learned = zip(fit.coefficients / spread, fit.z_scores, strict=True)
            return (
                {c: (float(b), float(z)) for c, (b, z) in zip(active, learned, strict=True)},
                dropped,
                strength,
            )
        worst = min(against, key=lambda i: signs[active[i]] * fit.z_scores[i])
        dropped[active.pop(worst)] = (float(fit.z_scores[worst]), "opposite sign to the model's")
    return {}, dropped, STRENGTHS[0] if strength is None else strength


def _refuse_no_signal(choice: Choice, size: int) -> None:
    if not choice.beats_base_rate:
        raise CalibrationError(
            f"no fit of the rules predicts conversion on held-out contacts better than the "
            f"base rate alone ({FOLDS} folds by contact, {size} contacts: deviance "
            f"{choice.deviance:.1f} against {choice.base_deviance:.1f}): nothing to learn"
        )


def _standard_with_prior(
    features: np.ndarray, target: np.ndarray, signs: Sequence[float], columns: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The features' means and spreads, the standardised features, and the model's points
    as a prior on them.

    The prior is the model's points times one factor, the log-odds per point of the
    model's own (uncapped) total on these examples, never below 0: a model whose total
    predicts well pulls hard toward its proportions, one whose total predicts nothing
    pulls toward 0, and candidates (0 points) are plain ridge terms either way.
    """
    mean, spread = _scaling(features)
    points = np.asarray([signs[column] for column in columns], dtype=float)
    per_point = max(slope(features @ points, target), 0.0) if points.any() else 0.0
    return mean, spread, (features - mean) / spread, per_point * points * spread


def _scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and spread, to standardise by, so that the penalty weighs a 0/1
    rule and a count alike.

    A constant column keeps its values (spread 1). A spread is never taken below
    `MIN_SPREAD`, a 0/1 rule's that fires for 1 contact in 100: the penalty per point
    grows as the spread shrinks, and a rule that fires for a handful of contacts would
    otherwise go almost unpenalised and, on their luck, become the model's largest rule.
    """
    spread = features.std(axis=0)
    spread[spread == 0] = 1.0
    return features.mean(axis=0), np.maximum(spread, MIN_SPREAD)


def _folds(contacts: Sequence[str]) -> np.ndarray:
    """A fold per example, by contact (a contact drawn at several cut dates stays in one)
    and fixed by its id, so that the same data always gives the same answer."""
    return np.asarray([zlib.crc32(crm_id.encode()) % FOLDS for crm_id in contacts])


def _out_of_fold(
    matrix: np.ndarray,
    target: np.ndarray,
    kept: Sequence[int],
    signs: Sequence[float],
    folds: np.ndarray,
    strength: float,
) -> list[float]:
    """Each example's log-odds from a fit of the `kept` columns (at least one) on the
    other folds.

    A fold whose others hold one class only has nothing to learn from: its examples are
    scored by a fit on all the data, in sample, rather than left at one score that would
    rank them together.
    """
    features = matrix[:, list(kept)]
    scores = _log_odds(features, target, features, signs, kept, strength)
    for held in range(FOLDS):
        out, rest = folds == held, folds != held
        if out.any() and target[rest].min() != target[rest].max():
            scores[out] = _log_odds(
                features[rest], target[rest], features[out], signs, kept, strength
            )
    return [float(score) for score in scores]


def _log_odds(
    features: np.ndarray,
    target: np.ndarray,
    scored: np.ndarray,
    signs: Sequence[float],
    columns: Sequence[int],
    strength: float,
) -> np.ndarray:
    """The log-odds of `scored` by a fit toward the model's points on (`features`, `target`)."""
    mean, spread, standard, prior = _standard_with_prior(features, target, signs, columns)
    return fit_toward(standard, target, prior, strength).log_odds((scored - mean) / spread)


def _threshold_out_of_fold(
    unseen: Sequence[float],
    labels: Sequence[bool],
    learned_totals: Sequence[float],
    band: tuple[float, float],
) -> ThresholdPick:
    """The band rule over the learned totals' thresholds, judged on out-of-fold order.

    A threshold on the learned totals lets a number of contacts through; judged out of
    fold, those are the same number of contacts taken in the order of their out-of-fold
    scores. So the learned totals, highest first, are dealt to the contacts in that order,
    and the band rule sweeps them: every threshold the learned model can have, its volume
    as in training, its conversion and recall as on contacts its points did not see.
    """
    # Equal out-of-fold scores are common (0/1 rules): the learned totals break the tie.
    order = sorted(range(len(unseen)), key=lambda index: (-unseen[index], -learned_totals[index]))
    dealt = [0.0] * len(unseen)
    for index, total in zip(order, sorted(learned_totals, reverse=True), strict=True):
        dealt[index] = total
    pick = recommend_threshold(dealt, labels, band=band)
    reason = f"{pick.reason}, judged out of fold ({FOLDS} folds by contact)"
    return replace(pick, reason=reason)


def _scale(model: ScoringModel, coefficients: Sequence[float]) -> float:
    """Points per unit of log-odds: the largest learned point matches the model's largest."""
    top = max((abs(points) for points in _points(model).values()), default=0.0) or DEFAULT_TOP
    largest = max((abs(coefficient) for coefficient in coefficients), default=0.0)
    return top / largest if largest > 0 else 0.0


def _rebuilt(model: ScoringModel, points: dict[str, float]) -> ScoringModel:
    update: dict[str, object] = {
        "name": calibrated_name(model.name),
        "version": next_version(model.version),
        "description": f"The rules of {model.version_label} with points learned from outcomes.",
    }
    # A section without rules is left as it was (and out of the file when it was out).
    if model.fit.rules:
        fit_rules = [
            rule.model_copy(update={"points": points[rule.id]}) for rule in model.fit.rules
        ]
        update["fit"] = model.fit.model_copy(update={"rules": fit_rules})
    if model.engagement.rules:
        engagement_rules = [_repointed(rule, points[rule.id]) for rule in model.engagement.rules]
        # The points were learned without the section's cap (the probe reads uncapped
        # features): a cap kept would flatten, among the most engaged, the order they learned.
        update["engagement"] = model.engagement.model_copy(
            update={"rules": engagement_rules, "max_points": None}
        )
    return model.model_copy(update=update)


def _repointed(rule: EngagementRule, points: float) -> EngagementRule:
    update: dict[str, float | None] = {"points": points}
    cap = _occurrence_cap(rule)
    if cap is not None and points != 0:
        update["max_points"] = min(max(1, round(abs(points) * cap)), int(MAX_POINTS))
    return rule.model_copy(update=update)


def _same_shares(
    old: ScoringModel, new: ScoringModel, train: Sequence[Example], now: datetime
) -> ScoringModel:
    """`new` with grades, min_fit and min_engagement letting through the same shares."""
    before = _results(old, train, now)
    after = _results(new, train, now)
    fit_before = [result.fit for result in before]
    fit_after = [result.fit for result in after]
    fit_section = new.fit
    if new.fit.rules:
        grades: dict[FitGrade, float] = {
            letter: _same_share(value, fit_before, fit_after)
            for letter, value in new.fit.grades.items()
        }
        # Shares keep their order, but equal shares may map two grades to one value.
        fit_section = new.fit.model_copy(update={"grades": grades})
    qualify = new.qualify
    update: dict[str, float] = {}
    if qualify.min_fit is not None:
        update["min_fit"] = _same_share(qualify.min_fit, fit_before, fit_after)
    if qualify.min_engagement is not None:
        update["min_engagement"] = _same_share(
            qualify.min_engagement,
            [result.engagement for result in before],
            [result.engagement for result in after],
        )
    return new.model_copy(update={"fit": fit_section, "qualify": qualify.model_copy(update=update)})


def _same_share(value: float, before: Sequence[float], after: Sequence[float]) -> float:
    """The cut on `after` reached by the share of examples closest to `value`'s on `before`.

    Scores are coarse, so the very share may not be reachable; on a tie, the higher cut.
    """
    if not before or not after:
        return value
    share = sum(score >= value for score in before) / len(before)
    ascending = sorted(after)
    cuts = [*sorted(set(after)), math.floor(ascending[-1]) + 1.0]

    def distance(cut: float) -> tuple[float, float]:
        reached = len(ascending) - bisect.bisect_left(ascending, cut)
        return abs(reached / len(ascending) - share), -cut

    return _tidy(min(cuts, key=distance))


def _tidy(value: float) -> float:
    """A whole number as an int (YAML reads `40`, not `40.0`); else two decimals."""
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded
