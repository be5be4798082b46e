"""`mqlsync explain` reads the score, the reasons, the written values, the handoff tasks
and the audit trail from the store, as text or as one JSON object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from flows.cli import app
from flows.explain import TaskLinks, explain_contact
from flows.settings import get_settings
from scoring.records import Contact, Crm, Reason, ScoreResult
from scoring.writes import HandoffTask, Priority
from store import handoffs, mirror, scores
from tests.fake_crm import MemoryCrm
from tests.store.test_pipeline import NOW, run, seed

NO_PORTAL = "no link: the settings give no HubSpot portal id"


@pytest.fixture
def store(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The `engine` store (SQLite, then PostgreSQL), as the one the command line opens."""
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("MQLSYNC_SALESFORCE_INSTANCE_URL", raising=False)
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


def flat(text: str) -> list[str]:
    """The lines of a text, each with its runs of spaces made one (table widths vary)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def explain(*args: str) -> str:
    result = CliRunner().invoke(app, ["explain", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_explain_by_email_and_by_id(store: Engine) -> None:
    seed(store)
    run(store, MemoryCrm())
    out = explain("1")
    assert "Dana (hubspot 1), VP Sales at Northwind" in out
    assert "grade A, MQL by saas-example@1" in out
    # Evidence described as the sales task describes it, oldest first.
    pricing = (
        "2026-10-29 page view: https://x.io/pricing; 2026-10-31 page view: https://x.io/pricing"
    )
    assert "pricing-twice-14d" in out and pricing in out
    assert "promoted_to_mql" in out and "create_task" in out
    assert "met the MQL criteria" in out
    assert explain("Dana@Northwind.io") == out


def test_explain_shows_the_written_values_and_the_task(store: Engine) -> None:
    seed(store)
    run(store, MemoryCrm())
    lines = flat(explain("1"))
    written = lines.index("last written to hubspot")
    assert lines[written + 1] == "field value"
    assert lines[written + 3 : written + 10] == [
        "score 89",
        "fit 45",
        "engagement 44",
        "grade A",
        "reasons pricing-twice-14d +25; company-50-plus +20; webinar +19",
        "model_version saas-example@1",
        "stage mql (written 2026-11-01 12:00:00)",
    ]
    tasks = lines.index("handoff tasks")
    assert lines[tasks + 1] == "key task when link"
    # No setting gives the HubSpot portal id a link needs: the task id, and why no link.
    assert lines[tasks + 3] == f"hubspot:1:mql:1 t1 2026-11-01 12:00:00 {NO_PORTAL}"
    # The sections come between the reasons and the history.
    assert written < tasks < lines.index("history")


def test_explain_says_when_a_write_failed_and_nothing_was_written(store: Engine) -> None:
    seed(store)
    crm = MemoryCrm()
    crm.fail_updates.add("2")
    run(store, crm)
    lines = flat(explain("2"))
    assert "nothing written to hubspot yet" in lines
    assert "a write failed: the next sync writes this contact again" in lines
    assert "handoff tasks" not in lines


def test_explain_json_has_the_same_content(store: Engine) -> None:
    seed(store)
    run(store, MemoryCrm())
    found = json.loads(explain("dana@northwind.io", "--json"))
    assert list(found) == ["contact", "score", "reasons", "written", "tasks", "history"]
    assert found["contact"]["crm"] == "hubspot" and found["contact"]["crm_id"] == "1"
    assert found["contact"]["display_name"] == "Dana"
    assert found["contact"]["company"] == "Northwind"
    assert found["score"] == {
        "total": pytest.approx(89.1),
        "fit": 45.0,
        "engagement": pytest.approx(44.1),
        "grade": "A",
        "is_mql": True,
        "model_version": "saas-example@1",
        "as_of": NOW.isoformat(),
    }
    pricing = next(r for r in found["reasons"] if r["rule"] == "pricing-twice-14d")
    assert pricing == {
        "rule": "pricing-twice-14d",
        "points": 25.0,
        "evidence": ["a2", "a1"],
        "described": "2026-10-29 page view: https://x.io/pricing; "
        "2026-10-31 page view: https://x.io/pricing",
    }
    assert found["written"] == {
        "values": {
            "score": 89,
            "fit": 45,
            "engagement": 44,
            "grade": "A",
            "reasons": "pricing-twice-14d +25; company-50-plus +20; webinar +19",
            "model_version": "saas-example@1",
        },
        "stage": "mql",
        "stage_written_at": NOW.isoformat(),
        "recycled_at": None,
        "stage_intent": None,
        "needs_write": False,
    }
    assert found["tasks"] == [
        {
            "key": "hubspot:1:mql:1",
            "task_id": "t1",
            "claimed_at": NOW.isoformat(),
            "claimed_by": "worker-1",
            "recorded_at": NOW.isoformat(),
            "link": None,
            "link_missing": NO_PORTAL,
        }
    ]
    assert [(e["kind"], e["action"], e["outcome"]) for e in found["history"]] == [
        ("decision", "promoted_to_mql", None),
        ("write", "update_properties", "ok"),
        ("write", "change_stage", "ok"),
        ("write", "create_task", "ok"),
    ]
    assert all(e["flow_run_id"] == "r" and e["at"] == NOW.isoformat() for e in found["history"])


def test_a_recycled_contact_shows_when(store: Engine) -> None:
    seed(store)
    crm = MemoryCrm()
    run(store, crm)
    seed(store, lead_status="UNQUALIFIED", stage="mql")
    later = NOW + timedelta(days=1)
    run(store, crm, later)
    lines = flat(explain("1"))
    assert "stage lead (written 2026-11-02 12:00:00)" in lines
    assert "recycled 2026-11-02 12:00:00" in lines
    written = json.loads(explain("1", "--json"))["written"]
    assert written["stage"] == "lead" and written["recycled_at"] == later.isoformat()


def salesforce_mql(engine: Engine) -> None:
    """A Salesforce lead handed off once (task 00T5e000001), its second handoff claimed."""
    mirror.upsert_contacts(
        engine,
        [Contact(crm="salesforce", crm_id="00Q5e01", first_name="Ada", company="Acme")],
        NOW,
    )
    result = ScoreResult(
        crm=Crm.SALESFORCE, crm_id="00Q5e01", fit=40, engagement=30, total=70, grade="B",
        is_mql=True, reasons=[Reason(rule="demo-request", points=30, evidence=["x1"])],
        model_name="saas-example", model_version="1", as_of=NOW,
    )  # fmt: skip
    scores.save_scores(engine, [result], "r1")
    for seen in (0, 1):
        task = HandoffTask(
            crm=Crm.SALESFORCE, key=f"salesforce:00Q5e01:mql:{seen + 1}", contact_id="00Q5e01",
            owner_id=None, subject="MQL", body="", due_at=NOW, priority=Priority.HIGH,
        )  # fmt: skip
        at = NOW + timedelta(hours=seen)
        assert handoffs.claim_transition(engine, task, seen, f"worker-{seen + 1}", at)
    handoffs.record_task(engine, "salesforce:00Q5e01:mql:1", "00T5e000001", NOW)


def test_salesforce_tasks_link_to_the_org_when_its_url_is_set(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    salesforce_mql(store)
    lines = flat(explain("00Q5e01"))
    unset = "no link: MQLSYNC_SALESFORCE_INSTANCE_URL is not set"
    assert f"salesforce:00Q5e01:mql:1 00T5e000001 2026-11-01 12:00:00 {unset}" in lines
    monkeypatch.setenv("MQLSYNC_SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com/")
    get_settings.cache_clear()
    lines = flat(explain("00Q5e01"))
    tasks = lines.index("handoff tasks")
    assert lines[tasks + 3 : tasks + 5] == [
        "salesforce:00Q5e01:mql:1 00T5e000001 2026-11-01 12:00:00 "
        "https://acme.my.salesforce.com/00T5e000001",
        # A claim with no task yet: when it was claimed, and by whom.
        "salesforce:00Q5e01:mql:2 - 2026-11-01 13:00:00 claimed by worker-2, no task yet",
    ]
    assert "nothing written to salesforce yet" in lines
    tasks_json = json.loads(explain("00Q5e01", "--json"))["tasks"]
    assert [(t["task_id"], t["link"], t["link_missing"]) for t in tasks_json] == [
        ("00T5e000001", "https://acme.my.salesforce.com/00T5e000001", None),
        (None, None, None),
    ]


def test_hubspot_tasks_link_to_the_portal_when_its_id_is_known(engine: Engine) -> None:
    seed(engine)
    run(engine, MemoryCrm())
    text = explain_contact(engine, "1", TaskLinks(hubspot_portal_id="4711"))
    assert text is not None
    assert "https://app.hubspot.com/contacts/4711/record/0-27/t1" in text
    assert NO_PORTAL not in text


def test_explain_unknown_contact(store: Engine) -> None:
    result = CliRunner().invoke(app, ["explain", "ghost@example.com"])
    assert result.exit_code == 1 and "no contact 'ghost@example.com'" in result.stderr
