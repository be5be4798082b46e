"""The Prefect flows: sync, rescore and backfill. Thin: tasks do the work."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any

from prefect import flow, get_run_logger, unmapped
from prefect.runtime import deployment, flow_run
from pydantic import Field

from flows import report, tasks
from flows.pipeline import ApplyReport
from flows.settings import get_settings
from scoring.records import Crm


class CrmName(StrEnum):
    """Shown as a dropdown in the Prefect UI's run form."""

    hubspot = "hubspot"
    salesforce = "salesforce"


def _score_in_batches(crm: Crm, ids: list[str], dry_run: bool) -> ApplyReport:
    total = ApplyReport()
    batches = tasks.batches(ids, get_settings().batch_size)
    futures = tasks.score_and_apply.map(unmapped(crm), batches, unmapped(dry_run))
    for result in futures.result():
        total.merge(result)
    return total


@flow(name="sync", log_prints=True)
def sync(
    crm: Annotated[CrmName, Field(description="which CRM to sync")],
    dry_run: Annotated[bool, Field(description="plan only; write nothing to the CRM")] = False,
) -> str:
    """Pull changes since the cursors, score the contacts they touch, write what changed."""
    which = Crm(crm.value)
    if not dry_run:
        tasks.finish_handoffs(which)
    pulls = []
    for stream in tasks.STREAMS:
        since = tasks.stored_cursor(which, stream)
        pulls.append(tasks.pull_stream(which, stream, since))
    retry = set() if dry_run else set(tasks.contacts_to_retry(which))
    changed = sorted(retry.union(*(p.changed_contacts for p in pulls)))
    outcome = _score_in_batches(which, changed, dry_run)
    if not dry_run:
        # Only now, with every page's plan applied and recorded, may the cursors move.
        for pull in pulls:
            if pull.cursor is not None:
                tasks.advance_cursor(which, pull.stream, pull.cursor)
    return report.publish(which, "sync", pulls, outcome, dry_run)


@flow(name="rescore", log_prints=True)
def rescore(
    crm: Annotated[CrmName, Field(description="which CRM's contacts to rescore")],
    shards: Annotated[int, Field(ge=1, le=64, description="split the contacts this many ways")] = 1,
    shard: Annotated[
        int | None, Field(ge=0, description="score only this shard (set by the fan-out)")
    ] = None,
    dry_run: Annotated[bool, Field(description="plan only; write nothing to the CRM")] = False,
) -> str:
    """Score every stored contact again as of now; decay and windows move scores over time.

    With several shards inside a deployment, each shard becomes its own flow run of this
    deployment, so that every worker of the pool can take one.
    """
    which = Crm(crm.value)
    if shard is None and shards > 1 and deployment.id:
        return _fan_out(crm, shards, dry_run)
    selected = [shard] if shard is not None else list(range(shards))
    ids = [i for s in selected for i in tasks.contacts_in_shard(which, s, shards)]
    outcome = _score_in_batches(which, ids, dry_run)
    name = "rescore" if shard is None else f"rescore-shard-{shard}"
    return report.publish(which, name, [], outcome, dry_run)


def _fan_out(crm: CrmName, shards: int, dry_run: bool) -> str:
    logger = get_run_logger()
    name = f"{flow_run.flow_name}/{deployment.name}"
    runs = _start_and_wait(name, crm, shards, dry_run)
    failed = [r.name for r in runs if not r.state or not r.state.is_completed()]
    logger.info("rescore fanned out to %d shard runs; %d failed", len(runs), len(failed))
    if failed:
        raise RuntimeError(f"shard runs did not complete: {', '.join(failed)}")
    return f"rescore {crm.value}: {shards} shard runs completed"


def _start_and_wait(name: str, crm: CrmName, shards: int, dry_run: bool) -> list[Any]:
    """Start every shard run first (timeout 0), then wait for them together."""
    import time as clock

    from prefect import get_client
    from prefect.deployments import run_deployment

    started = [
        run_deployment(
            name,
            parameters={"crm": crm.value, "shards": shards, "shard": s, "dry_run": dry_run},
            timeout=0,
        )
        for s in range(shards)
    ]
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run.id) for run in started]
            if all(run.state and run.state.is_final() for run in runs):
                return runs
            clock.sleep(2)


@flow(name="backfill", log_prints=True)
def backfill(
    crm: Annotated[CrmName, Field(description="which CRM to backfill")],
    start: Annotated[date, Field(description="first day of the window (UTC)")],
    end: Annotated[date, Field(description="last day of the window (UTC), inclusive")],
    dry_run: Annotated[
        bool, Field(description="show the plan as an artifact and write nothing")
    ] = True,
) -> str:
    """Re-pull a window of the CRM's history and rescore the contacts it touches."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    which = Crm(crm.value)
    since = datetime.combine(start, time.min, UTC)
    pulls = [tasks.pull_stream(which, stream, since) for stream in tasks.STREAMS]
    ids = tasks.contacts_changed_between(which, start, end)
    outcome = _score_in_batches(which, ids, dry_run)
    return report.publish(which, "backfill", pulls, outcome, dry_run)
