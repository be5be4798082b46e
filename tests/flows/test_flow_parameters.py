"""The run forms of every deployment: each parameter titled and described for the people
who fill it in; and a backfill window that cannot run refused at once, in one line, before
any request to the CRM or any store work (from the flow and from `mqlsync backfill`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows import runtime
from flows.demo import point_settings_at
from flows.settings import PROJECT_ROOT

# Words of the code, not of the form: identifiers, Python values, markup, internals.
DEVELOPER_PHRASES = re.compile(
    r"\b[a-z]+_[a-z0-9_]+\b|`|\bNone\b|\bTrue\b|\bFalse\b|->|\bfan-?out\b|\bdropdown\b"
    r"|\bschema\b|\benum\b|\bkwargs?\b|\bparam\b|\bPrefect\b|\bdocstring\b|\bTODO\b",
)
PINNED = "2026-03-15T12:00:00+00:00"  # the runs' clock here: today is 2026-03-15 (UTC)


def deployments() -> list[dict[str, Any]]:
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return list(config["deployments"])


def form_schema(entrypoint: str) -> dict[str, Any]:
    """The parameter schema `prefect deploy` stores for the deployment of `entrypoint`."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    flow: Any = load_flow_from_entrypoint(str(PROJECT_ROOT / entrypoint))
    return parameter_schema(flow).model_dump_for_openapi()


def form_problems(schema: dict[str, Any]) -> list[str]:
    """What a person filling the run form would miss or stumble on: one line each."""
    problems = []
    for name, prop in schema["properties"].items():
        title, description = prop.get("title", ""), prop.get("description", "")
        if not title or title == name or not title[0].isupper():
            problems.append(f"{name}: title {title!r} is no label")
        if len(description) < 20 or not description[0].isupper():
            problems.append(f"{name}: description {description!r} is no help")
        for text in (title, description):
            for found in DEVELOPER_PHRASES.findall(text):
                problems.append(f"{name}: developer text {found!r} in {text!r}")
    for name, definition in schema.get("definitions", {}).items():
        for text in (definition.get("title", ""), definition.get("description", "")):
            if text == name or DEVELOPER_PHRASES.search(text):
                problems.append(f"definition {name}: developer text in {text!r}")
    return problems


@pytest.mark.parametrize("entry", deployments(), ids=lambda d: d["name"])
def test_every_parameter_of_every_deployment_is_titled_and_described(
    entry: dict[str, Any],
) -> None:
    schema = form_schema(entry["entrypoint"])
    assert schema["properties"], entry["name"]
    assert form_problems(schema) == []
    # The CRM is picked from a list of its values.
    crm = schema["properties"]["crm"]
    assert crm["title"] == "CRM"
    assert crm["$ref"] == "#/definitions/CrmName"
    assert schema["definitions"]["CrmName"]["enum"] == ["hubspot", "salesforce"]


def test_the_checker_catches_what_the_forms_used_to_show() -> None:
    before = {
        "properties": {
            "crm": {"$ref": "#/definitions/CrmName", "title": "crm"},
            "shard": {
                "title": "shard",
                "description": "score only this shard (set by the fan-out)",
            },
            "dry_run": {"title": "Dry run", "description": "Set dry_run to True to plan only."},
        },
        "definitions": {
            "CrmName": {"title": "CrmName", "description": "Shown as a dropdown in the UI."}
        },
    }
    problems = "\n".join(form_problems(before))
    for expected in (
        "crm: title 'crm' is no label", "crm: description '' is no help",
        "shard: title 'shard'", "'fan-out'", "'dry_run'", "'True'", "definition CrmName",
    ):  # fmt: skip
        assert expected in problems, expected


def test_the_backfill_window_is_said_whole_days_inclusive_utc() -> None:
    properties = form_schema("flows/sync.py:backfill")["properties"]
    assert [properties[p]["title"] for p in properties] == [
        "CRM", "Window start", "Window end", "Dry run",
    ]  # fmt: skip
    start, end = properties["start"]["description"], properties["end"]["description"]
    assert "included" in start and "00:00 UTC" in start
    assert "included" in end and "24:00 UTC" in end and "today at the latest" in end
    assert "366 days" in end and "MQLSYNC_BACKFILL_MAX_DAYS" in end
    assert properties["dry_run"]["default"] is True
    assert "write nothing to the CRM" in properties["dry_run"]["description"]


def test_the_deployments_parameters_are_valid_for_their_flows() -> None:
    """prefect.yaml's parameters, and what the form requires filled in, validate."""
    from prefect.flows import load_flow_from_entrypoint

    filled = {"crm": "hubspot", "start": "2026-03-01", "end": "2026-03-14"}
    for entry in deployments():
        flow: Any = load_flow_from_entrypoint(str(PROJECT_ROOT / entry["entrypoint"]))
        required = form_schema(entry["entrypoint"]).get("required", [])
        given = {**{p: filled[p] for p in required}, **(entry.get("parameters") or {})}
        assert flow.validate_parameters(given)["crm"].value == given["crm"], entry["name"]


