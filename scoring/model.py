"""The scoring model: the YAML file ops edit, its schema and its validation.

`parse_model(text, source)` turns the text of a model file into a `ScoringModel` or
raises `ModelError` naming the file, the line and the key. Nothing is scored with a
model that did not pass.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from scoring.records import ACTIVITY_ATTRIBUTES, ActivityType
from scoring.yaml_lines import Path, YamlDocumentError, line_for, load_with_lines

GRADE_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
"""Best first; D is every contact below the lowest threshold."""

CONTAINS_SUFFIX = "_contains"


FitGrade = Literal["A", "B", "C"]
Grade = Literal["A", "B", "C", "D"]
PriorityName = Literal["high", "medium", "low"]


def _default_grades() -> dict[FitGrade, float]:
    return {"A": 40.0, "B": 25.0, "C": 10.0}


def _default_priorities() -> dict[Grade, PriorityName]:
    return {"A": "high", "B": "high", "C": "medium", "D": "low"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Scalar = str | int | float | bool


class FitRule(_Strict):
    """Points for who a contact is. Every operator given must hold (gte + lt is a range)."""

    id: str = Field(min_length=1)
    field: str = Field(min_length=1)
    points: float
    description: str | None = None
    eq: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    matches: str | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("matches")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_an_operator(self) -> FitRule:
        operators = (self.eq, self.in_, self.gt, self.gte, self.lt, self.lte)
        if all(op is None for op in operators) and self.matches is None and self.exists is None:
            raise ValueError("a fit rule needs one of eq, in, gt, gte, lt, lte, matches, exists")
        return self


class FitSection(_Strict):
    rules: list[FitRule] = Field(default_factory=list)
    grades: dict[FitGrade, float] = Field(default_factory=_default_grades)

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
    points: float
    max_points: float | None = Field(default=None, gt=0)
    at_least: int | None = Field(default=None, ge=1)
    within_days: float | None = Field(default=None, gt=0)
    decay: bool = True
    description: str | None = None

    @field_validator("where")
    @classmethod
    def _known_attributes(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in value:
            name = key.removesuffix(CONTAINS_SUFFIX)
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
    half_life_days: float | None = Field(default=None, gt=0)
    max_points: float | None = Field(default=None, gt=0)
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

    threshold: float | None = None
    min_fit: float | None = None
    min_engagement: float | None = None
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
    sla_hours: float = Field(default=24, gt=0)
    top_reasons: int = Field(default=3, ge=1)
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

    def __init__(self, source: str, problems: list[tuple[int | None, str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [
            f"{source}:{line if line is not None else '?'}: {key}: {message}"
            for line, key, message in problems
        ]
        super().__init__("\n".join(lines))


def parse_model(text: str, source: str = "<model>") -> ScoringModel:
    """Validate the text of a model file; raise `ModelError` naming file, line and key."""
    try:
        data, lines = load_with_lines(text, source)
    except YamlDocumentError as exc:
        raise ModelError(source, [(exc.line, "(document)", str(exc).split(": ", 1)[-1])]) from None
    if not isinstance(data, dict):
        raise ModelError(source, [(1, "(document)", "a model file is a mapping of keys")])
    try:
        model = ScoringModel.model_validate(data)
    except ValidationError as exc:
        raise ModelError(source, _problems_from(exc, lines)) from None
    problems = _cross_check(model, lines)
    if problems:
        raise ModelError(source, problems)
    return model


def _problems_from(
    exc: ValidationError, lines: dict[Path, int]
) -> list[tuple[int | None, str, str]]:
    problems: list[tuple[int | None, str, str]] = []
    seen: set[tuple[Path, str]] = set()
    for error in exc.errors():
        # Unions add the member's class name to the path; the file knows nothing of it.
        path: Path = tuple(
            part
            for part in error["loc"]
            if isinstance(part, int) or (not part[:1].isupper() and "[" not in part)
        )
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append((line_for(lines, path), _dotted(path), message))
    return problems


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def _cross_check(model: ScoringModel, lines: dict[Path, int]) -> list[tuple[int | None, str, str]]:
    problems: list[tuple[int | None, str, str]] = []

    def report(path: Path, message: str) -> None:
        problems.append((line_for(lines, path), _dotted(path), message))

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
    for index, eng_rule in enumerate(model.engagement.rules):
        for key in eng_rule.where:
            name = key.removesuffix(CONTAINS_SUFFIX)
            if name not in ACTIVITY_ATTRIBUTES and not name.isidentifier():
                report(
                    ("engagement", "rules", index, "where", key),
                    f"'{name}' is not an attribute name",
                )

    def check(criteria: list[Any] | None, path: Path) -> None:
        for index, criterion in enumerate(criteria or []):
            here = (*path, index)
            if isinstance(criterion, FitCriterion) and criterion.fit not in fit_ids:
                report((*here, "fit"), f"no fit rule has id '{criterion.fit}'")
            elif (
                isinstance(criterion, EngagementCriterion)
                and criterion.engagement not in engagement_ids
            ):
                report((*here, "engagement"), f"no engagement rule has id '{criterion.engagement}'")
            elif isinstance(criterion, AllOf):
                check(criterion.all_of, (*here, "all_of"))
            elif isinstance(criterion, AnyOf):
                check(criterion.any_of, (*here, "any_of"))

    check(model.qualify.all_of, ("qualify", "all_of"))
    check(model.qualify.any_of, ("qualify", "any_of"))
    if model.qualify.min_grade is not None and not model.fit.rules:
        report(("qualify", "min_grade"), "min_grade needs fit rules to grade by")
    return problems
