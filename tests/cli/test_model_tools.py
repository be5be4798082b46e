"""`mqlsync model schema|check|diff`, on the shipped model files and copies of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from flows.model_tools import SCHEMA_FILE, model_app, schema_text
from scoring.model import parse_model
from scoring.yaml_lines import load_with_lines

MODELS = Path("scoring/models")
SHIPPED = sorted(MODELS.glob("*.yaml"))
EXAMPLE = MODELS / "example.yaml"
DEFAULT = MODELS / "default.yaml"
CANDIDATES = MODELS / "candidates.yaml"
MODELINE = "# yaml-language-server: $schema=./model.schema.json\n"
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(model_app, list(args))


def committed_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def schema_errors(data: Any) -> list[str]:
    schema = committed_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(data)]


# --- schema -------------------------------------------------------------------------


def test_the_committed_schema_is_what_schema_prints_now() -> None:
    result = run("schema")
    assert result.exit_code == 0, result.output
    assert Path("scoring/models/model.schema.json").resolve() == SCHEMA_FILE
    # If this fails, the model's types changed: run `mqlsync model schema --out
    # scoring/models/model.schema.json` and commit the file.
    assert result.stdout == SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()


def test_schema_out_writes_the_same_text(tmp_path: Path) -> None:
    out = tmp_path / "model.schema.json"
    result = run("schema", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.read_text(encoding="utf-8") == SCHEMA_FILE.read_text(encoding="utf-8")


def test_the_schema_is_a_valid_draft_7_schema_without_an_id() -> None:
    schema = committed_schema()
    assert list(schema)[:3] == ["$schema", "title", "description"]
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["title"] == "mqlsync scoring model"
    assert "$id" not in SCHEMA_FILE.read_text(encoding="utf-8")
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["required"] == ["name", "version", "qualify"]
    assert schema["additionalProperties"] is False
    fit_rule = schema["$defs"]["FitRule"]
    # The file's spelling (the alias), and the docstring as the editor's hover text.
    assert "in" in fit_rule["properties"] and "in_" not in fit_rule["properties"]
    assert fit_rule["description"].startswith("Points for who a contact is.")
    assert "page_view" in schema["$defs"]["ActivityType"]["enum"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_each_shipped_model_loads_and_validates_against_the_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert parse_model(text, str(path)).qualify
    data, _ = load_with_lines(text, str(path))
    assert schema_errors(data) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_a_schema_comment_changes_nothing_for_the_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8").removeprefix(MODELINE)
    with_comment = MODELINE + text
    assert parse_model(with_comment, str(path)) == parse_model(text, str(path))
    data, lines = load_with_lines(with_comment, str(path))
    assert schema_errors(data) == []
    # Every key moves down one line: why the shipped files do not carry it yet (below).
    assert lines[("name",)] == load_with_lines(text, str(path))[1][("name",)] + 1


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_each_shipped_model_names_the_schema_on_its_first_line(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(MODELINE)
    assert (path.parent / "model.schema.json").is_file()


def test_the_schema_refuses_what_an_editor_should_flag() -> None:
    data, _ = load_with_lines(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    data["fit"]["rules"][0]["colour"] = "blue"
    data["engagement"]["rules"][0]["activity"] = "fax_received"
    data["qualify"]["threshold"] = "fifty"
    data["handoff"]["priority_by_grade"] = {"A": "urgent"}
    errors = schema_errors(data)
    assert len(errors) == 4, errors
    assert any("'colour' was unexpected" in error for error in errors)


# --- check --------------------------------------------------------------------------


def write_bad(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "      points: 20\n" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("      points: 20\n", "      points: twenty\n", 1))
    return bad


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


def test_check_a_good_model() -> None:
    result = run("check", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "scoring/models/example.yaml: ok (saas-example@1, 4 fit rules, 5 engagement rules, "
        "threshold 50)\n"
    )


def test_check_every_shipped_model() -> None:
    result = run("check", *map(str, SHIPPED))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "scoring/models/candidates.yaml: ok (default-b2b-candidates@1, 18 fit rules, "
        "23 engagement rules, threshold 60)",
        "scoring/models/default.yaml: ok (default-b2b@1, 8 fit rules, 12 engagement rules, "
        "threshold 60)",
        "scoring/models/example.yaml: ok (saas-example@1, 4 fit rules, 5 engagement rules, "
        "threshold 50)",
    ]


def test_check_a_bad_model_names_file_and_line(tmp_path: Path) -> None:
    bad = write_bad(tmp_path)
    result = run("check", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    line = line_of(bad, "points: twenty")
    assert result.stderr.startswith(f"{bad}:{line}: fit.rules[0].points: ")
    assert "Traceback" not in result.output


def test_check_two_files_one_bad_exits_1_and_reports_both(tmp_path: Path) -> None:
    bad = write_bad(tmp_path)
    missing = tmp_path / "missing.yaml"
    result = run("check", str(DEFAULT), str(bad), str(missing))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "scoring/models/default.yaml: ok (default-b2b@1, 8 fit rules, 12 engagement rules, "
        "threshold 60)"
    ]
    assert f"{bad}:{line_of(bad, 'points: twenty')}: fit.rules[0].points" in result.stderr
    assert f"{missing}: cannot read the model" in result.stderr


# --- diff ---------------------------------------------------------------------------


def test_diff_default_to_candidates_lists_the_candidates_as_added() -> None:
    result = run("diff", str(DEFAULT), str(CANDIDATES))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "scoring/models/default.yaml (default-b2b@1) → "
        "scoring/models/candidates.yaml (default-b2b-candidates@1)"
    )
    assert lines[1] == "~ name: default-b2b → default-b2b-candidates"
    assert "fit rules: 8 → 18 (10 added, 0 removed, 0 changed)" in lines
    assert "engagement rules: 12 → 23 (11 added, 0 removed, 0 changed)" in lines
    assert (
        '+ fit.rules[candidate-education]: field industry, matches "(?i)education", points 0'
        in lines
    )
    assert (
        "+ engagement.rules[candidate-pricing-view]: activity page_view, "
        "where {url_contains: /pricing}, points 0"
    ) in lines
    candidates = parse_model(CANDIDATES.read_text(encoding="utf-8"), str(CANDIDATES))
    added = [line.split("]")[0] for line in lines if line.startswith("+ ")]
    assert added == [
        f"+ {section}.rules[{rule.id}"
        for section, rules in (
            ("fit", candidates.fit.rules),
            ("engagement", candidates.engagement.rules),
        )
        for rule in rules
        if rule.id.startswith("candidate-")
    ]
    # Nothing else differs: no rule removed or changed, same grades, caps and qualify.
    others = [line for line in lines[3:] if line.startswith(("- ", "~ "))]
    assert lines[2].startswith('~ description: "Fit plus decaying engagement;')
    assert others == []


def changed_copy(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    edits = [
        ("      gte: 50 ", "      gte: 100"),  # company-50-plus
        ("      points: 20\n", "      points: 25\n"),  # company-50-plus
        ("  threshold: 50 ", "  threshold: 55 "),
        ("  min_grade: C ", "  min_grade: B "),
        ("  half_life_days: 30 ", "  half_life_days: 45 "),
        ("grades: {A: 40, B: 25, C: 10}", "grades: {A: 45, B: 25, C: 10}"),
        ("      max_points: 30 ", "      max_points: 40 "),  # case-study
        ("    - id: unsubscribed\n      activity: email_unsubscribe\n      points: -50\n",
         "    - id: unsubscribed\n      activity: email_unsubscribe\n      points: -50\n"
         "      decay: false\n"
         "    - id: trial\n      activity: trial_signup\n      points: 30\n"),
        ("    - id: student\n      field: job_title\n"
         '      matches: "(?i)\\\\b(student|intern)\\\\b"\n      points: -40\n', ""),
    ]  # fmt: skip
    for old, new in edits:
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    copy = tmp_path / "changed.yaml"
    copy.write_text(text, encoding="utf-8")
    return copy


def test_diff_lists_each_change_old_to_new(tmp_path: Path) -> None:
    copy = changed_copy(tmp_path)
    result = run("diff", str(EXAMPLE), str(copy))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"scoring/models/example.yaml (saas-example@1) → {copy} (saas-example@1)",
        "fit rules: 4 → 3 (0 added, 1 removed, 1 changed)",
        '- fit.rules[student]: field job_title, matches "(?i)\\\\b(student|intern)\\\\b", '
        "points -40",
        "~ fit.rules[company-50-plus].points: 20 → 25",
        "~ fit.rules[company-50-plus].gte: 50 → 100",
        "~ fit.grades.A: 40 → 45",
        "engagement rules: 5 → 6 (1 added, 0 removed, 2 changed)",
        "+ engagement.rules[trial]: activity trial_signup, points 30",
        "~ engagement.rules[case-study].max_points: 30 → 40",
        "~ engagement.rules[unsubscribed].decay: true → false",
        "~ engagement.half_life_days: 30 → 45",
        "~ qualify.threshold: 50 → 55",
        "~ qualify.min_grade: C → B",
    ]


def test_diff_of_a_model_with_itself() -> None:
    result = run("diff", str(EXAMPLE), str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "fit rules: 4 → 4 (0 added, 0 removed, 0 changed)",
        "engagement rules: 5 → 5 (0 added, 0 removed, 0 changed)",
        "no differences",
    ]


def test_diff_json(tmp_path: Path) -> None:
    copy = changed_copy(tmp_path)
    result = run("diff", "--json", str(EXAMPLE), str(copy))
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert set(found) == {"a", "b", "differs", "rules", "changes"}
    assert found["a"] == {"file": "scoring/models/example.yaml", "model": "saas-example@1"}
    assert found["b"] == {"file": str(copy), "model": "saas-example@1"}
    assert found["differs"] is True
    fit = found["rules"]["fit"]
    assert (fit["before"], fit["after"], fit["added"]) == (4, 3, [])
    assert fit["removed"] == [
        {
            "id": "student",
            "field": "job_title",
            "points": -40,
            "matches": "(?i)\\b(student|intern)\\b",
        }
    ]
    assert fit["changed"] == [
        {
            "id": "company-50-plus",
            "changes": [
                {"key": "points", "old": 20, "new": 25},
                {"key": "gte", "old": 50, "new": 100},
            ],
        }
    ]
    engagement = found["rules"]["engagement"]
    assert engagement["added"] == [
        {"id": "trial", "activity": "trial_signup", "where": {}, "points": 30, "decay": True}
    ]
    assert [rule["id"] for rule in engagement["changed"]] == ["case-study", "unsubscribed"]
    assert found["changes"] == [
        {"key": "fit.grades.A", "old": 40, "new": 45},
        {"key": "engagement.half_life_days", "old": 30, "new": 45},
        {"key": "qualify.threshold", "old": 50, "new": 55},
        {"key": "qualify.min_grade", "old": "C", "new": "B"},
    ]


def test_diff_json_of_default_and_candidates() -> None:
    result = run("diff", "--json", str(DEFAULT), str(CANDIDATES))
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [rule["id"] for rule in found["rules"]["engagement"]["added"]][:2] == [
        "candidate-any-page-view",
        "candidate-pricing-view",
    ]
    assert len(found["rules"]["fit"]["added"]) == 10
    assert [change["key"] for change in found["changes"]] == ["name", "description"]


def test_diff_exits_1_when_a_file_does_not_load(tmp_path: Path) -> None:
    bad = write_bad(tmp_path)
    for args in (["diff", str(EXAMPLE), str(bad)], ["diff", "--json", str(bad), str(EXAMPLE)]):
        result = run(*args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert f"{bad}:{line_of(bad, 'points: twenty')}: fit.rules[0].points" in result.stderr


def test_registered_as_the_model_group() -> None:
    # How flows/cli.py registers it: app.add_typer(model_app, name="model").
    app = typer.Typer()
    app.add_typer(model_app, name="model")
    result = runner.invoke(app, ["model", "check", str(DEFAULT)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scoring/models/default.yaml: ok (default-b2b@1,")
    assert runner.invoke(app, ["model", "--help"]).exit_code == 0
