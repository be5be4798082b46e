"""The scoring model: the YAML file ops edit, its schema and its validation.

`parse_model(text, source)` turns the text of a model file into a `ScoringModel` or
raises `ModelError` naming the file, the line and the key. Nothing is scored with a
model that did not pass: every number is finite and bounded, every field and attribute
a rule names can hold a value, every pattern compiles with the engine that runs it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from itertools import pairwise
from typing import Annotated, Any, Literal

import regex  # type: ignore[import-untyped,unused-ignore]
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from scoring.records import ACTIVITY_ATTRIBUTES, CONTACT_FIELDS, OUTCOME_FIELDS, ActivityType
from scoring.yaml_lines import (
    DOCUMENT,
    Path,
    Problem,
    YamlDocumentError,
    did_you_mean,
    dotted,
    line_for,
    load_with_lines,
    validation_problems,
)

GRADE_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
"""Best first; D is every contact below the lowest threshold."""

CONTAINS_SUFFIX = "_contains"
# A fit rule names a canonical Contact field or, by any other name, a custom property;
# the prefix addresses a property explicitly (one whose name is close to a field's).
PROPERTY_PREFIX = "properties."
ATTRIBUTE_PREFIX = "attributes."

# Bounds keep every sum the engine makes finite and every window a valid datetime.
MAX_POINTS = 1_000_000.0
MAX_NUMBER = 1e12
MAX_DAYS = 36_525.0  # a hundred years
MAX_SLA_HOURS = 8_760.0  # a year
MAX_COUNT = 1_000_000
MAX_PATTERN = 1_000
# A bare name this close to a canonical one is a typo, not a custom property.
TYPO_CUTOFF = 0.85
# Canonical fields that only a range over numbers makes sense on.
NUMERIC_FIELDS: frozenset[str] = frozenset({"company_size"})
TEXT_FIELDS: frozenset[str] = CONTACT_FIELDS - NUMERIC_FIELDS - {"created_at", "updated_at"}

Points = Annotated[float, Field(strict=True, ge=-MAX_POINTS, le=MAX_POINTS)]
Cap = Annotated[float, Field(strict=True, gt=0, le=MAX_POINTS)]
Bound = Annotated[float, Field(strict=True, ge=-MAX_NUMBER, le=MAX_NUMBER)]
Days = Annotated[float, Field(strict=True, gt=0, le=MAX_DAYS)]


FitGrade = Literal["A", "B", "C"]
Grade = Literal["A", "B", "C", "D"]
PriorityName = Literal["high", "medium", "low"]


def _default_grades() -> dict[FitGrade, float]:
    return {"A": 40.0, "B": 25.0, "C": 10.0}


def _default_priorities() -> dict[Grade, PriorityName]:
    return {"A": "high", "B": "high", "C": "medium", "D": "low"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Scalar = str | int | float | bool


class FitRule(_Strict):
    """Points for who a contact is. Every operator given must hold (gte + lt is a range)."""

    id: str = Field(min_length=1)
    field: str = Field(min_length=1)
    points: Points
    description: str | None = None
    eq: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    gt: Bound | None = None
    gte: Bound | None = None
    lt: Bound | None = None
    lte: Bound | None = None
    matches: str | None = Field(default=None, max_length=MAX_PATTERN)
    exists: bool | None = None

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @field_validator("matches")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    @model_validator(mode="after")
    def _has_an_operator(self) -> FitRule:
        operators = (self.eq, self.in_, self.gt, self.gte, self.lt, self.lte)
        if all(op is None for op in operators) and self.matches is None and self.exists is None:
            raise ValueError("a fit rule needs one of eq, in, gt, gte, lt, lte, matches, exists")
        return self

    @model_validator(mode="after")
    def _range_can_hold(self) -> FitRule:
        lows = [(op, v) for op, v in (("gt", self.gt), ("gte", self.gte)) if v is not None]
        highs = [(op, v) for op, v in (("lt", self.lt), ("lte", self.lte)) if v is not None]
        for low_op, low in lows:
            for high_op, high in highs:
                if low > high or (low == high and (low_op, high_op) != ("gte", "lte")):
                    raise ValueError(
                        f"no number is {low_op} {low:g} and {high_op} {high:g}: "
                        "the rule can never match; swap or fix the bounds"
                    )
        return self

    @property
    def property_name(self) -> str | None:
        """The custom property this rule reads, or None for a canonical Contact field."""
        return contact_property(self.field)


class FitSection(_Strict):
    rules: list[FitRule] = Field(default_factory=list)
    grades: dict[FitGrade, Points] = Field(default_factory=_default_grades)

    @field_validator("grades")
    @classmethod
    def _grades_descend(cls, value: dict[FitGrade, float]) -> dict[FitGrade, float]:
        given = [points for letter, points in sorted(value.items())]
        if any(better < worse for better, worse in pairwise(given)):
            raise ValueError("grade thresholds must not rise from A to C")
        return value


class EngagementRule(_Strict):
    """Points for what a contact did.

    Without `at_least`, every matching activity earns `points` (faded by the half-life
    unless `decay: false`), capped in size by `max_points`. With `at_least`, the rule is a
    window rule: it fires once, with full points, when at least that many matching
    activities fall in the `within_days` before as_of (or in all history without it).
    """

    id: str = Field(min_length=1)
    activity: ActivityType | list[ActivityType]
    where: dict[str, Scalar] = Field(default_factory=dict)
    points: Points
    max_points: Cap | None = None
    at_least: int | None = Field(default=None, strict=True, ge=1, le=MAX_COUNT)
    within_days: Days | None = None
    decay: bool = True
    description: str | None = None

    @field_validator("where")
    @classmethod
    def _known_attributes(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in value:
            name = key.removesuffix(CONTAINS_SUFFIX).removeprefix(ATTRIBUTE_PREFIX)
            if not name:
                raise ValueError(f"'{key}' names no attribute")
            if name != key and not isinstance(value[key], str):
                raise ValueError(f"'{key}' needs a text value to look for")
        return value

    @model_validator(mode="after")
    def _window_rules_are_not_capped(self) -> EngagementRule:
        if self.at_least is not None and self.max_points is not None:
            raise ValueError("max_points has no meaning on an at_least rule (it fires once)")
        return self

    @property
    def activity_types(self) -> tuple[ActivityType, ...]:
        if isinstance(self.activity, list):
            return tuple(self.activity)
        return (self.activity,)


class EngagementSection(_Strict):
    half_life_days: Days | None = None
    max_points: Cap | None = None
    rules: list[EngagementRule] = Field(default_factory=list)


class FitCriterion(_Strict):
    fit: str


class EngagementCriterion(_Strict):
    engagement: str


class AllOf(_Strict):
    all_of: list[Criterion] = Field(min_length=1)


class AnyOf(_Strict):
    any_of: list[Criterion] = Field(min_length=1)


Criterion = Annotated[
    FitCriterion | EngagementCriterion | AllOf | AnyOf,
    Field(union_mode="left_to_right"),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()


class QualifySection(_Strict):
    """MQL when every condition given holds."""

    threshold: Points | None = None
    min_fit: Points | None = None
    min_engagement: Points | None = None
    min_grade: Grade | None = None
    all_of: list[Criterion] | None = None
    any_of: list[Criterion] | None = None

    @model_validator(mode="after")
    def _has_a_condition(self) -> QualifySection:
        if all(
            value is None
            for value in (
                self.threshold,
                self.min_fit,
                self.min_engagement,
                self.min_grade,
                self.all_of,
                self.any_of,
            )
        ):
            raise ValueError("qualify needs at least one condition (threshold, all_of, …)")
        return self


class HandoffSection(_Strict):
    sla_hours: float = Field(default=24, strict=True, gt=0, le=MAX_SLA_HOURS)
    top_reasons: int = Field(default=3, strict=True, ge=1, le=100)
    priority_by_grade: dict[Grade, PriorityName] = Field(default_factory=_default_priorities)


class ScoringModel(_Strict):
    name: str = Field(min_length=1)
    version: str | int
    description: str | None = None
    fit: FitSection = Field(default_factory=FitSection)
    engagement: EngagementSection = Field(default_factory=EngagementSection)
    qualify: QualifySection
    handoff: HandoffSection = Field(default_factory=HandoffSection)

    @property
    def version_label(self) -> str:
        return f"{self.name}@{self.version}"


class ModelError(ValueError):
    """A model file that cannot be used; says where and what, one problem per line."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str, str]]) -> None:
        self.source = source
        self.problems = [Problem(*problem) for problem in problems]
        super().__init__("\n".join(problem.render(source) for problem in self.problems))


