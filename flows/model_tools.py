"""`mqlsync model …`: the model file's JSON Schema, a check of model files, and a diff.

`schema` prints the JSON Schema of a model file, generated from the pydantic types in
`scoring/model.py` (committed as `scoring/models/model.schema.json`, which the shipped
models name on their first line so that editors complete and check them). `check` loads
files with the project's own loader, which checks more than a schema can (rule ids that
`qualify` names, field names, regular expressions). `diff` lists what a pull request
changes in a model: rules added, removed and changed, grades, caps, half-life and the
qualify conditions, one line each in a stable order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from scoring.model import EngagementRule, FitRule, ModelError, ScoringModel

model_app = typer.Typer(
    no_args_is_help=True,
    help="The scoring model file: its JSON Schema, a check, and the diff of two models.",
)

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
"""Draft 7: what editors' YAML support validates with (the generated keywords fit it)."""
SCHEMA_TITLE = "mqlsync scoring model"
SCHEMA_DESCRIPTION = (
    "A scoring model file for mqlsync (scoring/models/*.yaml). Generated from "
    "scoring/model.py by `mqlsync model schema`; `mqlsync model check FILE` checks more "
    "(rule ids named in qualify, field names, regular expressions)."
)
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "scoring" / "models" / "model.schema.json"

RULE_SECTIONS = ("fit", "engagement")
ARROW = "→"
UNSET = "unset"


# --- schema -------------------------------------------------------------------------


def model_schema() -> dict[str, Any]:
    """The JSON Schema of a model file, from `ScoringModel` (keys as the file writes them)."""
    generated = ScoringModel.model_json_schema(by_alias=True, mode="validation")
    definitions = generated.pop("$defs", {})
    generated.pop("title", None)
    generated.pop("$id", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": SCHEMA_TITLE,
        "description": SCHEMA_DESCRIPTION,
        **generated,
        "$defs": definitions,
    }


def schema_text() -> str:
    """The schema as committed: two-space JSON, ending in a newline."""
    return json.dumps(model_schema(), indent=2, ensure_ascii=False) + "\n"


@model_app.command()
def schema(
    out: Annotated[
        Path | None, typer.Option(help="write the schema to this file instead of stdout")
    ] = None,
) -> None:
    """Print the JSON Schema of a model file (generated from the model's types)."""
    text = schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)


# --- check --------------------------------------------------------------------------


def _load(path: Path) -> ScoringModel:
    # Imported here: the loader's module reads the mappings' types, which `schema` needs not.
    from flows.check import load_model_file

    return load_model_file(path)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def summary_line(path: Path, model: ScoringModel) -> str:
    threshold = model.qualify.threshold
    return (
        f"{path}: ok ({model.version_label}, {_count(len(model.fit.rules), 'fit rule')}, "
        f"{_count(len(model.engagement.rules), 'engagement rule')}, "
        f"threshold {UNSET if threshold is None else show(threshold)})"
    )


@model_app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="model files to check")],
) -> None:
    """Load each model file as a run would; exit 1 if any does not load."""
    failed = False
    for path in files:
        try:
            model = _load(path)
        except ModelError as exc:
            failed = True
            typer.echo(str(exc), err=True)
        else:
            typer.echo(summary_line(path, model))
    if failed:
        raise typer.Exit(code=1)


# --- diff ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One key whose value differs; `None` is a key the model leaves unset."""

    key: str
    old: Any
    new: Any

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass
class RuleChanges:
    """The rules of one section, matched by id."""

    section: str
    before: int
    after: int
    removed: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[str, list[Change]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.removed or self.added or self.changed)

    def as_json(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "added": [_without_none(rule) for rule in self.added],
            "removed": [_without_none(rule) for rule in self.removed],
            "changed": [
                {"id": rule_id, "changes": [change.as_json() for change in changes]}
                for rule_id, changes in self.changed
            ],
        }


@dataclass
class ModelDiff:
    a: Path
    b: Path
    old: ScoringModel
    new: ScoringModel
    rules: dict[str, RuleChanges]
    changes: list[Change]
    """Every difference outside the rule lists, as dotted keys, in the file's order."""

    @property
    def empty(self) -> bool:
        return not self.changes and all(section.empty for section in self.rules.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "a": {"file": str(self.a), "model": self.old.version_label},
            "b": {"file": str(self.b), "model": self.new.version_label},
            "differs": not self.empty,
            "rules": {name: section.as_json() for name, section in self.rules.items()},
            "changes": [change.as_json() for change in self.changes],
        }


def diff_models(a: Path, old: ScoringModel, b: Path, new: ScoringModel) -> ModelDiff:
    old_data = old.model_dump(mode="json", by_alias=True)
    new_data = new.model_dump(mode="json", by_alias=True)
    changes: list[Change] = []
    _compare(ScoringModel, old_data, new_data, "", changes)
    rules = {
        section: _rule_changes(section, old_data[section]["rules"], new_data[section]["rules"])
        for section in RULE_SECTIONS
    }
    return ModelDiff(a=a, b=b, old=old, new=new, rules=rules, changes=changes)


