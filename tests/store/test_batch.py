"""A batch of 500 contacts reads the store in one round of queries and records in one
transaction, counted with SQLAlchemy's own events (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from flows import pipeline
from scoring.model import parse_model
from scoring.records import Activity, Contact, Crm
from store import batch, mirror, scores

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
MODEL = parse_model(Path("scoring/models/example.yaml").read_text(), "example.yaml")
SIZE = 500


@dataclass
class Traffic:
    """Connections checked out, transactions committed, and statements by their first word.

    (A read begins a transaction too, in SQLAlchemy 2, and rolls it back: commits count
    what was written.)
    """

    connections: int = 0
    transactions: int = 0
    statements: list[str] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [s.split(None, 1)[0].upper() for s in self.statements]


@contextmanager
def watched(engine: Engine) -> Iterator[Traffic]:
    seen = Traffic()

    def checkout(*_: Any) -> None:
        seen.connections += 1

    def commit(_: Any) -> None:
        seen.transactions += 1

    def statement(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        seen.statements.append(sql.strip())

    hooks = [
        (engine.pool, "checkout", checkout),
        (engine, "commit", commit),
        (engine, "before_cursor_execute", statement),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield seen
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)


def seed(engine: Engine) -> list[str]:
    """500 contacts with two activities each, half of them scored before."""
    ids = [str(1000 + i) for i in range(SIZE)]
    contacts = [
        Contact(
            crm="hubspot", crm_id=i, company_size=300, job_title="VP Sales", lifecycle_stage="lead"
        )
        for i in ids
    ]
    activities = [
        Activity(
            crm="hubspot", crm_id=f"{i}-{k}", contact_id=i, type="page_view",
            occurred_at=NOW - timedelta(days=k + 1), url="https://x.io/pricing",
        )
        for i in ids
        for k in range(2)
    ]  # fmt: skip
    mirror.upsert_contacts(engine, contacts, NOW)
    mirror.upsert_activities(engine, activities)
    earlier = pipeline.score_and_plan(
        engine, MODEL, Crm.HUBSPOT, ids[: SIZE // 2], lambda _: None, NOW, "before"
    )
    assert len(earlier) == SIZE // 2
    return ids


def test_a_batch_reads_in_one_connection_with_one_query_per_kind(engine: Engine) -> None:
    ids = seed(engine)
    with watched(engine) as seen:
        loaded = batch.load_batch(engine, Crm.HUBSPOT, ids)
    assert len(loaded.contacts) == SIZE
    assert sum(len(a) for a in loaded.activities.values()) == 2 * SIZE
    assert len(loaded.written) == SIZE // 2
    assert (seen.connections, seen.transactions) == (1, 0)
    # Contacts, activities, written states, pending claims: one query each.
    assert seen.kinds() == ["SELECT"] * 4, seen.statements


def test_a_batch_is_scored_and_recorded_in_one_transaction(engine: Engine) -> None:
    ids = seed(engine)
    with watched(engine) as seen:
        decided = pipeline.score_and_plan(
            engine, MODEL, Crm.HUBSPOT, ids, lambda _: None, NOW + timedelta(hours=1), "run"
        )
    assert len(decided) == SIZE
    assert seen.connections == 2  # one to read, one to record
    assert seen.transactions == 1
    writes = [k for k in seen.kinds() if k != "SELECT"]
    assert writes and len(writes) <= 4, seen.statements  # scores, history, audit rows
    assert seen.kinds().count("SELECT") <= 5  # the reads, and the run's earlier decisions
    stored = scores.written_states(engine, "hubspot", ids)
    assert len(stored) == SIZE


def test_a_dry_run_reads_and_writes_nothing_back(engine: Engine) -> None:
    ids = seed(engine)
    with watched(engine) as seen:
        pipeline.score_and_plan(
            engine, MODEL, Crm.HUBSPOT, ids, lambda _: None, NOW, "dry", record=False
        )
    assert seen.transactions == 0
    assert set(seen.kinds()) == {"SELECT"}
