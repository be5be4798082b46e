"""One formatter turns a schema error into `file:line: key.path[0]: message` problems."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from scoring.yaml_lines import (
    DOCUMENT,
    Located,
    Problem,
    dotted,
    load_with_lines,
    validation_problems,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Strict):
    name: str
    count: int


class Section(_Strict):
    title: str
    items: list[Item]
    tag: str | int | None = None


class Settings(_Strict):
    owner: str
    limit: int = 0


class Document(_Strict):
    settings: Settings
    sections: list[Section]

    @model_validator(mode="after")
    def _not_empty(self) -> Document:
        if not self.sections:
            raise ValueError("the document is empty: add a section")
        for index, section in enumerate(self.sections):
            if section.title == "forbidden":
                raise Located("this title is reserved", "sections", index, "title")
        return self

    @model_validator(mode="after")
    def _limit_fits(self) -> Document:
        if self.settings.limit > len(self.sections) * 10:
            raise ValueError("the sections cannot hold the limit in settings")
        return self


GOOD = """\
settings:
  owner: ops
sections:
  - title: first
    items:
      - {name: a, count: 1}
  - title: second
    items:
      - name: b
        count: 2
      - name: c
        count: 3
"""


def problems_of(text: str, keys_at: Any = None) -> list[Problem]:
    data, lines = load_with_lines(text, "doc.yaml")
    with pytest.raises(ValidationError) as caught:
        Document.model_validate(data)
    return validation_problems(caught.value, lines, keys_at)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_good_document_validates() -> None:
    data, _ = load_with_lines(GOOD, "doc.yaml")
    assert Document.model_validate(data).sections[1].items[1].count == 3


def test_a_missing_key_is_reported_at_its_parents_line() -> None:
    text = GOOD.replace("  owner: ops\n", "  limit: 1\n")
    assert problems_of(text) == [Problem(1, "settings.owner", "Field required")]


def test_a_bad_value_deep_in_a_list_is_reported_at_its_key() -> None:
    text = GOOD.replace("count: 3", "count: three")
    (problem,) = problems_of(text)
    assert problem == Problem(
        line_of(text, "count: three"),
        "sections[1].items[1].count",
        "Input should be a valid integer, unable to parse string as an integer (got 'three')",
    )
    assert problem.render("doc.yaml") == (
        f"doc.yaml:{problem.line}: sections[1].items[1].count: Input should be a valid "
        "integer, unable to parse string as an integer (got 'three')"
    )


def test_an_error_at_the_root_is_the_documents() -> None:
    text = "settings: {owner: ops}\nsections: []\n"
    (problem,) = problems_of(text)
    # "Value error, " is pydantic's prefix, not ours; no top-level key is named.
    assert problem == Problem(1, DOCUMENT, "the document is empty: add a section")
    assert problem.render("doc.yaml") == (
        "doc.yaml:1: (document): the document is empty: add a section"
    )


def test_a_validator_naming_a_key_points_at_that_keys_line() -> None:
    text = GOOD.replace("  owner: ops\n", "  owner: ops\n  limit: 100\n")
    assert problems_of(text) == [
        Problem(
            line_of(text, "sections:"), DOCUMENT, "the sections cannot hold the limit in settings"
        )
    ]


def test_a_located_error_goes_to_the_key_it_names() -> None:
    text = GOOD.replace("title: second", "title: forbidden")
    assert problems_of(text) == [
        Problem(line_of(text, "forbidden"), "sections[1].title", "this title is reserved")
    ]


def test_an_unknown_key_gets_a_suggestion_and_hides_the_key_it_misspells() -> None:
    text = GOOD.replace("  owner: ops", "  ownr: ops")

    def keys_at(path: tuple[str | int, ...]) -> list[str]:
        return list(Settings.model_fields) if path == ("settings",) else []

    assert problems_of(text, keys_at) == [
        Problem(line_of(text, "ownr"), "settings.ownr", "unknown key; did you mean `owner`?")
    ]
    # An unknown key unlike the missing one does not hide it.
    text = GOOD.replace("  owner: ops", "  colour: blue")
    assert [problem.key for problem in problems_of(text, keys_at)] == [
        "settings.owner",
        "settings.colour",
    ]


def test_a_value_no_member_of_a_union_takes_is_one_problem() -> None:
    text = GOOD.replace("title: first", "title: first\n    tag: [x]")
    assert problems_of(text) == [
        Problem(
            line_of(text, "tag: [x]"),
            "sections[0].tag",
            "Input should be a single value: text or a number",
        )
    ]
    text = GOOD.replace("title: first", "title: first\n    tag: 1.5")
    assert problems_of(text) == [
        Problem(
            line_of(text, "tag: 1.5"),
            "sections[0].tag",
            "Input should be a valid string or a valid integer (got 1.5)",
        )
    ]


def test_a_long_value_is_not_quoted_back() -> None:
    text = GOOD.replace("count: 3", "count: " + "x" * 60)
    (problem,) = problems_of(text)
    assert (
        problem.message == "Input should be a valid integer, unable to parse string as an integer"
    )


def test_a_problem_without_a_line_names_only_the_file() -> None:
    assert (
        Problem(None, "(file)", "cannot read it").render("doc.yaml") == "doc.yaml: cannot read it"
    )


def test_dotted_paths() -> None:
    assert dotted(()) == DOCUMENT
    assert dotted(("fit", "rules", 0, "points")) == "fit.rules[0].points"
    assert dotted(("activity_sources", "Task", "kind")) == "activity_sources.Task.kind"
