"""Broken configuration is refused on load with `file:line: what to fix`, never a traceback.

Every file in `bad_config/` is one mistake a real user makes in a scoring model or a CRM
mapping. Its first line says what the error must contain:

    # expect: line 7: did you mean `company_size`?

Files named `hubspot-*` / `salesforce-*` are loaded as that CRM's mapping, the rest as
models. Alias bombs, deep nesting and catastrophic patterns must simply finish: the
suite would hang otherwise.
"""

from __future__ import annotations

import json
import math
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import MappingError
from connectors.mapping import load_mapping
from flows.check import check_configuration, load_model_file
from flows.settings import Settings
from scoring.engine import MATCH_TEXT_MAX, score
from scoring.model import ModelError, parse_model
from scoring.records import Crm
from scoring.yaml_lines import MAX_BYTES
from tests.scoring.factories import AS_OF, activity, contact

CORPUS = Path(__file__).parent / "bad_config"
FILES = sorted(CORPUS.glob("*.yaml"))
HEADER = re.compile(r"# expect: (?:line (\d+): )?(.+)")
SHIPPED_MODEL = Path("scoring/models/default.yaml")


def expectation(path: Path) -> tuple[int | None, str]:
    first = path.read_bytes().removeprefix("\ufeff".encode()).split(b"\n", 1)[0]
    found = HEADER.fullmatch(first.decode("ascii"))
    assert found, f"{path.name}: first line must be '# expect: [line N: ]phrase'"
    return (int(found[1]) if found[1] else None), found[2]


def load(path: Path) -> None:
    """Load `path` the way a run would: as a model, or as the mapping its name says."""
    kind = path.name.split("-", 1)[0]
    if kind == "model":
        load_model_file(path)
    else:
        load_mapping(path, crm=Crm(kind))


def refusal(path: Path) -> str:
    with pytest.raises((ModelError, MappingError)) as caught:
        load(path)
    return str(caught.value)


def test_the_corpus_is_large_and_every_case_says_what_it_expects() -> None:
    assert len(FILES) >= 40
    assert {path.name.split("-", 1)[0] for path in FILES} == {"model", "hubspot", "salesforce"}
    for path in FILES:
        expectation(path)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_bad_file_is_refused_with_file_line_and_what_to_fix(path: Path) -> None:
    line, phrase = expectation(path)
    message = refusal(path)
    assert message.startswith(f"{path}:" if line is not None else str(path)), message
    if line is not None:
        assert f"{path}:{line}:" in message, message
    assert phrase in message, message
    assert "Traceback" not in message


