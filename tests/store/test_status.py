"""`mqlsync status CRM`: runs, cursors, claims and failing writes, from the store alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from flows import pipeline
from flows.cli import app
from flows.settings import get_settings
from scoring.records import Crm
from store import audit, cursors, handoffs, scores
from store.audit import AuditEvent, AuditKind
from tests.fake_crm import MemoryCrm
from tests.store.test_pipeline import MODEL, NOW, seed, status_key

LATER = NOW + timedelta(hours=1)  # the pinned clock `status` reads ages against
QUOTA = (
    "quota used today: not recorded (the store keeps no count of CRM requests; "
    "`mqlsync doctor hubspot` asks the CRM for today's use)"
)


@pytest.fixture
def store(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The `engine` store (SQLite, then PostgreSQL) as the command line opens it, at LATER."""
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MQLSYNC_FIXED_NOW", LATER.isoformat())
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


def flat(text: str) -> list[str]:
    """The lines of a text, each with its runs of spaces made one (table widths vary)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def status(*args: str) -> str:
    result = CliRunner().invoke(app, ["status", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def section(lines: list[str], title: str) -> list[str]:
    """The rows of a section's table (after its title, header and rule), up to a blank line."""
    start = lines.index(title) + 3
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def sync(engine: Engine, crm: MemoryCrm, now: datetime, run_id: str, worker: str) -> None:
    decided = pipeline.score_and_plan(
        engine, MODEL, Crm.HUBSPOT, ["1", "2"], status_key, now, run_id
    )
    pipeline.apply_plans(engine, crm, decided, now, run_id, worker)


def test_an_empty_store(store: Engine) -> None:
    lines = flat(status("hubspot"))
    assert lines == [
        "hubspot as of 2026-11-01 13:00:00 UTC, from the store (no CRM request)",
        "",
        "last runs: no run has recorded anything yet",
        "",
        "cursors: none: no pull has finished yet",
        "",
        "claims in progress: none",
        "",
        "contacts whose writes keep failing (the next sync retries them): none",
        "",
        QUOTA,
    ]
    report = json.loads(status("hubspot", "--json"))
    assert report == {
        "crm": "hubspot",
        "now": LATER.isoformat(),
        "runs": [],
        "cursors": [],
        "claims": [],
        "failing_writes": [],
        "quota_today": {
            "recorded": False,
            "used": None,
            "note": "the store keeps no count of CRM requests; `mqlsync doctor hubspot` asks "
            "the CRM for today's use",
        },
    }


def test_a_dead_run_and_a_write_that_keeps_failing(store: Engine) -> None:
    seed(store)
    cursors.advance_cursor(store, "hubspot", "contacts", NOW - timedelta(minutes=20), NOW)
    cursors.advance_cursor(store, "hubspot", "activities:web", NOW - timedelta(hours=3), NOW)
    crm = MemoryCrm()
    crm.fail_updates.add("2")
    crm.die = "before_create"  # run-a dies holding contact 1's handoff claim
    with pytest.raises(SystemExit):
        sync(store, crm, NOW, "run-a", "worker-a")
    crm.die = None
    sync(store, crm, NOW + timedelta(minutes=15), "run-b", "worker-b")

    lines = flat(status("hubspot"))
    assert lines[0] == "hubspot as of 2026-11-01 13:00:00 UTC, from the store (no CRM request)"
    runs = section(lines, "last runs")
    assert [row.split()[0] for row in runs] == ["run-b", "run-a"]  # newest first
    assert runs[0].startswith("run-b 2026-11-01 12:15:00 2026-11-01 12:15:00 ")
    assert runs[0].endswith(" 1")  # run-b: contact 2's update failed once more
    assert section(lines, "cursors") == [
        "activities:web 2026-11-01 09:00:00 4h 00m 1h 00m ago",
        "contacts 2026-11-01 11:40:00 1h 20m 1h 00m ago",
    ]
    assert section(lines, "claims in progress") == [
        "handoff 1 hubspot:1:mql:1 worker-a 2026-11-01 12:00:00 1h 00m"
    ]
    title = "contacts whose writes keep failing (the next sync retries them)"
    assert section(lines, title) == ["2 2 2026-11-01 12:15:00 update_properties refused"]
    assert lines[-1] == QUOTA

    report = json.loads(status("hubspot", "--json"))
    assert [r["flow_run_id"] for r in report["runs"]] == ["run-b", "run-a"]
    assert report["runs"][0]["failures"] == 1
    assert report["runs"][0]["first_at"] == (NOW + timedelta(minutes=15)).isoformat()
    assert report["cursors"] == [
        {
            "object": "activities:web",
            "value": (NOW - timedelta(hours=3)).isoformat(),
            "age_s": 4 * 3600.0,
            "updated_at": NOW.isoformat(),
            "updated_age_s": 3600.0,
        },
        {
            "object": "contacts",
            "value": (NOW - timedelta(minutes=20)).isoformat(),
            "age_s": 80 * 60.0,
            "updated_at": NOW.isoformat(),
            "updated_age_s": 3600.0,
        },
    ]
    assert report["claims"] == [
        {
            "kind": "handoff",
            "contact_id": "1",
            "key": "hubspot:1:mql:1",
            "owner": "worker-a",
            "since": NOW.isoformat(),
            "age_s": 3600.0,
        }
    ]
    assert report["failing_writes"] == [
        {
            "contact_id": "2",
            "failures": 2,
            "last_at": (NOW + timedelta(minutes=15)).isoformat(),
            "last_action": "update_properties",
            "last_outcome": "failed",
            "last_message": "refused",
        }
    ]
    assert report["quota_today"]["recorded"] is False


