"""End to end: a Prefect server, two process workers, deployments from prefect.yaml,
backfill through `run_deployment` as the UI's custom run does, the sandbox CRM behind it;
the run forms the server holds, and a backfill window refused before any CRM request.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import select

from flows.settings import DEFAULT_BACKFILL_MAX_DAYS
from sandbox.testing import running_sandbox
from store.db import make_engine, migrate
from store.tables import HandoffRow, ScoreHistoryRow, ScoreRow
from tests.databases import database_url, postgres_available
from tests.e2e.cluster import BIN, prefect_cluster
from tests.flows.test_flow_parameters import deployments, form_problems

pytestmark = pytest.mark.slow

CONTACTS = 300
SANDBOX_PER_10S = 200  # the sandbox's own limit: 20 requests/s
SHARED_RATE = 18  # what every worker together may send (mqlsync-hubspot-api)


def wait_for(predicate, timeout: float, what: str, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_deployments_on_two_workers(tmp_path: Path) -> None:
    with (
        running_sandbox(
            contacts=CONTACTS, seed=11, hubspot_per_10s=SANDBOX_PER_10S, hubspot_search_per_s=5
        ) as sb,
        database_url(store_kind(), tmp_path) as store_url,
    ):
        env = {
            "MQLSYNC_HUBSPOT_HOST": sb.base_url,
            "MQLSYNC_HUBSPOT_TOKEN": sb.hubspot_token,
            "MQLSYNC_SALESFORCE_INSTANCE_URL": sb.base_url,
            "MQLSYNC_SALESFORCE_CLIENT_ID": sb.salesforce_client_id,
            "MQLSYNC_SALESFORCE_CLIENT_SECRET": sb.salesforce_client_secret,
            "MQLSYNC_CA_FILE": sb.ca_file,
            "MQLSYNC_DATABASE_URL": store_url,
            "MQLSYNC_HUBSPOT_RATE_PER_S": str(SHARED_RATE),
            "MQLSYNC_BATCH_SIZE": "100",
        }
        engine = make_engine(store_url)
        migrate(engine)
        with prefect_cluster(tmp_path, env) as cluster:
            cluster.run(str(BIN / "mqlsync"), "setup")
            cluster.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
            cluster.start_worker("worker-a")
            cluster.start_worker("worker-b")
            with temporary_settings(updates={PREFECT_API_URL: cluster.api_url}):
                _the_run_forms_are_for_people()
                _a_window_ending_before_it_starts_is_refused(sb)
                _backfill_and_sync_together(sb, engine)
                _rescore_is_shared(cluster, engine)
                _a_scheduled_run_happens()
        engine.dispose()


def store_kind() -> str:
    """PostgreSQL where it runs (required in CI, as everywhere in the suite); else SQLite."""
    if os.environ.get("CI") == "true" or postgres_available() is None:
        return "postgres"
    return "sqlite"


def _the_run_forms_are_for_people() -> None:
    """Every deployment's parameter schema, as the server holds it for the UI's run form."""
    with get_client(sync_client=True) as client:
        held = {d.name: d.parameter_openapi_schema for d in client.read_deployments()}
    assert set(held) == {entry["name"] for entry in deployments()}
    for name, schema in held.items():
        assert schema and schema["properties"], name
        assert form_problems(schema) == [], name
        assert schema["properties"]["crm"]["title"] == "CRM", name
        assert schema["definitions"]["CrmName"]["enum"] == ["hubspot", "salesforce"], name
    titles = {p: v["title"] for p, v in held["backfill"]["properties"].items()}
    assert titles == {"crm": "CRM", "start": "Window start", "end": "Window end",
                      "dry_run": "Dry run"}  # fmt: skip


def _a_window_ending_before_it_starts_is_refused(sb) -> None:
    """The run fails with one line saying what to change; the CRM hears nothing of it."""
    seen: list[str] = []

    def record(method: str, path: str, number: int, phase: str) -> None:
        seen.append(f"{method} {path}")

    today = datetime.now(UTC).date()
    start, end = today, today - timedelta(days=1)
    with scheduled_runs_paused():
        sb.admin.reset()
        sb.sandbox.on_request = record
        try:
            run = run_deployment(
                "backfill/backfill",
                parameters={"crm": "hubspot", "start": str(start), "end": str(end),
                            "dry_run": False},
                timeout=300,
            )  # fmt: skip
        finally:
            sb.sandbox.on_request = None
        assert run.state is not None and run.state.type.value == "FAILED", run.state
        assert run.state.message == (
            f"backfill hubspot: Window end {end} is before Window start {start}: set the end on "
            "or after the start"
        )
        assert seen == [] and sb.admin.stats()["totals"]["requests"] == 0, seen


@contextmanager
def scheduled_runs_paused() -> Iterator[None]:
    """No scheduled run starts (nor is running) meanwhile: the sandbox hears only the
    runs started here. Pausing a deployment deletes its scheduled runs; resuming makes
    them again."""
    with get_client(sync_client=True) as client:
        paused = [d.id for d in client.read_deployments() if d.schedules and not d.paused]
        for deployment_id in paused:
            client.pause_deployment(deployment_id)

        def none_active():
            active = [
                r
                for r in client.read_flow_runs()
                if r.state and r.state.type.value in ("PENDING", "RUNNING", "CANCELLING")
            ]
            return not active  # fmt: skip

        try:
            wait_for(none_active, 600, "scheduled runs under way to end")
            yield
        finally:
            for deployment_id in paused:
                client.resume_deployment(deployment_id)


def _backfill_and_sync_together(sb, engine) -> None:
    """Both workers busy against one CRM: the shared limit holds and nothing is doubled."""
    sb.admin.reset()
    today = datetime.now(UTC).date()
    # The longest window allowed by default, both ends counted: the sandbox's whole history.
    start = today - timedelta(days=DEFAULT_BACKFILL_MAX_DAYS - 1)
    backfill = run_deployment(
        "backfill/backfill",
        parameters={"crm": "hubspot", "start": str(start), "end": str(today), "dry_run": False},
        timeout=0,
    )
    sync = run_deployment("sync/sync-hubspot", timeout=0)
    with get_client(sync_client=True) as client:

        def both_final():
            runs = [client.read_flow_run(backfill.id), client.read_flow_run(sync.id)]
            return runs if all(r.state and r.state.is_final() for r in runs) else None

        runs = wait_for(both_final, 600, "backfill and sync to finish")
    assert [r.state.type.value for r in runs] == ["COMPLETED", "COMPLETED"], [
        (r.name, r.state.message) for r in runs
    ]
    stats = sb.admin.stats()
    assert sum(stats.get("throttled", {}).values()) == 0, stats.get("throttled")

    with engine.connect() as connection:
        mqls = connection.execute(select(ScoreRow.crm_id).where(ScoreRow.stage == "mql")).scalars()
        mql_ids = set(mqls)
        handoffs = connection.execute(select(HandoffRow.contact_id, HandoffRow.task_id)).all()
        scored = connection.execute(select(ScoreRow.crm_id, ScoreRow.written)).all()
    assert mql_ids, "the sandbox population should hold some MQLs"
    tasks = sb.admin.hubspot_tasks()
    per_contact = Counter(
        link["id"]
        for task in tasks
        for link in task.get("associations", {}).get("contacts", {}).get("results", [])
    )
    assert set(per_contact) == mql_ids and set(per_contact.values()) == {1}
    assert {c for c, t in handoffs if t} == mql_ids
    for crm_id, written in scored[:50]:
        stored = sb.admin.hubspot_contact(crm_id)["properties"]
        assert str(written["score"]) == str(stored["mqlsync_score"]).split(".")[0]
    for crm_id in mql_ids:
        assert sb.admin.hubspot_contact(crm_id)["properties"]["lifecyclestage"] == (
            "marketingqualifiedlead"
        )


def _rescore_is_shared(cluster, engine) -> None:
    parent = run_deployment("rescore/rescore-hubspot", parameters={"shards": 4}, timeout=600)
    assert parent.state.is_completed(), parent.state.message
    with get_client(sync_client=True) as client:
        children = [
            run for run in client.read_flow_runs()
            if run.parameters.get("shard") is not None and run.created > parent.created
        ]  # fmt: skip
    assert sorted(run.parameters["shard"] for run in children) == [0, 1, 2, 3]
    assert all(run.state.is_completed() for run in children)
    child_ids = {str(run.id) for run in children}
    with engine.connect() as connection:
        rows = connection.execute(
            select(ScoreHistoryRow.crm_id, ScoreHistoryRow.flow_run_id).where(
                ScoreHistoryRow.flow_run_id.in_(child_ids)
            )
        ).all()
        live = connection.execute(select(ScoreRow.crm_id)).scalars().all()
    per_contact = Counter(crm_id for crm_id, _ in rows)
    assert set(per_contact) == set(live) and set(per_contact.values()) == {1}
    took = {
        name: {run_id for run_id in child_ids if run_id in log.read_text(errors="replace")}
        for name, log in cluster.worker_logs.items()
    }
    assert all(took.values()), f"each worker should run some shards: {took}"


def _a_scheduled_run_happens() -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("sync/sync-hubspot")
        client.create_deployment_schedules(
            deployment.id,
            [
                (
                    IntervalSchedule(
                        interval=timedelta(minutes=1),
                        anchor_date=datetime.now(UTC) + timedelta(seconds=30),
                    ),
                    True,
                )
            ],
        )

        def scheduled_and_done():
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            return [r for r in runs if r.auto_scheduled and r.state and r.state.is_completed()]

        wait_for(scheduled_and_done, 240, "a scheduled sync run to complete", every=5)