def test_a_file_larger_than_a_mebibyte_is_refused_unread(tmp_path: Path) -> None:
    for name, crm in (("model.yaml", None), ("hubspot.yaml", Crm.HUBSPOT)):
        path = tmp_path / name
        path.write_text("# padding\n" * (2 * MAX_BYTES // 10))
        with pytest.raises((ModelError, MappingError)) as caught:
            load_mapping(path, crm=crm) if crm else load_model_file(path)
        assert str(caught.value).startswith(f"{path}: the file is larger than 1 MiB")


def test_nesting_far_past_the_stack_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("name: x\nversion: 1\nqualify: {threshold: " + "[" * 100_000 + "\n")
    assert f"{path}:3: (document): nested more than" in refusal_of_model(path)


def refusal_of_model(path: Path) -> str:
    with pytest.raises(ModelError) as caught:
        load_model_file(path)
    return str(caught.value)


def test_a_model_saved_with_a_byte_order_mark_loads() -> None:
    text = SHIPPED_MODEL.read_bytes()
    assert parse_model("\ufeff".encode() + text, "bom.yaml").name == "default-b2b"


def test_a_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert refusal_of_model(path) == f"{path}: cannot read the model: No such file or directory"


# --- unknown fields and attributes -------------------------------------------------------

FIT = "name: t\nversion: 1\nfit:\n  rules:\n    - {id: r, field: %s, eq: x, points: 10}\n"
FIT += "qualify: {threshold: 10}\n"
WHERE = "name: t\nversion: 1\nengagement:\n  rules:\n"
WHERE += "    - {id: r, activity: page_view, where: {%s: x}, points: 10}\nqualify: {threshold: 1}\n"


def test_a_property_close_to_a_field_name_is_read_with_the_explicit_prefix() -> None:
    with pytest.raises(ModelError, match=r"properties\.company_sise"):
        parse_model(FIT % "company_sise", "m.yaml")
    model = parse_model(FIT % "properties.company_sise", "m.yaml")
    hit = contact(properties={"company_sise": "x"}, company_size=5)
    assert score(model, hit, [], AS_OF).fit == 10
    assert score(model, contact(company_size=5), [], AS_OF).fit == 0


def test_a_free_form_attribute_close_to_a_canonical_one_needs_the_prefix() -> None:
    with pytest.raises(ModelError, match="did you mean `campaign`"):
        parse_model(WHERE % "campain", "m.yaml")
    model = parse_model(WHERE % "attributes.campain", "m.yaml")
    assert score(model, contact(), [activity("page_view", attributes={"campain": "x"})], AS_OF)
    result = score(model, contact(), [activity("page_view", campaign="x")], AS_OF)
    assert result.engagement == 0


def test_with_the_mappings_known_every_property_must_be_one_they_read() -> None:
    known = {"seats"}
    assert parse_model(FIT % "seats", "m.yaml", contact_properties=known)
    with pytest.raises(ModelError) as caught:
        parse_model(FIT % "title", "m.yaml", contact_properties=known)
    assert "m.yaml:5: fit.rules[0].field: `title` is neither" in str(caught.value)
    assert "did you mean `job_title`?" in str(caught.value)
    with pytest.raises(ModelError, match="did you mean `url`"):
        parse_model(WHERE % "ulr", "m.yaml", activity_attributes=set())


# --- catastrophic regular expressions ------------------------------------------------------

CATASTROPHIC = """
name: t
version: 1
fit:
  rules:
    - {id: nested, field: notes, matches: '(a+)+$', points: 10}
    - {id: plain, field: notes, matches: '^a', points: 1}
qualify: {threshold: 1}
"""


def test_a_catastrophic_pattern_finishes_as_no_match() -> None:
    model = parse_model(CATASTROPHIC, "m.yaml")
    # A run of `a` then a character that makes the engine try every split of the run.
    who = contact(properties={"notes": "a" * (MATCH_TEXT_MAX - 1) + "!"})
    result = score(model, who, [], AS_OF)
    assert result.matched_fit == {"plain"}
    assert result.fit == 1


def test_a_value_too_long_to_search_never_matches() -> None:
    model = parse_model(CATASTROPHIC, "m.yaml")
    huge = contact(properties={"notes": "a" * 100_000})
    assert score(model, huge, [], AS_OF).matched_fit == set()
    fits = contact(properties={"notes": "a" * MATCH_TEXT_MAX})
    assert score(model, fits, [], AS_OF).matched_fit == {"nested", "plain"}


# --- check_configuration -------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any attempt to open a connection is recorded and fails."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("check_configuration must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def settings_for(**paths: Path) -> Settings:
    # No CRM settings at all: a check needs none.
    chosen: dict[str, Path | None] = {"hubspot_mapping": None, "salesforce_mapping": None}
    chosen["model_path"] = SHIPPED_MODEL
    chosen.update(paths)
    return Settings(**chosen)


CHECKED = [
    ("model-points-nan.yaml", "model_path"),
    ("model-misspelt-field.yaml", "model_path"),
    ("model-billion-laughs.yaml", "model_path"),
    ("hubspot-given-salesforce.yaml", "hubspot_mapping"),
    ("salesforce-given-hubspot.yaml", "salesforce_mapping"),
    ("hubspot-alias-bomb.yaml", "hubspot_mapping"),
]


@pytest.mark.parametrize(("name", "setting"), CHECKED)
def test_check_reports_the_problem_without_the_network(
    name: str, setting: str, no_network: list[Any]
) -> None:
    path = CORPUS / name
    line, phrase = expectation(path)
    problems = check_configuration(settings_for(**{setting: path}))
    assert problems, "the broken file was accepted"
    assert all(re.match(r"\S+?(:\d+)?: ", problem) for problem in problems), problems
    mine = [p for p in problems if p.startswith(f"{path}:{line}:") and phrase in p]
    assert mine, problems
    assert no_network == []


def test_check_passes_the_shipped_files_and_the_seed_models(no_network: list[Any]) -> None:
    for model in [SHIPPED_MODEL, *sorted(Path("tests/scoring/models").glob("*.yaml"))]:
        assert check_configuration(settings_for(model_path=model)) == [], model
    assert no_network == []


def test_check_refuses_a_property_no_mapping_reads(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(FIT % "seats")
    (problem,) = check_configuration(settings_for(model_path=path))
    assert problem.startswith(f"{path}:5: fit.rules[0].field: `seats` is neither")


def test_check_reports_every_broken_file_at_once() -> None:
    problems = check_configuration(
        settings_for(
            model_path=CORPUS / "model-points-inf.yaml",
            hubspot_mapping=CORPUS / "hubspot-tab-indent.yaml",
            salesforce_mapping=CORPUS / "salesforce-latin1-byte.yaml",
        )
    )
    assert [p.split(":", 1)[0] for p in problems] == [
        str(CORPUS / "hubspot-tab-indent.yaml"),
        str(CORPUS / "salesforce-latin1-byte.yaml"),
        str(CORPUS / "model-points-inf.yaml"),
    ]


# --- numbers in scores ----------------------------------------------------------------------

POINTS_MODEL = """
name: t
version: 1
fit:
  rules:
    - {{id: f, field: company_size, gte: 0, points: {fit}}}
engagement:
  half_life_days: {half_life}
  max_points: {cap}
  rules:
    - {{id: e, activity: page_view, points: {each}}}
qualify: {{threshold: {threshold}}}
"""

points = st.floats(min_value=-1_000_000, max_value=1_000_000, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    fit=points,
    each=points,
    threshold=points,
    half_life=st.floats(min_value=1e-9, max_value=36_525),
    cap=st.floats(min_value=1e-9, max_value=1_000_000),
    visits=st.lists(st.floats(min_value=0, max_value=36_500), max_size=30),
)
def test_any_accepted_numbers_give_finite_json_totals(
    fit: float,
    each: float,
    threshold: float,
    half_life: float,
    cap: float,
    visits: list[float],
) -> None:
    text = POINTS_MODEL.format(
        fit=repr(fit), each=repr(each), threshold=repr(threshold), half_life=repr(half_life),
        cap=repr(cap),
    )  # fmt: skip
    model = parse_model(text, "m.yaml")
    history = [activity("page_view", days_ago=days) for days in visits]
    result = score(model, contact(company_size=10), history, AS_OF)
    for value in (result.fit, result.engagement, result.total):
        assert math.isfinite(value)
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


@given(st.sampled_from([".nan", ".NaN", ".inf", "-.inf", ".Inf", "1.0e+400", "-1.0e+400"]))
def test_no_spelling_of_a_non_finite_number_is_accepted(written: str) -> None:
    text = POINTS_MODEL.format(fit=written, each=1, threshold=1, half_life=30, cap=10)
    with pytest.raises(ModelError, match=r"m\.yaml:6: fit\.rules\[0\]\.points: .*not a finite"):
        parse_model(text, "m.yaml")


JUNK = [":", "-", "[", "{", "}", "&a ", "*a", "!!", ".nan", "\t", "'", "? ", "<<: ", "\n", " "]
JUNK += ["#", "1e400", "yes", "~", "%", "|", "\x00", "\ufeff"]
SHIPPED_TEXT = SHIPPED_MODEL.read_text()


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(SHIPPED_TEXT)), st.sampled_from(JUNK), st.integers(0, 12)),
        min_size=1,
        max_size=4,
    )
)
def test_any_mangled_model_loads_or_is_refused_with_its_file_name(
    edits: list[tuple[int, str, int]],
) -> None:
    text = SHIPPED_TEXT
    for at, inserted, deleted in edits:
        text = text[:at] + inserted + text[at + deleted :]
    try:
        parse_model(text, "mangled.yaml")
    except ModelError as exc:
        assert str(exc).startswith("mangled.yaml")
