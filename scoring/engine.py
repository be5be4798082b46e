"""The scoring engine: `score(model, contact, activities, as_of)`.

Deterministic and pure: the same inputs give the same result whatever the order of the
activities, and every point in the result is a `Reason` with its evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scoring.model import (
    GRADE_LETTERS,
    AllOf,
    AnyOf,
    EngagementCriterion,
    EngagementRule,
    FitCriterion,
    FitRule,
    ScoringModel,
    compile_pattern,
    where_attribute,
)
from scoring.records import Activity, ActivityType, Contact, Reason, ScoreResult

SECONDS_PER_DAY = 86_400.0
# Points are kept to two decimals so that a result written to a CRM and read back compares
# equal, and float noise never makes a write look necessary.
POINT_DECIMALS = 2
# Compiled models by identity: a model holds lists, so it cannot be a hash key itself.
# The entry keeps its model alive, so an id is never reused while it is cached.
_COMPILED: dict[int, CompiledModel] = {}
_COMPILED_MAX = 32
# A `matches` rule must not hang a worker on a catastrophic pattern: a search that runs
# longer than this counts as no match (the `regex` engine keeps its own time). A value
# longer than MATCH_TEXT_MAX is not searched at all: titles, emails and licence numbers
# are short, and cutting a value would make `$` match where the text does not end.
MATCH_TIMEOUT_S = 0.05
MATCH_TEXT_MAX = 10_000


def score(
    model: ScoringModel,
    contact: Contact,
    activities: Iterable[Activity],
    as_of: datetime,
    *,
    engagement_since: datetime | None = None,
) -> ScoreResult:
    """Score one contact as of `as_of`.

    Activities after `as_of` are ignored. Rules with positive points ignore activities
    before `engagement_since` too (a recycled lead must earn MQL again with engagement
    after sales rejected it); negative signals from before it still count.
    """
    compiled = compile_model(model)
    return compiled.score(contact, activities, as_of, engagement_since=engagement_since)


def compile_model(model: ScoringModel) -> CompiledModel:
    """Turn rules into ready-made predicates once per model (models are immutable)."""
    cached = _COMPILED.get(id(model))
    if cached is not None and cached.model is model:
        return cached
    compiled = CompiledModel(
        model=model,
        fit_rules=tuple(_compile_fit(rule) for rule in model.fit.rules),
        engagement_rules=tuple(_compile_engagement(rule) for rule in model.engagement.rules),
    )
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[id(model)] = compiled
    return compiled


@dataclass(frozen=True)
class _CompiledFit:
    rule: FitRule
    read: Callable[[Contact], Any]
    test: Callable[[Any], bool]


@dataclass(frozen=True)
class _CompiledEngagement:
    rule: EngagementRule
    types: frozenset[ActivityType]
    test: Callable[[Activity], bool]
    window: timedelta | None


@dataclass(frozen=True)
class CompiledModel:
    model: ScoringModel
    fit_rules: tuple[_CompiledFit, ...]
    engagement_rules: tuple[_CompiledEngagement, ...]

    def score(
        self,
        contact: Contact,
        activities: Iterable[Activity],
        as_of: datetime,
        *,
        engagement_since: datetime | None = None,
    ) -> ScoreResult:
        reasons: list[Reason] = []
        matched_fit: set[str] = set()
        fit = 0.0
        for compiled in self.fit_rules:
            value = compiled.read(contact)
            if compiled.test(value):
                matched_fit.add(compiled.rule.id)
                fit += compiled.rule.points
                reasons.append(
                    Reason(
                        rule=compiled.rule.id,
                        points=_round(compiled.rule.points),
                        evidence=[f"{compiled.rule.field}={value}"],
                    )
                )

        by_type = _index_by_type(activities, as_of)
        half_life = self.model.engagement.half_life_days
        matched_engagement: set[str] = set()
        engagement = 0.0
        for rule_c in self.engagement_rules:
            # A recycled lead re-earns its points, but its negative signals still count.
            since = engagement_since if rule_c.rule.points > 0 else None
            matching = [
                activity
                for activity_type in rule_c.types
                for activity in by_type.get(activity_type, ())
                if rule_c.test(activity) and (since is None or activity.occurred_at >= since)
            ]
            if not matching:
                continue
            points, evidence = _engagement_points(rule_c, matching, as_of, half_life)
            if evidence:
                matched_engagement.add(rule_c.rule.id)
                engagement += points
                reasons.append(
                    Reason(rule=rule_c.rule.id, points=_round(points), evidence=evidence)
                )

        cap = self.model.engagement.max_points
        if cap is not None and engagement > cap:
            reasons.append(Reason(rule="engagement-cap", points=_round(cap - engagement)))
            engagement = cap

        fit, engagement = _round(fit), _round(engagement)
        total = _round(fit + engagement)
        grade = grade_for(self.model, fit)
        is_mql = _qualifies(
            self.model, fit, engagement, total, grade, matched_fit, matched_engagement
        )
        return ScoreResult(
            crm=contact.crm,
            crm_id=contact.crm_id,
            fit=fit,
            engagement=engagement,
            total=total,
            grade=grade,
            is_mql=is_mql,
            reasons=reasons,
            model_name=self.model.name,
            model_version=str(self.model.version),
            as_of=as_of,
            matched_fit=frozenset(matched_fit),
            matched_engagement=frozenset(matched_engagement),
        )


def grade_for(model: ScoringModel, fit: float) -> str:
    """The best grade whose minimum the fit points reach; D below them all."""
    for letter in GRADE_LETTERS[:-1]:
        minimum = model.fit.grades.get(letter)  # type: ignore[call-overload]
        if minimum is not None and fit >= minimum:
            return letter
    return GRADE_LETTERS[-1]


def _round(points: float) -> float:
    rounded = round(points, POINT_DECIMALS)
    return rounded + 0.0  # turn -0.0 into 0.0


def _index_by_type(
    activities: Iterable[Activity], as_of: datetime
) -> dict[ActivityType, list[Activity]]:
    by_type: dict[ActivityType, list[Activity]] = defaultdict(list)
    for activity in activities:
        if activity.occurred_at > as_of:
            continue
        by_type[activity.type].append(activity)
    return by_type


def _engagement_points(
    compiled: _CompiledEngagement,
    matching: list[Activity],
    as_of: datetime,
    half_life: float | None,
) -> tuple[float, list[str]]:
    rule = compiled.rule
    if compiled.window is not None:
        start = as_of - compiled.window
        matching = [activity for activity in matching if activity.occurred_at >= start]
    # Sorted so that float sums and evidence never depend on the input order.
    matching.sort(key=lambda activity: (activity.occurred_at, activity.crm_id))
    evidence = [activity.crm_id for activity in matching]
    if rule.at_least is not None:
        if len(matching) < rule.at_least:
            return 0.0, []
        return rule.points, evidence
    if not matching:
        return 0.0, []
    total = 0.0
    for activity in matching:
        factor = 1.0
        if half_life is not None and rule.decay:
            age_days = (as_of - activity.occurred_at).total_seconds() / SECONDS_PER_DAY
            factor = 0.5 ** (age_days / half_life)
        total += rule.points * factor
    if rule.max_points is not None and abs(total) > rule.max_points:
        total = rule.max_points if total > 0 else -rule.max_points
    return total, evidence


def _qualifies(
    model: ScoringModel,
    fit: float,
    engagement: float,
    total: float,
    grade: str,
    matched_fit: set[str],
    matched_engagement: set[str],
) -> bool:
    q = model.qualify

    def holds(criterion: object) -> bool:
        if isinstance(criterion, FitCriterion):
            return criterion.fit in matched_fit
        if isinstance(criterion, EngagementCriterion):
            return criterion.engagement in matched_engagement
        if isinstance(criterion, AllOf):
            return all(holds(c) for c in criterion.all_of)
        if isinstance(criterion, AnyOf):
            return any(holds(c) for c in criterion.any_of)
        raise TypeError(f"unknown criterion {criterion!r}")

    return all(
        (
            q.threshold is None or total >= q.threshold,
            q.min_fit is None or fit >= q.min_fit,
            q.min_engagement is None or engagement >= q.min_engagement,
            q.min_grade is None or GRADE_LETTERS.index(grade) <= GRADE_LETTERS.index(q.min_grade),
            q.all_of is None or all(holds(c) for c in q.all_of),
            q.any_of is None or any(holds(c) for c in q.any_of),
        )
    )


def _compile_fit(rule: FitRule) -> _CompiledFit:
    checks: list[Callable[[Any], bool]] = []
    if rule.exists is not None:
        wanted = rule.exists
        checks.append(lambda value: _present(value) == wanted)
    if rule.eq is not None:
        checks.append(_equals_any((rule.eq,)))
    if rule.in_ is not None:
        checks.append(_equals_any(tuple(rule.in_)))
    for bound, compare in (
        (rule.gt, lambda v, b: v > b),
        (rule.gte, lambda v, b: v >= b),
        (rule.lt, lambda v, b: v < b),
        (rule.lte, lambda v, b: v <= b),
    ):
        if bound is not None:
            checks.append(_numeric(compare, bound))
    if rule.matches is not None:
        checks.append(_searches(rule.matches))

    def test(value: Any) -> bool:
        return all(check(value) for check in checks)

    prop = rule.property_name
    field = rule.field

    def read(contact: Contact) -> Any:
        return contact.properties.get(prop) if prop is not None else contact.field_value(field)

    return _CompiledFit(rule=rule, read=read, test=test)


def _searches(pattern_text: str) -> Callable[[Any], bool]:
    pattern = compile_pattern(pattern_text)

    def test(value: Any) -> bool:
        if value is None:
            return False
        text = str(value)
        if len(text) > MATCH_TEXT_MAX:
            return False
        try:
            found = pattern.search(text, timeout=MATCH_TIMEOUT_S)
        except TimeoutError:
            return False
        return found is not None

    return test


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _normal(value: Any) -> Any:
    # Text compares without regard to case or surrounding spaces: CRMs store "SaaS",
    # "saas " and "SAAS" alike, and a model should not have to list them all.
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _equals_any(options: Sequence[Any]) -> Callable[[Any], bool]:
    wanted = {_normal(option) for option in options}
    numbers = {option for option in wanted if isinstance(option, float)}

    def test(value: Any) -> bool:
        if value is None:
            return False
        normal = _normal(value)
        if normal in wanted:
            return True
        # A custom property may hold a number as text ("250"); compare it as a number.
        number = _as_number(value)
        return number is not None and number in numbers

    return test


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip().replace(",", ""))
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool], bound: float) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        number = _as_number(value)
        return number is not None and compare(number, bound)

    return test


def _compile_engagement(rule: EngagementRule) -> _CompiledEngagement:
    equals: list[tuple[str, bool, Any]] = []
    contains: list[tuple[str, bool, str]] = []
    for key, wanted in rule.where.items():
        name, free_form, substring = where_attribute(key)
        if substring:
            contains.append((name, free_form, str(wanted).casefold()))
        else:
            equals.append((name, free_form, _normal(wanted)))

    def attribute(activity: Activity, name: str, free_form: bool) -> str | None:
        return activity.attributes.get(name) if free_form else activity.attribute(name)

    def test(activity: Activity) -> bool:
        for name, free_form, wanted_value in equals:
            value = attribute(activity, name, free_form)
            if value is None or _normal(value) != wanted_value:
                return False
        for name, free_form, needle in contains:
            value = attribute(activity, name, free_form)
            if value is None or needle not in value.casefold():
                return False
        return True

    window = timedelta(days=rule.within_days) if rule.within_days is not None else None
    return _CompiledEngagement(
        rule=rule, types=frozenset(rule.activity_types), test=test, window=window
    )
