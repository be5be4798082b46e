"""What a run leaves for people, read back through the Prefect API: a summary that states
the CRM, the window, whether it wrote or would write and what it counted, with the score
distribution and the funnel; a table of its new MQLs (who, score, grade, why, the task);
and a table of its failures with what to do. Checked against the sandbox CRM's own state.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flows import runtime
from flows.apply_report import ApplyReport, Failure, Scored, TaskCreated, assessed_mql
from flows.run_tables import distribution_lines, failure_table, reasons_text
from scoring.records import Contact, Crm, Reason
from tests.flows.sandbox_runs import sandbox_on_its_clock

HUBSPOT_MQL = "marketingqualifiedlead"
TASKS = "/crm/v3/objects/tasks"
KEYS = ("summary", "mqls", "failures")
SYNC_WINDOW = "- window: what changed since each stream's cursor: "


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: None) -> Iterator[Any]:
    """A sandbox CRM and an empty store; runs decide as of the sandbox's own clock."""
    with sandbox_on_its_clock(tmp_path, monkeypatch, contacts=300, seed=3) as sb:
        yield sb


def as_of(sb: Any) -> datetime:
    return datetime.fromisoformat(sb.admin.info()["as_of"].replace("Z", "+00:00"))


def backfill(start: date, end: date, dry_run: bool) -> tuple[Any, dict[str, Any]]:
    """Run the backfill; its final state and its artifacts by kind, read back from Prefect."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from flows.sync import CrmName
    from flows.sync import backfill as backfill_flow

    state = backfill_flow(
        crm=CrmName.hubspot, start=start, end=end, dry_run=dry_run, return_state=True
    )
    run_id: UUID = state.state_details.flow_run_id
    keys = [f"mqlsync-backfill-hubspot-{kind}" for kind in KEYS]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=keys),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
            )
        )
    by_kind = {a.key.removeprefix("mqlsync-backfill-hubspot-"): a for a in found if a.key}
    assert set(by_kind) == set(KEYS), sorted(by_kind)
    return state, by_kind


def table(artifact: Any) -> list[dict[str, Any]]:
    data = artifact.data
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else data
    return rows


def sandbox_contacts(sb: Any) -> dict[str, dict[str, Any]]:
    """Every HubSpot contact as the sandbox holds it: stage, name, email, company."""
    portal = sb.sandbox.portal
    return {
        str(c.id): {
            name: portal.contact_value(c, name)
            for name in ("lifecyclestage", "firstname", "lastname", "email", "company")
        }
        for c in portal.contacts.values()
    }


def tasks_by_contact(sb: Any) -> dict[str, list[str]]:
    tasks: dict[str, list[str]] = {}
    for task in sb.admin.hubspot_tasks():
        for link in task.get("associations", {}).get("contacts", {}).get("results", []):
            tasks.setdefault(str(link["id"]), []).append(str(task["id"]))
    return tasks


def distribution(summary: str) -> dict[int, tuple[int, int]]:
    """The score distribution's rows: band -> (contacts, MQLs)."""
    section = summary.split("## Score distribution", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (-?\d+) to -?\d+ \| (\d+) \| (\d+) \|", section, re.MULTILINE)
    return {int(band): (int(n), int(m)) for band, n, m in rows}


def count(summary: str, label: str) -> int:
    found = re.search(rf"^- {label}: ([\d,]+)", summary, re.MULTILINE)
    assert found is not None, (label, summary)
    return int(found[1].replace(",", ""))


def test_a_backfill_leaves_a_summary_its_mqls_and_the_distribution(sandbox: Any) -> None:
    sb = sandbox
    end = as_of(sb).date()
    start = end - timedelta(days=30)
    window = f"- window: {start} to {end}, UTC dates, both included"

    # Dry run: the plan, in "would" words, and nothing in the CRM.
    state, dry = backfill(start, end, dry_run=True)
    assert state.is_completed(), state.message
    planned = dry["summary"].data
    assert planned.startswith("# backfill HubSpot (dry run)")
    assert window in planned and "- CRM: HubSpot" in planned
    assert "would write" in planned and "wrote" not in planned
    assert sb.admin.hubspot_tasks() == []
    planned_mqls = {row["contact id"] for row in table(dry["mqls"])}
    assert planned_mqls and count(planned, "new MQLs") == len(planned_mqls)
    assert all(row["task"].startswith("would create (hubspot:") for row in table(dry["mqls"]))

    sb.admin.reset()  # the sandbox counts the applied run's requests from here
    state, done = backfill(start, end, dry_run=False)
    assert state.is_completed(), state.message
    summary = done["summary"].data
    # The run returns its summary: the command line prints the same text.
    assert state.result() == summary
    assert summary.startswith("# backfill HubSpot (applied)")
    assert window in summary and "- CRM: HubSpot" in summary
    assert "wrote" in summary and "would" not in summary

    # The MQL table: exactly the contacts the CRM now shows at MQL with a task.
    crm = sandbox_contacts(sb)
    tasks = tasks_by_contact(sb)
    rows = table(done["mqls"])
    ids = [row["contact id"] for row in rows]
    at_mql_with_task = {i for i, c in crm.items() if c["lifecyclestage"] == HUBSPOT_MQL} & set(
        tasks
    )
    assert ids and set(ids) == at_mql_with_task and len(ids) == len(set(ids))
    assert set(ids) == planned_mqls  # the dry run planned what the run did
    assert count(summary, "new MQLs") == len(ids) == count(summary, "handoff tasks")
    for row in rows:
        contact = crm[row["contact id"]]
        name = " ".join(p for p in (contact["firstname"], contact["lastname"]) if p)
        assert row["name"] == (name or contact["email"])
        assert row["email"] == (contact["email"] or "")
        assert row["company"] == (contact["company"] or "")
        assert tasks[row["contact id"]] == [row["task"]]
        assert row["grade"] and isinstance(row["score"], int)
        # The top reasons: rule ids with their points, evidence in words.
        assert re.match(r"^\w[\w.-]* \(\+\d", row["top reasons"]), row["top reasons"]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert "| name | email | company | score | grade | task |" in summary
    assert table(done["failures"]) == [{"failed to": "nothing failed in this run"}]

    # The distribution: every contact scored, in bands of 10, the MQLs among them.
    bands = distribution(summary)
    scored = count(summary, "contacts scored")
    assert scored > 0 and sum(n for n, _ in bands.values()) == scored
    assert all(band % 10 == 0 for band in bands)
    assert sorted(bands) == list(range(min(bands), max(bands) + 1, 10))
    assert sum(m for _, m in bands.values()) >= len(ids)
    assert bands == distribution(planned)  # the same scores, as of the same instant

    # The funnel: a table, this run's MQLs in both windows, none decided yet.
    funnel = re.findall(r"^\| last (30|90) days \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", summary,
                        re.MULTILINE)  # fmt: skip
    assert funnel == [(d, str(len(ids)), "0", "0", str(len(ids))) for d in ("30", "90")]

    # API calls: the connector's own count of this run's requests, as the CRM saw them.
    requests = sb.admin.stats()["requests"]
    seen = sum(n for endpoint, n in requests.items() if "/_sandbox" not in endpoint)
    assert count(summary, "API calls") == seen
    assert "daily use" in summary


def test_a_failed_write_is_in_the_failures_table_with_what_to_do(sandbox: Any) -> None:
    sb = sandbox
    end = as_of(sb).date()
    sb.admin.set_faults([{"kind": "503", "count": 1000, "path": TASKS}], seed=7)
    state, done = backfill(end - timedelta(days=30), end, dry_run=False)
    sb.admin.clear_faults()
    assert not state.is_completed()  # MQLs without a task: the run says so
    summary = done["summary"].data
    assert summary in (state.message or "")  # the failed run's text carries the summary
    rows = table(done["failures"])
    mqls = {row["contact id"] for row in table(done["mqls"])}
    assert rows and {row["contact id"] for row in rows} == mqls
    assert {row["failed to"] for row in rows} == {"create the sales task"}
    assert all("next sync" in row["what to do"] for row in rows)
    assert count(summary, "failures") == len(rows)
    assert f"## Failures ({len(rows)})" in summary and "mqlsync explain" in summary
    pending = table(done["mqls"])
    assert {row["task"] for row in pending} == {"pending: no task yet, the next sync creates it"}


# --- the tables' pieces, without a run ----------------------------------------------------


def test_the_distribution_has_every_band_between_the_lowest_and_the_highest() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    scored = [Scored(str(i), total, total >= 60, now) for i, total in
              enumerate([-3.0, 4.4, 9.6, 31.0, 64.5, 65.0, 99.4])]  # fmt: skip
    lines = distribution_lines(scored, dry_run=False)
    rows = [line.split(" | ")[:3] for line in lines[2:]]
    assert [r[0].lstrip("| ") for r in rows] == [f"{b} to {b + 9}" for b in range(-10, 100, 10)]
    assert [int(r[1]) for r in rows] == [1, 1, 1, 0, 1, 0, 0, 2, 0, 0, 1]
    assert lines[0] == "| score | contacts | MQLs | |"
    assert distribution_lines(scored, dry_run=True)[0] == "| score | contacts | would be MQLs | |"
    assert distribution_lines([], dry_run=False) == ["No contact scored in this run."]


def test_reasons_in_words_and_failures_with_a_remedy() -> None:
    from scoring.records import Activity, ActivityType

    contact = Contact(crm=Crm.HUBSPOT, crm_id="7", first_name="Ada", email="ada@example.com")
    demo = Activity(
        crm=Crm.HUBSPOT, crm_id="a1", contact_id="7", type=ActivityType.DEMO_REQUEST,
        occurred_at=datetime(2026, 10, 12, tzinfo=UTC), form="pricing page",
    )  # fmt: skip
    reasons = [
        Reason(rule="title_vp", points=15, evidence=["job_title=VP"]),
        Reason(rule="demo_request", points=30, evidence=["a1"]),
        Reason(rule="free_email", points=-10, evidence=["email=gmail"]),
    ]
    mql = assessed_mql(contact, None, [demo], total=72.4, grade="A", reasons=reasons)
    assert reasons_text(mql, 3) == (
        "demo_request (+30): 2026-10-12 demo request: pricing page · title_vp (+15): job_title=VP"
    )
    assert reasons_text(mql, 1).startswith("demo_request (+30)")

    rows = failure_table(
        [Failure("7", "update", "HTTP 503"), Failure("8", "stage", ""), Failure("9", "task", "x")],
        {"7": "Ada"},
    )
    assert [r["failed to"] for r in rows] == [
        "write the score fields", "move the lifecycle stage", "create the sales task",
    ]  # fmt: skip
    assert rows[0]["name"] == "Ada" and rows[0]["message"] == "HTTP 503"
    assert all(r["what to do"].startswith("nothing to do: ") for r in rows)
    assert all("next sync" in r["what to do"] for r in rows)


def test_a_report_merges_the_plans_scores_and_mql_rows() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    contact = Contact(crm=Crm.HUBSPOT, crm_id="7")
    row = assessed_mql(contact, None, [], total=70.0, grade="A")
    one = ApplyReport(scored=[Scored("7", 70.0, True, now)], mql_rows={"7": row})
    two = ApplyReport(
        scored=[Scored("8", 10.0, False, now)], tasks_created=[TaskCreated("7", "t1")]
    )
    one.merge(two)
    assert [s.contact_id for s in one.scored] == ["7", "8"]
    assert set(one.mql_rows) == {"7"} and one.tasks_created == [TaskCreated("7", "t1")]
    assert Counter(s.is_mql for s in one.scored) == Counter({True: 1, False: 1})


def latest_summary(flow: str, crm: str) -> str:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(f"mqlsync-{flow}-{crm}-summary")
    assert artifact is not None
    return str(artifact.data)


def test_a_sync_states_its_cursors_and_a_rescore_its_instant(sandbox: Any) -> None:
    from flows.sync import CrmName, rescore, sync
    from store.cursors import cursor_for

    sb = sandbox
    summary = sync(crm=CrmName.hubspot)
    assert isinstance(summary, str) and summary == latest_summary("sync", "hubspot")
    moved = cursor_for(runtime.store_engine(), "hubspot", "contacts")
    assert moved is not None
    # The first sync started from no cursor, and says so.
    assert f"{SYNC_WINDOW}contacts since the start (no cursor yet)" in summary

    # Nothing new since: the next sync says the cursor it starts from.
    summary = sync(crm=CrmName.hubspot, dry_run=True)
    assert isinstance(summary, str)
    assert f"{SYNC_WINDOW}contacts since {moved:%Y-%m-%d %H:%M:%S} UTC" in summary
    assert "(a dry run leaves the cursors where they are)" in summary

    # Salesforce's connector keeps no count it shows: the summary says so.
    summary = sync(crm=CrmName.salesforce, dry_run=True)
    assert isinstance(summary, str)
    assert f"{SYNC_WINDOW}contacts since the start (no cursor yet)" in summary
    assert "- API calls: not counted (the Salesforce connector does not say" in summary
    assert "- CRM: Salesforce" in summary

    summary = rescore(crm=CrmName.hubspot, dry_run=True)
    assert isinstance(summary, str)
    instant = as_of(sb).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"- window: every stored contact, scored as of {instant} (nothing pulled)" in summary
    assert "- contacts pulled: none" in summary and "would write" in summary
    scored = count(summary, "contacts scored")
    assert scored > 0 and sum(n for n, _ in distribution(summary).values()) == scored


def test_a_sync_window_from_the_cursors_it_started_from() -> None:
    from flows.report import sync_window
    from flows.tasks import PullResult

    at = datetime(2026, 10, 31, 23, 45, tzinfo=UTC)
    pulls = [PullResult("contacts", cursor=at + timedelta(minutes=9)), PullResult("deletions")]
    line = sync_window(pulls, False, {"contacts": at, "deletions": None})
    assert line == (
        "what changed since each stream's cursor: contacts since 2026-10-31 23:45:00 UTC, "
        "deletions since the start (no cursor yet) (each activity source from its own cursor)"
    )
