"""Prefect tasks: each one step of I/O with retries, calling connectors, store and scoring."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from connectors.errors import FatalError
from flows import pipeline, runtime
from flows.pipeline import ApplyReport
from scoring.records import Crm
from store import audit, cursors, mirror, scores
from store.audit import AuditEvent

STREAMS = ("contacts", "activities", "deletions")


def retry_unless_fatal(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a task run unless its error is one a retry cannot fix (4xx, daily limit, config)."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, FatalError | runtime.ConfigurationError)


def run_id() -> str | None:
    value = flow_run.get_id()
    return str(value) if value else None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class PullResult:
    stream: str
    records: int = 0
    pages: int = 0
    bad_records: int = 0
    changed_contacts: set[str] = field(default_factory=set)
    cursor: datetime | None = None


@task(retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=retry_unless_fatal,
      cache_policy=NONE)  # fmt: skip
def pull_stream(crm: Crm, stream: str, since: datetime | None) -> PullResult:
    """Pull one stream since `since` into the store; the cursor is returned, not stored."""
    logger = get_run_logger()
    connector = runtime.connector_for(crm)
    engine = runtime.store_engine()
    now = datetime.now(UTC)
    result = PullResult(stream=stream)
    pull = {
        "contacts": connector.pull_contacts,
        "activities": connector.pull_activities,
        "deletions": connector.pull_deletions,
    }[stream]
    bad: list[AuditEvent] = []
    for page in pull(since):
        result.pages += 1
        result.records += len(page.records)
        if stream == "contacts":
            mirror.upsert_contacts(engine, page.records, now)  # type: ignore[arg-type]
            result.changed_contacts.update(c.crm_id for c in page.records)  # type: ignore[attr-defined]
        elif stream == "activities":
            mirror.upsert_activities(engine, page.records)  # type: ignore[arg-type]
            result.changed_contacts.update(a.contact_id for a in page.records)  # type: ignore[attr-defined]
        else:
            mirror.mark_deleted(engine, crm, [d.crm_id for d in page.records])  # type: ignore[attr-defined]
        for issue in page.errors:
            # A bad record is reported and skipped; the rest of the run goes on.
            logger.warning("%s %s %s skipped: %s", crm.value, stream, issue.crm_id, issue.message)
            bad.append(
                AuditEvent(crm.value, issue.crm_id, "pull", f"bad_{stream}", "skipped",
                           message=issue.message)
            )  # fmt: skip
        result.bad_records += len(page.errors)
        if page.cursor is not None and (result.cursor is None or page.cursor > result.cursor):
            result.cursor = page.cursor
    audit.record(engine, bad, run_id(), now)
    logger.info("%s %s: %d records in %d pages", crm.value, stream, result.records, result.pages)
    return result


@task(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_unless_fatal,
      cache_policy=NONE)  # fmt: skip
def score_and_apply(crm: Crm, contact_ids: Sequence[str], dry_run: bool) -> ApplyReport:
    """Score a batch of contacts, plan their writes and (unless a dry run) apply them."""
    engine = runtime.store_engine()
    now = datetime.now(UTC)
    mapping = runtime.mapping_for(crm)
    decided = pipeline.score_and_plan(
        engine, runtime.scoring_model(), crm, list(contact_ids),
        mapping.lead_status.key_for, now, run_id(), record=not dry_run,
    )  # fmt: skip
    if dry_run:
        return pipeline.planned_report(decided)
    return pipeline.apply_plans(
        engine, runtime.connector_for(crm), decided, now, run_id(), worker_name()
    )


@task(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_unless_fatal,
      cache_policy=NONE)  # fmt: skip
def finish_handoffs(crm: Crm) -> ApplyReport:
    """Finish handoffs a crashed run claimed but did not record."""
    return pipeline.finish_interrupted_handoffs(
        runtime.store_engine(), runtime.connector_for(crm), datetime.now(UTC), run_id(),
        worker_name(),
    )  # fmt: skip


@task(cache_policy=NONE)
def advance_cursor(crm: Crm, stream: str, value: datetime) -> None:
    cursors.advance_cursor(runtime.store_engine(), crm.value, stream, value, datetime.now(UTC))


@task(cache_policy=NONE)
def stored_cursor(crm: Crm, stream: str) -> datetime | None:
    return cursors.cursor_for(runtime.store_engine(), crm.value, stream)


@task(cache_policy=NONE)
def contacts_to_retry(crm: Crm) -> list[str]:
    """Contacts whose last writes failed: scored and written again whatever was pulled."""
    return scores.contacts_needing_write(runtime.store_engine(), crm.value)


@task(cache_policy=NONE)
def contacts_in_shard(crm: Crm, shard: int, shards: int) -> list[str]:
    return mirror.live_contact_ids(runtime.store_engine(), crm, shard, shards)


@task(cache_policy=NONE)
def contacts_changed_between(crm: Crm, start: date, end: date) -> list[str]:
    """Contacts updated, or with activity, in [start, end] (whole UTC days)."""
    return mirror.contacts_touched_between(
        runtime.store_engine(),
        crm,
        datetime.combine(start, time.min, UTC),
        datetime.combine(end, time.max, UTC),
    )


def batches(ids: Sequence[str], size: int) -> list[list[str]]:
    ordered = sorted(ids)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