def _compare(
    model: type[BaseModel],
    old: dict[str, Any],
    new: dict[str, Any],
    prefix: str,
    out: list[Change],
) -> None:
    """The differences of two dumps of `model`, section by section in declaration order."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = prefix + key
        before, after = old.get(key), new.get(key)
        if path in {f"{section}.rules" for section in RULE_SECTIONS}:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _compare(annotation, before or {}, after or {}, path + ".", out)
        elif isinstance(before, dict) or isinstance(after, dict):
            # A map of letters (grades, priority_by_grade): one line per letter.
            before, after = before or {}, after or {}
            for letter in sorted({*before, *after}):
                if before.get(letter) != after.get(letter):
                    out.append(Change(f"{path}.{letter}", before.get(letter), after.get(letter)))
        elif not _same(before, after):
            out.append(Change(path, before, after))


def _rule_changes(
    section: str, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> RuleChanges:
    found = RuleChanges(section=section, before=len(old), after=len(new))
    old_by_id = {rule["id"]: rule for rule in old}
    new_by_id = {rule["id"]: rule for rule in new}
    found.removed = [rule for rule in old if rule["id"] not in new_by_id]
    found.added = [rule for rule in new if rule["id"] not in old_by_id]
    for rule in old:
        other = new_by_id.get(rule["id"])
        if other is None:
            continue
        keys = [*rule, *(key for key in other if key not in rule)]
        changes = [
            Change(key, rule.get(key), other.get(key))
            for key in keys
            if not _same(rule.get(key), other.get(key))
        ]
        if changes:
            found.changed.append((rule["id"], changes))
    return found


def _same(a: Any, b: Any) -> bool:
    # 1 and 1.0 are the same number, True and 1 are not.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _without_none(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if value is not None}


_BARE = re.compile(r"[A-Za-z_/][\w./-]*")
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", UNSET})


def show(value: Any) -> str:
    """A value as a reviewer reads it: numbers plain, text quoted unless it is one word."""
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _BARE.fullmatch(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {show(item)}" for key, item in value.items()) + "}"
    return str(value)


def _rule_summary(rule: dict[str, Any], defaults: dict[str, Any]) -> str:
    """A rule's conditions, then its points; unset and default keys left out."""
    keys = [key for key in rule if key not in {"id", "description", "points"}] + ["points"]
    return ", ".join(
        f"{key} {show(rule[key])}"
        for key in keys
        if rule.get(key) is not None and (key == "points" or rule[key] != defaults.get(key))
    )


def _defaults(section: str) -> dict[str, Any]:
    rule_type: type[BaseModel] = FitRule if section == "fit" else EngagementRule
    return {
        info.alias or name: info.get_default(call_default_factory=True)
        for name, info in rule_type.model_fields.items()
        if not info.is_required()
    }


def render_diff(diff: ModelDiff) -> list[str]:
    """The diff as lines: `+` added rule, `-` removed rule, `~` changed key (old → new)."""
    lines = [f"{diff.a} ({diff.old.version_label}) {ARROW} {diff.b} ({diff.new.version_label})"]
    by_section: dict[str, list[Change]] = {}
    for change in diff.changes:
        by_section.setdefault(change.key.split(".", 1)[0], []).append(change)
    # The file's order: name, version, description, fit, engagement, qualify, handoff.
    for top, info in ScoringModel.model_fields.items():
        name = info.alias or top
        section = diff.rules.get(name)
        if section is not None:
            lines += _rule_lines(name, section)
        lines += _change_lines(by_section.get(name, []))
    if diff.empty:
        lines.append("no differences")
    return lines


def _rule_lines(name: str, section: RuleChanges) -> list[str]:
    defaults = _defaults(name)
    lines = [
        f"{name} rules: {section.before} {ARROW} {section.after} "
        f"({len(section.added)} added, {len(section.removed)} removed, "
        f"{len(section.changed)} changed)"
    ]
    lines += [
        f"- {name}.rules[{rule['id']}]: {_rule_summary(rule, defaults)}" for rule in section.removed
    ]
    lines += [
        f"+ {name}.rules[{rule['id']}]: {_rule_summary(rule, defaults)}" for rule in section.added
    ]
    for rule_id, changes in section.changed:
        lines += _change_lines(changes, f"{name}.rules[{rule_id}].")
    return lines


def _change_lines(changes: Sequence[Change], prefix: str = "") -> list[str]:
    return [
        f"~ {prefix}{change.key}: {show(change.old)} {ARROW} {show(change.new)}"
        for change in changes
    ]


@model_app.command()
def diff(
    a: Annotated[Path, typer.Argument(help="the model before (e.g. the base branch's)")],
    b: Annotated[Path, typer.Argument(help="the model after")],
    json_output: Annotated[bool, typer.Option("--json", help="print the diff as JSON")] = False,
) -> None:
    """What changes from model A to model B: rules, grades, caps, half-life, qualify.

    Exit 0 whether or not they differ, 1 if either file does not load.
    """
    loaded: list[ScoringModel] = []
    for path in (a, b):
        try:
            loaded.append(_load(path))
        except ModelError as exc:
            typer.echo(str(exc), err=True)
    if len(loaded) != 2:
        raise typer.Exit(code=1)
    found = diff_models(a, loaded[0], b, loaded[1])
    if json_output:
        typer.echo(json.dumps(found.as_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo("\n".join(render_diff(found)))