def test_runs_are_counted_per_crm_newest_first(store: Engine) -> None:
    def event(
        kind: AuditKind, action: str, outcome: str | None, crm: str = "hubspot"
    ) -> AuditEvent:
        return AuditEvent(crm, "7", kind, action, outcome)

    first, second = NOW - timedelta(hours=2), NOW - timedelta(minutes=30)
    audit.record(store, [event(AuditKind.DECISION, "promoted_to_mql", None)], "old", first)
    audit.record(
        store,
        [
            event(AuditKind.WRITE, "update_properties", "ok"),
            event(AuditKind.WRITE, "change_stage", "failed"),
        ],
        "old",
        first + timedelta(minutes=3),
    )
    audit.record(
        store,
        [
            event(AuditKind.DECISION, "recycled", None),
            event(AuditKind.WRITE, "update_properties", "unconfirmed"),
            event(AuditKind.RUN, "score_and_apply", "failed"),
        ],
        "new",
        second,
    )
    audit.record(store, [event(AuditKind.DECISION, "x", None, crm="salesforce")], "sf", LATER)
    assert section(flat(status("hubspot")), "last runs") == [
        "new 2026-11-01 11:30:00 2026-11-01 11:30:00 1 1 1",
        "old 2026-11-01 10:00:00 2026-11-01 10:03:00 1 2 1",
    ]
    runs = json.loads(status("hubspot", "--json", "--runs", "1"))["runs"]
    assert runs == [
        {
            "flow_run_id": "new",
            "first_at": second.isoformat(),
            "last_at": second.isoformat(),
            "decisions": 1,
            "writes": 1,
            "failures": 1,
        }
    ]
    assert [r["flow_run_id"] for r in json.loads(status("salesforce", "--json"))["runs"]] == ["sf"]


def test_write_claims_and_a_flagged_contact_without_a_failed_write(store: Engine) -> None:
    seed(store)
    sync(store, MemoryCrm(), NOW, "run-a", "worker-a")
    # A run has held contact 2's write claim for 40 minutes.
    scores.claim_writes(store, "hubspot", ["2"], "worker-z", LATER - timedelta(minutes=40), NOW)
    scores.mark_needs_write(store, "hubspot", {"1"}, set())  # flagged; the audit has no failure
    lines = flat(status("hubspot"))
    assert section(lines, "claims in progress") == ["write 2 - worker-z 2026-11-01 12:20:00 40m"]
    title = "contacts whose writes keep failing (the next sync retries them)"
    assert section(lines, title) == ["1 0 - - (no failed write in the audit log)"]
    claims = json.loads(status("hubspot", "--json"))["claims"]
    assert claims == [
        {
            "kind": "write",
            "contact_id": "2",
            "key": None,
            "owner": "worker-z",
            "since": (LATER - timedelta(minutes=40)).isoformat(),
            "age_s": 2400.0,
        }
    ]


def test_a_claim_given_back_has_no_owner(store: Engine) -> None:
    seed(store)
    crm = MemoryCrm()
    crm.die = "before_create"
    with pytest.raises(SystemExit):
        sync(store, crm, NOW, "run-a", "worker-a")
    handoffs.open_claims(store, ["hubspot:1:mql:1"])  # any run may finish it now
    lines = flat(status("hubspot"))
    assert section(lines, "claims in progress") == [
        "handoff 1 hubspot:1:mql:1 (given back) 2026-11-01 12:00:00 1h 00m"
    ]
    assert json.loads(status("hubspot", "--json"))["claims"][0]["owner"] is None


def test_an_unknown_crm_is_a_usage_error(store: Engine) -> None:
    result = CliRunner().invoke(app, ["status", "pipedrive"])
    assert result.exit_code == 2 and "expected hubspot or salesforce" in result.output
