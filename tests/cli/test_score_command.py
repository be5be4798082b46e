"""`mqlsync score`: JSON lines out, bad lines reported by number and skipped."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import EXIT_SKIPPED_LINES, app

MODEL = Path("scoring/models/example.yaml")
AS_OF = "2026-11-01T12:00:00Z"
runner = CliRunner()


def write(tmp_path: Path, name: str, lines: list[object]) -> Path:
    path = tmp_path / name
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


def contacts(tmp_path: Path, extra: list[object] | None = None) -> Path:
    return write(
        tmp_path,
        "contacts.jsonl",
        [
            {"crm_id": "1", "company_size": 200, "job_title": "CTO", "industry": "saas"},
            {"crm_id": "2", "company_size": 10, "properties": {"seats": 3}},
            *(extra or []),
        ],
    )


def activities(tmp_path: Path, extra: list[object] | None = None) -> Path:
    pricing = {"contact_id": "1", "type": "page_view", "url": "https://x.io/pricing"}
    return write(
        tmp_path,
        "activities.jsonl",
        [
            {**pricing, "crm_id": "p1", "occurred_at": "2026-10-30T10:00:00Z"},
            {**pricing, "crm_id": "p2", "occurred_at": "2026-10-31T10:00:00Z"},
            {
                "crm_id": "w1",
                "contact_id": "1",
                "type": "webinar_attended",
                "occurred_at": "2026-10-31T17:00:00Z",
                "campaign": "Q4",
            },
            *(extra or []),
        ],
    )


def run(*args: str):
    return runner.invoke(app, ["score", "--model", str(MODEL), *args])


def test_one_json_object_per_contact(tmp_path: Path) -> None:
    result = run(
        "--contacts",
        str(contacts(tmp_path)),
        "--activities",
        str(activities(tmp_path)),
        "--as-of",
        AS_OF,
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["crm_id"] for line in lines] == ["1", "2"]
    first = lines[0]
    assert set(first) >= {"crm_id", "fit", "engagement", "total", "grade", "is_mql", "reasons"}
    assert first["is_mql"] is True and first["grade"] == "A"
    assert {"rule": "pricing-twice-14d", "points": 25.0, "evidence": ["p1", "p2"]} in first[
        "reasons"
    ]
    assert lines[1]["total"] == 0 and lines[1]["is_mql"] is False


def test_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    bad_contacts = contacts(tmp_path, ["{not json", {"crm_id": "", "company_size": 5}])
    bad_activities = activities(
        tmp_path,
        [{"crm_id": "x", "contact_id": "2", "type": "page_view", "occurred_at": "yesterday"}],
    )
    result = run(
        "--contacts", str(bad_contacts), "--activities", str(bad_activities), "--as-of", AS_OF
    )
    assert result.exit_code == EXIT_SKIPPED_LINES
    assert [json.loads(line)["crm_id"] for line in result.stdout.splitlines()] == ["1", "2"]
    assert f"{bad_contacts}:3: not JSON" in result.stderr
    assert f"{bad_contacts}:4: record : crm_id" in result.stderr
    assert f"{bad_activities}:4: record x: occurred_at" in result.stderr
    assert "3 line(s) skipped" in result.stderr


def test_unknown_activity_type_is_kept_as_other(tmp_path: Path) -> None:
    from flows.records_io import activity_payload

    payload = activity_payload({"type": "trade_show", "booth": "B12", "url": "/x"})
    assert payload["type"] == "other" and payload["raw_type"] == "trade_show"
    assert payload["attributes"] == {"booth": "B12"} and payload["url"] == "/x"


def test_invalid_model_names_file_and_line(tmp_path: Path) -> None:
    model = tmp_path / "bad.yaml"
    model.write_text(MODEL.read_text().replace("points: 20\n", "points: 20\n      pints: 3\n", 1))
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(model),
            "--contacts",
            str(contacts(tmp_path)),
            "--activities",
            str(activities(tmp_path)),
        ],
    )
    assert result.exit_code == 1
    line = model.read_text().splitlines().index("      pints: 3") + 1
    assert f"{model}:{line}: fit.rules[0].pints: unknown key" in result.stderr
    assert result.stdout == ""


def test_explain_prints_a_readable_table(tmp_path: Path) -> None:
    result = run(
        "--contacts",
        str(contacts(tmp_path)),
        "--activities",
        str(activities(tmp_path)),
        "--as-of",
        AS_OF,
        "--explain",
        "1",
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("1: total ") and "grade A, MQL by saas-example@1" in out
    assert "pricing-twice-14d" in out and "2026-10-30 page view: https://x.io/pricing" in out
    assert "2026-10-31 webinar attended: Q4" in out


def test_explain_unknown_contact(tmp_path: Path) -> None:
    result = run(
        "--contacts",
        str(contacts(tmp_path)),
        "--activities",
        str(activities(tmp_path)),
        "--explain",
        "nobody",
    )
    assert result.exit_code == 1 and "no contact with id 'nobody'" in result.stderr


def test_as_of_defaults_to_now_and_ignores_future(tmp_path: Path) -> None:
    future = {
        "crm_id": "f",
        "contact_id": "2",
        "type": "demo_request",
        "occurred_at": "2999-01-01T00:00:00Z",
    }
    result = run(
        "--contacts", str(contacts(tmp_path)), "--activities", str(activities(tmp_path, [future]))
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout.splitlines()[1])["engagement"] == 0