@pytest.mark.parametrize(
    ("fixed_now", "start", "end", "max_days", "refusal"),
    [
        (PINNED, date(2026, 3, 1), date(2026, 3, 15), None, None),  # today is the last day
        (PINNED, date(2025, 3, 15), date(2026, 3, 15), None, None),  # 366 days, both counted
        (PINNED, date(2026, 3, 2), date(2026, 3, 1), None, "is before Window start"),
        (PINNED, date(2026, 3, 1), date(2026, 3, 16), None, "is in the future"),
        (PINNED, date(2025, 3, 14), date(2026, 3, 15), None, "spans 367 days"),
        (PINNED, date(2026, 2, 13), date(2026, 3, 15), "30", "spans 31 days, more than the 30"),
        # 23:30 at UTC-5 is the next day in UTC: the window's days are UTC days.
        ("2026-03-15T23:30:00-05:00", date(2026, 3, 1), date(2026, 3, 16), None, None),
    ],
)
def test_the_window_rules(
    monkeypatch: pytest.MonkeyPatch,
    fixed_now: str,
    start: date,
    end: date,
    max_days: str | None,
    refusal: str | None,
) -> None:
    from flows.sync import window_problem

    monkeypatch.setenv("MQLSYNC_FIXED_NOW", fixed_now)
    if max_days is None:
        monkeypatch.delenv("MQLSYNC_BACKFILL_MAX_DAYS", raising=False)
    else:
        monkeypatch.setenv("MQLSYNC_BACKFILL_MAX_DAYS", max_days)
    runtime.reset()
    try:
        problem = window_problem(start, end)
    finally:
        runtime.reset()
    if refusal is None:
        assert problem is None
    else:
        assert problem is not None and refusal in problem, problem


# The refusals, word for word, with the clock at PINNED.
REFUSALS = [
    (
        date(2026, 3, 10), date(2026, 3, 1), None,
        "backfill hubspot: Window end 2026-03-01 is before Window start 2026-03-10: set the "
        "end on or after the start",
    ),
    (
        date(2026, 3, 1), date(2026, 4, 30), None,
        "backfill hubspot: Window end 2026-04-30 is in the future (today is 2026-03-15, UTC): "
        "set the end to 2026-03-15 or earlier",
    ),
    (
        date(2024, 1, 1), date(2026, 3, 14), None,
        "backfill hubspot: the window 2024-01-01 to 2026-03-14 spans 804 days, more than the "
        "366 allowed: set Window start to 2025-03-14 or later, or raise "
        "MQLSYNC_BACKFILL_MAX_DAYS",
    ),
    (
        date(2026, 1, 1), date(2026, 3, 14), "31",
        "backfill hubspot: the window 2026-01-01 to 2026-03-14 spans 73 days, more than the 31 "
        "allowed: set Window start to 2026-02-12 or later, or raise MQLSYNC_BACKFILL_MAX_DAYS",
    ),
]  # fmt: skip


class Requests:
    """Every CRM request the sandbox is sent, as the sandbox sees it."""

    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.seen: list[str] = []

    def __call__(self, method: str, path: str, number: int, phase: str) -> None:
        if phase == "before":
            self.seen.append(f"{method} {path}")

    def none(self) -> bool:
        totals = self.sb.admin.stats()["totals"]
        return not self.seen and totals["requests"] == 0


@pytest.fixture
def crm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: None
) -> Iterator[tuple[Requests, Path]]:
    """A sandbox CRM watched for requests, a store not yet made, the clock at PINNED."""
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=20, seed=5) as sb:
        for name in (
            "MQLSYNC_HUBSPOT_HOST", "MQLSYNC_HUBSPOT_TOKEN", "MQLSYNC_SALESFORCE_INSTANCE_URL",
            "MQLSYNC_SALESFORCE_CLIENT_ID", "MQLSYNC_SALESFORCE_CLIENT_SECRET",
            "MQLSYNC_SALESFORCE_SESSION_ID", "MQLSYNC_CA_FILE", "MQLSYNC_DATABASE_URL",
            "MQLSYNC_BACKFILL_MAX_DAYS",
        ):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("MQLSYNC_FIXED_NOW", PINNED)
        store = tmp_path / "store.db"
        point_settings_at(sb, f"sqlite:///{store}")
        sb.admin.reset()
        requests = Requests(sb)
        sb.sandbox.on_request = requests
        try:
            yield requests, store
        finally:
            sb.sandbox.on_request = None
    runtime.reset()


@pytest.mark.parametrize(("start", "end", "max_days", "message"), REFUSALS)
def test_a_window_that_cannot_run_fails_at_once_in_one_line(
    crm: tuple[Requests, Path],
    monkeypatch: pytest.MonkeyPatch,
    start: date,
    end: date,
    max_days: str | None,
    message: str,
) -> None:
    from flows.sync import CrmName, backfill

    requests, store = crm
    if max_days is not None:
        monkeypatch.setenv("MQLSYNC_BACKFILL_MAX_DAYS", max_days)
        runtime.reset()
    state = backfill(crm=CrmName.hubspot, start=start, end=end, dry_run=False, return_state=True)
    assert state.is_failed()
    assert state.message == message
    assert requests.none(), requests.seen
    assert not store.exists(), "no store work before the window is checked"


def test_the_cli_refuses_the_same_window_the_same_way(crm: tuple[Requests, Path]) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    requests, store = crm
    result = CliRunner().invoke(
        app, ["backfill", "hubspot", "--start", "2026-03-10", "--end", "2026-03-01"]
    )
    assert result.exit_code == 1, result.output
    assert REFUSALS[0][3] in result.output
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert requests.none(), requests.seen
    assert not store.exists()
