"""A model file is validated on load, with errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.model import ModelError, parse_model

GOOD = Path("scoring/models/example.yaml").read_text()


def error_for(text: str) -> ModelError:
    with pytest.raises(ModelError) as caught:
        parse_model(text, "models/mine.yaml")
    return caught.value


def replace_line(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_models_load() -> None:
    for path in Path("scoring/models").glob("*.yaml"):
        assert parse_model(path.read_text(), str(path)).qualify


def test_unknown_key_names_file_line_and_key() -> None:
    text = replace_line("      gte: 50 ", "      gte: 50\n      colour: blue ")
    err = error_for(text)
    (line, key, message) = err.problems[0]
    assert (line, key, message) == (line_of(text, "colour"), "fit.rules[0].colour", "unknown key")
    assert str(err).startswith(f"models/mine.yaml:{line}: fit.rules[0].colour: unknown key")


def test_wrong_type() -> None:
    text = replace_line("      points: 20\n", "      points: twenty\n")
    (line, key, message) = error_for(text).problems[0]
    assert line == line_of(text, "points: twenty")
    assert key == "fit.rules[0].points"
    assert "number" in message


def test_bad_regex() -> None:
    text = replace_line('matches: "(?i)\\\\b(vp', 'matches: "(?i)\\\\b((vp')
    (line, key, message) = error_for(text).problems[0]
    assert (line, key) == (line_of(text, 'matches: "(?i)\\\\b((vp'), "fit.rules[1].matches")
    assert "regular expression" in message


def test_rule_id_used_twice() -> None:
    text = replace_line("- id: webinar\n", "- id: case-study\n")
    (line, key, message) = error_for(text).problems[0]
    assert key == "engagement.rules[1].id"
    assert line == text.splitlines().index("    - id: case-study", 31) + 1
    assert "used twice" in message


def test_criterion_naming_no_rule() -> None:
    text = replace_line("    - engagement: pricing-twice-14d", "    - engagement: pricing-thrice")
    (line, key, message) = error_for(text).problems[0]
    assert (line, key) == (line_of(text, "pricing-thrice"), "qualify.all_of[1].engagement")
    assert "pricing-thrice" in message


def test_nested_criterion_naming_no_rule() -> None:
    text = replace_line("        - engagement: webinar", "        - fit: webinar")
    (line, key, _) = error_for(text).problems[0]
    assert (line, key) == (line_of(text, "- fit: webinar"), "qualify.all_of[2].any_of[1].fit")


def test_unknown_activity_type() -> None:
    text = replace_line("activity: demo_request", "activity: demo_requested")
    (line, key, _) = error_for(text).problems[0]
    assert (line, key) == (line_of(text, "demo_requested"), "engagement.rules[2].activity")


def test_duplicate_yaml_key() -> None:
    text = replace_line("version: 1\n", "version: 1\nversion: 2\n")
    (line, _, message) = error_for(text).problems[0]
    assert line == 7 and message == "duplicate key 'version' (first at line 6)"


def test_not_yaml() -> None:
    (line, _, _) = error_for("name: [unclosed\nversion: 1\n").problems[0]
    assert line is not None


def test_missing_qualify() -> None:
    (_, key, message) = error_for("name: x\nversion: 1\n").problems[0]
    assert key == "qualify" and "required" in message.lower()


def test_empty_qualify() -> None:
    (_, key, message) = error_for("name: x\nversion: 1\nqualify: {}\n").problems[0]
    assert key == "qualify" and "at least one condition" in message


def test_capped_window_rule_is_refused() -> None:
    text = replace_line("      within_days: 14 ", "      within_days: 14\n      max_points: 5 ")
    (_, key, message) = error_for(text).problems[0]
    assert key == "engagement.rules[3]" and "max_points" in message


def test_model_without_fit_or_engagement_rules() -> None:
    head, tail = "name: x\nversion: 1\n", "qualify: {threshold: 5}\n"
    only_fit = f"{head}fit:\n  rules:\n    - {{id: a, field: country, eq: US, points: 5}}\n{tail}"
    rule = "{id: d, activity: demo_request, points: 5}"
    only_eng = f"{head}engagement:\n  rules:\n    - {rule}\n{tail}"
    assert parse_model(only_fit).engagement.rules == []
    assert parse_model(only_eng).fit.rules == []


def test_min_grade_without_fit_rules() -> None:
    text = "name: x\nversion: 1\nqualify: {threshold: 5, min_grade: B}\n"
    (_, key, _) = error_for(text).problems[0]
    assert key == "qualify.min_grade"


def test_grades_must_descend() -> None:
    text = replace_line("grades: {A: 40, B: 25, C: 10}", "grades: {A: 10, B: 25, C: 5}")
    (_, key, _) = error_for(text).problems[0]
    assert key == "fit.grades"


def test_a_rule_on_the_outcome_is_refused() -> None:
    """`accepted_at` is mapped so backtests can learn from it; a score that read it would
    know the future, so no rule may name it."""
    text = replace_line("field: company_size", "field: accepted_at")
    (line, key, message) = error_for(text).problems[0]
    assert (line, key) == (line_of(text, "field: accepted_at"), "fit.rules[0].field")
    assert "outcome" in message