def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by the engine that runs it (`regex`, which can time out a match)."""
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None


def contact_property(field: str) -> str | None:
    """The custom property a fit rule's field names, or None for a canonical Contact field."""
    if field.startswith(PROPERTY_PREFIX):
        return field.removeprefix(PROPERTY_PREFIX)
    return None if field in CONTACT_FIELDS else field


def where_attribute(key: str) -> tuple[str, bool, bool]:
    """A `where` key as (attribute name, free-form only, substring match)."""
    contains = key.endswith(CONTAINS_SUFFIX) and key != CONTAINS_SUFFIX
    name = key.removesuffix(CONTAINS_SUFFIX) if contains else key
    if name.startswith(ATTRIBUTE_PREFIX):
        return name.removeprefix(ATTRIBUTE_PREFIX), True, contains
    return name, False, contains


def parse_model(
    text: str | bytes,
    source: str = "<model>",
    *,
    contact_properties: Collection[str] | None = None,
    activity_attributes: Collection[str] | None = None,
) -> ScoringModel:
    """Validate the text (or bytes) of a model file; raise `ModelError` naming file and line.

    Without `contact_properties`, a fit rule may name any custom property (a name close
    to a canonical field is refused as a typo). With it (the properties the mappings
    read), every property must be one of them; `activity_attributes` likewise lists the
    free-form activity attributes the mappings set, besides the canonical ones.
    """
    try:
        data, lines = load_with_lines(text, source)
    except YamlDocumentError as exc:
        raise ModelError(source, [Problem(exc.line, DOCUMENT, exc.problem)]) from None
    if data is None:
        raise ModelError(
            source,
            [Problem(1, DOCUMENT, "the file is empty: a model needs name, version, qualify")],
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the single value {data!r:.40}"
        message = f"a model file is a mapping of keys (name, version, …), not {kind}"
        raise ModelError(source, [Problem(lines.get((), 1), DOCUMENT, message)])
    problems = _number_problems(data, (), lines)
    if problems:
        raise ModelError(source, problems)
    try:
        model = ScoringModel.model_validate(data)
    except ValidationError as exc:
        raise ModelError(source, validation_problems(exc, lines, _keys_at)) from None
    problems = _cross_check(model, lines, contact_properties, activity_attributes)
    if problems:
        raise ModelError(source, problems)
    return model


def _number_problems(value: Any, path: Path, lines: dict[Path, int]) -> list[Problem]:
    # Before the schema: a .nan in an `eq` or `in` would otherwise fail every member of
    # the union at once, and a huge integer would overflow when the engine compares it.
    if isinstance(value, dict):
        return [
            p
            for key, item in value.items()
            for p in _number_problems(item, (*path, str(key)), lines)
        ]
    if isinstance(value, list):
        return [
            p
            for index, item in enumerate(value)
            for p in _number_problems(item, (*path, index), lines)
        ]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    if isinstance(value, float) and not math.isfinite(value):
        written = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        message = f"{written} is not a finite number: write a number such as 10"
    elif abs(value) > MAX_NUMBER:
        written = (
            f"{value:.3g}" if isinstance(value, float) else f"a {len(str(value))}-digit number"
        )
        message = f"{written} is too large: numbers in a model are at most {MAX_NUMBER:g}"
    else:
        return []
    return [Problem(line_for(lines, path), dotted(path), message)]


_CRITERION_KEYS = ("fit", "engagement", "all_of", "any_of")


def _keys_at(path: Path) -> list[str]:
    """The keys allowed where `path` (a key's parent) points, for suggestions."""
    shape = tuple("#" if isinstance(part, int) else part for part in path)
    if "all_of" in shape or "any_of" in shape:
        return list(_CRITERION_KEYS)
    sections: dict[tuple[str, ...], type[BaseModel]] = {
        (): ScoringModel,
        ("fit",): FitSection,
        ("fit", "rules", "#"): FitRule,
        ("engagement",): EngagementSection,
        ("engagement", "rules", "#"): EngagementRule,
        ("qualify",): QualifySection,
        ("handoff",): HandoffSection,
    }
    section = sections.get(shape)
    if section is None:
        return []
    return [info.alias or name for name, info in section.model_fields.items()]


_YAML_WORDS = "yes/no/on/off/true/false read as true/false in YAML"


def _cross_check(
    model: ScoringModel,
    lines: dict[Path, int],
    contact_properties: Collection[str] | None,
    activity_attributes: Collection[str] | None,
) -> list[Problem]:
    problems: list[Problem] = []

    def report(path: Path, message: str) -> None:
        problems.append(Problem(line_for(lines, path), dotted(path), message))

    fit_ids: set[str] = set()
    engagement_ids: set[str] = set()
    sections: tuple[tuple[str, list[str], set[str]], ...] = (
        ("fit", [rule.id for rule in model.fit.rules], fit_ids),
        ("engagement", [rule.id for rule in model.engagement.rules], engagement_ids),
    )
    for section, rule_ids, ids in sections:
        for index, rule_id in enumerate(rule_ids):
            if rule_id in fit_ids or rule_id in engagement_ids:
                report((section, "rules", index, "id"), f"rule id '{rule_id}' is used twice")
            ids.add(rule_id)
    for index, fit_rule in enumerate(model.fit.rules):
        for path, message in _fit_rule_problems(fit_rule, contact_properties):
            report(("fit", "rules", index, *path), message)
    for index, eng_rule in enumerate(model.engagement.rules):
        for key, wanted in eng_rule.where.items():
            trouble = _where_problem(key, wanted, activity_attributes)
            if trouble:
                report(("engagement", "rules", index, "where", key), trouble)

    def check(criteria: list[Any] | None, path: Path) -> None:
        for index, criterion in enumerate(criteria or []):
            here = (*path, index)
            if isinstance(criterion, FitCriterion) and criterion.fit not in fit_ids:
                report(
                    (*here, "fit"),
                    f"no fit rule has id '{criterion.fit}'" + did_you_mean(criterion.fit, fit_ids),
                )
            elif (
                isinstance(criterion, EngagementCriterion)
                and criterion.engagement not in engagement_ids
            ):
                report(
                    (*here, "engagement"),
                    f"no engagement rule has id '{criterion.engagement}'"
                    + did_you_mean(criterion.engagement, engagement_ids),
                )
            elif isinstance(criterion, AllOf):
                check(criterion.all_of, (*here, "all_of"))
            elif isinstance(criterion, AnyOf):
                check(criterion.any_of, (*here, "any_of"))

    check(model.qualify.all_of, ("qualify", "all_of"))
    check(model.qualify.any_of, ("qualify", "any_of"))
    if model.qualify.min_grade is not None and not model.fit.rules:
        report(("qualify", "min_grade"), "min_grade needs fit rules to grade by")
    return problems


def _fit_rule_problems(
    rule: FitRule, contact_properties: Collection[str] | None
) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    prop = rule.property_name
    if rule.field in OUTCOME_FIELDS:
        return [
            (
                ("field",),
                f"`{rule.field}` is an outcome (when sales accepted the contact), not a "
                "signal: a rule on it would score with what happened after the score",
            )
        ]
    if prop is not None:
        if not prop:
            problems.append((("field",), f"'{rule.field}' names no property"))
        elif contact_properties is not None and prop not in contact_properties:
            known = {*CONTACT_FIELDS, *contact_properties}
            problems.append(
                (
                    ("field",),
                    f"`{prop}` is neither a contact field nor a property the mappings read"
                    + (did_you_mean(prop, known) or "; add it under contacts[].properties"),
                )
            )
        elif not rule.field.startswith(PROPERTY_PREFIX) and (
            typo := did_you_mean(prop, CONTACT_FIELDS, TYPO_CUTOFF)
        ):
            problems.append(
                (
                    ("field",),
                    f"unknown contact field `{prop}`{typo} "
                    f"(a custom property of this name is written `{PROPERTY_PREFIX}{prop}`)",
                )
            )
        return problems
    if rule.field in TEXT_FIELDS:
        for op in ("gt", "gte", "lt", "lte"):
            if getattr(rule, op) is not None:
                problems.append(
                    (
                        (op,),
                        f"{rule.field} is text and {op} compares numbers: use eq, in or matches",
                    )
                )
        options = [rule.eq] if rule.eq is not None else []
        options += rule.in_ or []
        for option in options:
            if isinstance(option, bool):
                where: Path = ("eq",) if rule.eq is not None else ("in",)
                problems.append(
                    (where, f"{rule.field} is text, but {_YAML_WORDS}: quote the value ('NO')")
                )
                break
    return problems


def _where_problem(
    key: str, wanted: Scalar, activity_attributes: Collection[str] | None
) -> str | None:
    name, free_form, _ = where_attribute(key)
    if isinstance(wanted, bool):
        return f"activity attributes are text, but {_YAML_WORDS}: quote the value"
    if not isinstance(wanted, str):
        return f"activity attributes are text: quote the value ('{wanted}')"
    if not free_form and name in ACTIVITY_ATTRIBUTES:
        return None
    if not free_form and (typo := did_you_mean(name, ACTIVITY_ATTRIBUTES, TYPO_CUTOFF)):
        return (
            f"unknown activity attribute `{name}`{typo} (a custom attribute of this name "
            f"is written `{ATTRIBUTE_PREFIX}{key}`)"
        )
    if activity_attributes is not None and name not in activity_attributes:
        known = {*ACTIVITY_ATTRIBUTES, *activity_attributes}
        return f"no mapping sets the activity attribute `{name}`, so this never matches" + (
            did_you_mean(name, known) or f"; known: {', '.join(sorted(known))}"
        )
    if not name.isidentifier():
        return f"'{name}' is not an attribute name"
    return None
