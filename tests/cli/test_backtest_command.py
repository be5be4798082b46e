"""`mqlsync backtest`: models judged against outcomes from small files.

The history, with the seeds' point model (ebook 10, webinar 20, demo 30; MQL at 50) and a
second model that prizes demo requests (demo 50, webinar 5; MQL at 50), at the cut
2026-03-01:

    id  activities up to the cut      points  demo-first  outcome
    c1  demo, webinar                 50 MQL  55 MQL      converted 2026-03-11 (10 days)
    c2  demo                          30      50 MQL      converted 2026-04-01 (31 days)
    c3  webinar (a demo after it)     20      5           no
    c4  ebook                         10      0           no (its row is bad: no outcome)
    c5  -                             0       0           no
    c6  demo, webinar, ebook          60 MQL  55 MQL      no (its row is bad: no outcome)
    c7  created 2026-04-01: not judged at the cut

points: converters score 50 and 30 against 60, 20, 10, 0: (3 + 3) / 8 = 0.75.
demo-first: 55 against 55, 5, 0, 0 -> 3.5; 50 -> 3: 6.5 / 8 = 0.8125.
Baseline (activity count): converters 2 and 1 against 3, 1, 1, 0: (3 + 1 + 1) / 8 = 0.625.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.history import Outcome, OutcomesFileError, load_outcomes

POINTS = Path("tests/scoring/models/points.yaml")
CUT = "2026-03-01T00:00:00Z"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()

DEMO_FIRST = """\
name: demo-first
version: 2
engagement:
  rules:
    - id: demo
      activity: demo_request
      points: 50
    - id: webinar
      activity: webinar_attended
      points: 5
qualify:
  threshold: 50
