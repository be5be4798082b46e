"""Exactly-once effects through the real HubSpot connector against the sandbox, with
separate processes sharing one store (SQLite file or PostgreSQL schema)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from scoring.records import Crm
from store import audit, mirror
from store.db import make_engine, migrate
from store.tables import AuditRow, HandoffRow, ScoreRow
from tests.databases import database_url
from tests.store.crm_process import connector, run_sync_step

CONTACTS = 120


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A fresh sandbox per test: each test starts from contacts nobody has promoted yet."""
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=CONTACTS, seed=5, hubspot_search_per_s=50) as sb:
        yield sb


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, sandbox) -> Iterator[str]:
    """A store holding the sandbox's HubSpot contacts and activities, pulled for real."""
    with database_url(request.param, tmp_path) as url:
        engine = make_engine(url)
        migrate(engine)
        crm = connector(sandbox.base_url, sandbox.hubspot_token, sandbox.ca_file)
        now = datetime.now(UTC)
        for page in crm.pull_contacts(None):
            mirror.upsert_contacts(engine, page.records, now)
        for page in crm.pull_activities(None):
            mirror.upsert_activities(engine, page.records)
        engine.dispose()
        yield url


def in_processes(*calls: dict[str, object]) -> list[int]:
    """Run `run_sync_step` once per kwargs, all at the same time; their exit codes."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=run_sync_step, kwargs=kwargs) for kwargs in calls]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    return [proc.exitcode for proc in procs]


def step(sb, url: str, ids: list[str], worker: str, **extra: object) -> dict[str, object]:
    return dict(
        store_url=url, base_url=sb.base_url, token=sb.hubspot_token, ca_file=sb.ca_file,
        contact_ids=ids, worker=worker, **extra,
    )  # fmt: skip


def live_ids(url: str) -> list[str]:
    engine = make_engine(url)
    ids = mirror.live_contact_ids(engine, Crm.HUBSPOT)
    engine.dispose()
    return ids


def tasks_per_contact(sb, ids: set[str]) -> Counter[str]:
    return Counter(
        link["id"]
        for task in sb.admin.hubspot_tasks()
        for link in task.get("associations", {}).get("contacts", {}).get("results", [])
        if link["id"] in ids
    )


def mqls_and_handoffs(url: str) -> tuple[set[str], dict[str, str | None]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        mqls = set(
            connection.execute(select(ScoreRow.crm_id).where(ScoreRow.stage == "mql")).scalars()
        )
        claims = dict(connection.execute(select(HandoffRow.contact_id, HandoffRow.task_id)).all())
    engine.dispose()
    return mqls, claims


def stage_moves(url: str) -> Counter[str]:
    """Stage moves the store recorded as made, per contact (from the audit log)."""
    engine = make_engine(url)
    with engine.connect() as connection:
        found: Counter[str] = Counter(
            connection.execute(
                select(AuditRow.contact_id).where(
                    AuditRow.kind == "write",
                    AuditRow.action == "change_stage",
                    AuditRow.outcome == "ok",
                )
            ).scalars()
        )
    engine.dispose()
    return found


def test_two_processes_create_each_task_once(sandbox, store_url: str) -> None:
    ids = live_ids(store_url)
    codes = in_processes(step(sandbox, store_url, ids, "p1"), step(sandbox, store_url, ids, "p2"))
    assert codes == [0, 0]
    mqls, claims = mqls_and_handoffs(store_url)
    assert mqls, "the sandbox population should hold some MQLs"
    per_contact = tasks_per_contact(sandbox, set(ids))
    assert set(per_contact) == mqls and set(per_contact.values()) == {1}
    assert set(claims) == mqls and all(claims.values())
    # A re-run with nothing new plans zero writes and makes none.
    sandbox.admin.reset()
    assert in_processes(step(sandbox, store_url, ids, "p3")) == [0]
    writes = {
        k: v
        for k, v in sandbox.admin.stats()["requests"].items()
        if k.startswith("POST") and "search" not in k and "batch/read" not in k
    }
    assert writes == {}, writes


@pytest.mark.parametrize("die", ["before_create", "after_create"])
def test_a_killed_run_ends_with_one_task_after_a_rerun(sandbox, store_url: str, die: str) -> None:
    ids = live_ids(store_url)
    assert in_processes(step(sandbox, store_url, ids, "doomed", die=die)) == [9]
    mqls, claims = mqls_and_handoffs(store_url)
    assert mqls and set(claims) == mqls and not any(claims.values())
    created_before = sum(tasks_per_contact(sandbox, set(ids)).values())
    assert created_before == (0 if die == "before_create" else len(mqls))

    rerun = step(sandbox, store_url, ids, "rerun", finish_interrupted=True)
    assert in_processes(rerun) == [0]
    per_contact = tasks_per_contact(sandbox, set(ids))
    assert set(per_contact) == mqls and set(per_contact.values()) == {1}
    mqls_after, claims_after = mqls_and_handoffs(store_url)
    assert mqls_after == mqls and all(claims_after.values())
    engine = make_engine(store_url)
    for contact_id in mqls:
        trail = [
            (e["kind"], e["action"], e["outcome"])
            for e in audit.history(engine, "hubspot", contact_id)
        ]
        assert ("decision", "promoted_to_mql", None) in trail
        assert ("write", "change_stage", "ok") in trail
        final = "already_done" if die == "after_create" else "ok"
        assert ("write", "create_task", final) in trail, trail
    engine.dispose()


def test_two_processes_write_each_contact_once(sandbox, store_url: str) -> None:
    ids = live_ids(store_url)
    sandbox.sandbox.exchanges = []
    codes = in_processes(step(sandbox, store_url, ids, "p1"), step(sandbox, store_url, ids, "p2"))
    assert codes == [0, 0]
    score_writes: Counter[str] = Counter()
    stage_writes: Counter[str] = Counter()
    for exchange in sandbox.sandbox.exchanges:
        if exchange.method != "POST" or exchange.path != "/crm/v3/objects/contacts/batch/update":
            continue
        for item in exchange.request_body["inputs"]:
            if "mqlsync_score" in item["properties"]:
                score_writes[item["id"]] += 1
            # A backward move clears the stage first (""), then sets it: count the sets.
            if item["properties"].get("lifecyclestage"):
                stage_writes[item["id"]] += 1
    # Both planned the same writes. Each contact's score fields went out once, from the
    # run holding its write claim; each MQL's stage move once, from the run holding its
    # handoff claim, and each recycle's once, from the run holding its write claim (the
    # two runs may share the moves between them, never a contact); each MQL got one task.
    assert score_writes and set(score_writes.values()) == {1}, score_writes
    mqls, _ = mqls_and_handoffs(store_url)
    moves = stage_moves(store_url)
    assert mqls <= set(moves) and set(moves.values()) == {1}, moves
    assert stage_writes == moves, stage_writes
    per_contact = tasks_per_contact(sandbox, set(ids))
    assert set(per_contact) == mqls and set(per_contact.values()) == {1}