"""

OUTCOMES = [
    "crm_id,converted,converted_at",
    "c1,1,2026-03-11",
    "c2,true,2026-04-01T00:00:00Z",
    "c3,0,",
    "c4,maybe,",
    "c5,No,",
    "ghost,1,2026-03-02",
    "c1,0,",
    "c6,1,not-a-date",
    ",1,",
]


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


def history(tmp_path: Path, outcomes: list[str] = OUTCOMES) -> list[str]:
    contacts = write(
        tmp_path / "contacts.jsonl",
        [
            {"crm_id": "c1", "properties": {"lead_source": "Web"}},
            {"crm_id": "c2", "properties": {"lead_source": "Web"}},
            {"crm_id": "c3", "properties": {"lead_source": "Event"}},
            {"crm_id": "c4"},
            {"crm_id": "c5", "created_at": "2026-01-05T00:00:00Z"},
            {"crm_id": "c6"},
            {"crm_id": "c7", "created_at": "2026-04-01T00:00:00Z"},
        ],
    )
    kinds = {"ebook": "content_download", "webinar": "webinar_attended", "demo": "demo_request"}
    done = [
        ("c1", "demo", "2026-02-10"),
        ("c1", "webinar", "2026-02-12"),
        ("c2", "demo", "2026-02-20"),
        ("c3", "webinar", "2026-02-01"),
        ("c3", "demo", "2026-03-05"),  # after the cut
        ("c4", "ebook", "2026-01-15"),
        ("c6", "demo", "2026-02-01"),
        ("c6", "webinar", "2026-02-02"),
        ("c6", "ebook", "2026-02-03"),
    ]
    activities = write(
        tmp_path / "activities.jsonl",
        [
            {
                "crm_id": f"a{n}",
                "contact_id": who,
                "type": kinds[what],
                "occurred_at": f"{day}T09:00:00Z",
                **({"asset_type": "ebook"} if what == "ebook" else {}),
            }
            for n, (who, what, day) in enumerate(done)
        ],
    )
    outcome_file = write(tmp_path / "outcomes.csv", outcomes)
    return [
        "--contacts",
        str(contacts),
        "--activities",
        str(activities),
        "--outcomes",
        str(outcome_file),
    ]


def backtest(*args: str) -> Any:
    return runner.invoke(app, ["backtest", *args])


def two_models(tmp_path: Path) -> list[str]:
    second = tmp_path / "demo-first.yaml"
    second.write_text(DEMO_FIRST)
    return ["--model", str(POINTS), "--model", str(second)]


def test_prints_a_table_of_the_figures(tmp_path: Path) -> None:
    result = backtest("--model", str(POINTS), *history(tmp_path), "--as-of", CUT)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "7 contacts at 2026-03-01, horizon 90 days: 6 judged, 2 converted" in out
    assert "baseline (count of activities up to the cut): AUC 0.625" in out
    rows = {line.split("  ")[0]: line.split()[-1] for line in out.splitlines() if "  " in line}
    assert rows["AUC total"] == "0.750"
    assert rows["MQL rate"] == "33.3%"  # c1, c6 of 6
    assert rows["MQL -> SQL conversion"] == "50.0%"  # c1 of c1, c6
    assert rows["recall"] == "50.0%"  # c1 of c1, c2
    assert rows["median lead time (days)"] == "10.0"


def test_json_metrics(tmp_path: Path) -> None:
    result = backtest("--model", str(POINTS), *history(tmp_path), "--as-of", CUT, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dataset"]["rows"] == 6 and data["dataset"]["converters"] == 2
    assert data["dataset"]["baseline"]["auc"] == 0.625
    (model,) = data["models"]
    assert model["label"] == "points@1"
    pooled = model["pooled"]
    assert pooled["auc_total"] == 0.75
    assert pooled["mql"]["mqls"] == 2 and pooled["mql"]["median_lead_days"] == 10.0
    sources = {g["group"]: g["figures"]["contacts"] for g in pooled["by_source"]}
    assert sources == {"Web": 2, "Event": 1, "unknown": 3}
    # Sweep at 60, 50, 30, 20, 10, 0: conversions 0, 1/2, 2/3, 2/4, 2/5, 2/6; none is
    # in 15%-30%, 2/6 at 0 is the closest.
    assert [p["threshold"] for p in pooled["sweep"]] == [60, 50, 30, 20, 10, 0]
    assert pooled["recommended"]["threshold"] == 0 and not pooled["recommended"]["in_band"]
    assert [c["cut"] for c in model["by_cut"]] == ["2026-03-01T00:00:00+00:00"]
    assert model["by_cut"][0]["auc_total"] == 0.75


def test_two_models_side_by_side(tmp_path: Path) -> None:
    args = [*two_models(tmp_path), *history(tmp_path), "--as-of", CUT]
    table = backtest(*args)
    assert table.exit_code == 0, table.output
    header = next(line for line in table.stdout.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "points@1", "demo-first@2"]
    auc_line = next(line for line in table.stdout.splitlines() if line.startswith("AUC total"))
    assert auc_line.split()[-2:] == ["0.750", "0.812"]
    data = json.loads(backtest(*args, "--json").stdout)
    figures = {m["label"]: m["pooled"] for m in data["models"]}
    assert figures["demo-first@2"]["auc_total"] == 0.8125
    # demo-first: MQLs c1, c2, c6; converted c1, c2: conversion 2/3, recall 1.
    assert figures["demo-first@2"]["mql"]["conversion"] == 2 / 3
    assert figures["demo-first@2"]["mql"]["recall"] == 1.0
    assert figures["points@1"]["mql"]["recall"] == 0.5


def test_out_writes_report_metrics_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = backtest(*two_models(tmp_path), *history(tmp_path), "--as-of", CUT, "--out", str(out))
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "| AUC total | 0.750 | 0.812 |" in report
    assert "### By grade" in report and "### Lift by decile" in report
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["label"] for m in metrics["models"]] == ["points@1", "demo-first@2"]
    for chart in ("lift.png", "threshold.png"):
        assert (out / chart).read_bytes().startswith(PNG_MAGIC)


def test_bad_outcome_rows_are_reported_and_the_rest_used(tmp_path: Path) -> None:
    args = history(tmp_path)
    outcomes = args[args.index("--outcomes") + 1]
    result = backtest("--model", str(POINTS), *args, "--as-of", CUT, "--json")
    assert result.exit_code == 0, result.output
    for line, problem in [
        (5, "converted 'maybe' is not 1/0, true/false, yes/no"),
        (7, "contact 'ghost' is not in"),
        (8, "contact 'c1' appears again (first on line 2)"),
        (9, "converted_at: not an ISO 8601 date or instant: 'not-a-date'"),
        (10, "empty crm_id"),
    ]:
        assert f"{outcomes}:{line}: " in result.stderr
        assert problem in result.stderr
    assert "5 line(s) or row(s) skipped" in result.stderr
    # The good rows still count: c1 and c2 converted, and the first c1 row is the one kept.
    assert json.loads(result.stdout)["dataset"]["converters"] == 2


def test_cuts_leave_out_the_converted_and_the_not_yet_created(tmp_path: Path) -> None:
    args = history(tmp_path)
    result = backtest(
        "--model",
        str(POINTS),
        *args,
        "--start",
        "2026-02-01",
        "--end",
        "2026-03-31",
        "--every",
        "4w",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_cut = data["models"][0]["by_cut"]
    assert [c["cut"][:10] for c in by_cut] == ["2026-02-01", "2026-03-01", "2026-03-29"]
    # c7 is never judged (created 2026-04-01); at 03-29 c1 had converted already.
    assert [c["rows"] for c in by_cut] == [6, 6, 5]
    assert [c["converters"] for c in by_cut] == [2, 2, 1]
    assert data["dataset"]["rows"] == 17


def test_the_horizon_bounds_a_conversion(tmp_path: Path) -> None:
    args = history(tmp_path)
    result = backtest(
        "--model", str(POINTS), *args, "--as-of", CUT, "--horizon-days", "20", "--json"
    )
    assert result.exit_code == 0, result.output
    # c2 converted 31 days after the cut: not within 20 days.
    assert json.loads(result.stdout)["dataset"]["converters"] == 1


def test_no_converters_cannot_be_judged(tmp_path: Path) -> None:
    args = history(tmp_path, ["crm_id,converted,converted_at", "c1,0,", "c2,0,"])
    result = backtest("--model", str(POINTS), *args, "--as-of", CUT)
    assert result.exit_code == 1
    assert "cannot judge: no converters among 6 contacts" in result.stderr
    assert result.stdout == ""


def test_undated_conversions_with_one_cut_are_taken_as_given(tmp_path: Path) -> None:
    args = history(tmp_path, ["crm_id,converted,converted_at", "c3,yes,", "c5,1,"])
    result = backtest("--model", str(POINTS), *args, "--as-of", CUT, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dataset"]["converters"] == 2
    # Converters c3 (20) and c5 (0) against 60, 50, 30, 10: only 20 beats 10 -> 1 / 8.
    assert data["models"][0]["pooled"]["auc_total"] == 1 / 8
    # With several cuts they cannot be placed in time, and are left out with a note.
    several = backtest("--model", str(POINTS), *args, "--cuts", "2026-02-01,2026-03-01")
    assert several.exit_code == 1
    assert "note: 2 converted contact(s) without converted_at" in several.stderr
    assert "cannot judge: no converters" in several.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    args = ["--model", str(POINTS), *history(tmp_path)]
    both = backtest(*args, "--as-of", CUT, "--start", "2026-01-01", "--end", "2026-02-01")
    assert both.exit_code == 2 and "exactly one of --as-of" in both.stderr
    neither = backtest(*args)
    assert neither.exit_code == 2
    band = backtest(*args, "--as-of", CUT, "--band", "0.3,0.1")
    assert band.exit_code == 2 and "--band '0.3,0.1'" in band.stderr
    every = backtest(*args, "--start", "2026-01-01", "--end", "2026-02-01", "--every", "soon")
    assert every.exit_code == 2 and "30d or 4w" in every.stderr
    headerless = tmp_path / "bad.csv"
    headerless.write_text("id,won\nc1,1\n")
    bad = [*args[: args.index("--outcomes")], "--outcomes", str(headerless)]
    header = backtest(*bad, "--as-of", CUT)
    assert header.exit_code == 2 and f"{headerless}:1: the header is" in header.stderr
    model = tmp_path / "broken.yaml"
    model.write_text("name: x\nversion: 1\nfit:\n  rules:\n    - id: a\n      pints: 3\n")
    invalid = backtest("--model", str(model), *history(tmp_path), "--as-of", CUT)
    assert invalid.exit_code == 2 and str(model) in invalid.stderr


def test_outcome_rows_read_as_documented(tmp_path: Path) -> None:
    path = write(
        tmp_path / "outcomes.csv",
        [
            "crm_id,converted,converted_at",
            "a,TRUE,2026-03-11",
            "b,Yes,2026-03-11T08:30:00",
            "c,1,2026-03-11T08:30:00+02:00",
            "d,FALSE,",
            "e,0,2026-03-11",
            "f,1",
        ],
    )
    outcomes, problems = load_outcomes(path)
    assert outcomes["a"] == Outcome("a", True, datetime(2026, 3, 11, tzinfo=UTC))
    assert outcomes["b"].converted_at == datetime(2026, 3, 11, 8, 30, tzinfo=UTC)
    assert outcomes["c"].converted_at == datetime(2026, 3, 11, 6, 30, tzinfo=UTC)
    assert outcomes["d"] == Outcome("d", False, None)
    assert outcomes["f"] == Outcome("f", True, None)
    assert "e" not in outcomes
    assert problems == [f"{path}:6: contact 'e': converted_at given but converted is '0'"]


def test_an_outcomes_file_without_its_header_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "outcomes.csv", ["c1,1,2026-03-11"])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:1: the header is"):
        load_outcomes(path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(OutcomesFileError, match="empty; expected the header"):
        load_outcomes(empty)
