"""The Prefect flows: sync, rescore and backfill. Thin: tasks do the work."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, cast

from prefect import flow, get_run_logger, unmapped
from prefect.client.schemas.objects import FlowRun, State
from prefect.runtime import deployment, flow_run
from prefect.states import Failed
from pydantic import Field

from flows import report, tasks
from flows.apply_report import ApplyReport
from flows.settings import get_settings
from scoring.records import Crm


class CrmName(StrEnum):
    """Shown as a dropdown in the Prefect UI's run form."""

    hubspot = "hubspot"
    salesforce = "salesforce"


def _score_in_batches(crm: Crm, ids: list[str], dry_run: bool) -> tuple[ApplyReport, list[str]]:
    """Every batch's report, and one line per batch that failed all its attempts."""
    total = ApplyReport()
    failed: list[str] = []
    batches = tasks.batches(ids, get_settings().batch_size)
    scoring = tasks.score_and_apply.with_options(retry_delay_seconds=tasks.retry_delays())
    futures = scoring.map(unmapped(crm), batches, unmapped(dry_run))
    for batch, future in zip(batches, futures, strict=True):
        future.wait()
        state = future.state
        if state.is_completed():
            total.merge(state.result())
            continue
        failed.append(f"{len(batch)} contacts not scored or written: {_why_failed(state, crm)}")
    return total, failed


def _finish(crm: Crm) -> tuple[ApplyReport, list[str]]:
    finishing = tasks.finish_handoffs.with_options(retry_delay_seconds=tasks.retry_delays())
    state = finishing(crm, return_state=True)
    if state.is_completed():
        return state.result(), []
    return ApplyReport(), [f"finishing open handoffs failed: {_why_failed(state, crm)}"]


def _why_failed(state: Any, crm: Crm) -> str:
    """One line for a task run that ended without a result: its error's remedy."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, BaseException):
        return tasks.remedy(error, crm)
    return state.message or ""


def _verdict(
    which: Crm, flow_name: str, summary: str, problems: list[str], pending: tasks.Pending
) -> str | State[Any]:
    """The run's result: its summary, or a failed state that says what is left and why."""
    if not problems and not pending.anything:
        return summary
    lines = list(problems)
    if pending.handoffs:
        lines.append(
            f"{pending.handoffs} handoff(s) pending: MQLs without a sales task; the next run "
            "looks each up in the CRM and creates what is missing"
        )
    if pending.writes:
        lines.append(
            f"{pending.writes} contact(s) with writes not done; the next run scores and "
            "writes them again"
        )
    head = f"{flow_name} {which.value} did not finish: " + "; ".join(lines)
    get_run_logger().error(head)
    return Failed(message=head + "\n\n" + summary)


@flow(name="sync", log_prints=True)
def sync(
    crm: Annotated[CrmName, Field(description="which CRM to sync")],
    dry_run: Annotated[bool, Field(description="plan only; write nothing to the CRM")] = False,
) -> str | State[Any]:
    """Pull changes since the cursors, score the contacts they touch, write what changed."""
    which = Crm(crm.value)
    problem = tasks.preflight(which)
    if problem is not None:
        get_run_logger().error(problem)
        return Failed(message=problem)
    problems: list[str] = []
    outcome = ApplyReport()
    if not dry_run:
        finished, failed = _finish(which)
        outcome.merge(finished)
        problems += failed
    pulls = []
    for stream in tasks.STREAMS:
        since = tasks.stored_cursor(which, stream)
        state = tasks.pulling()(which, stream, since, by_source=True, return_state=True)
        if not state.is_completed():
            reason = _why_failed(state, which)
            message = f"pull of {stream} failed, nothing scored; cursors kept: {reason}"
            get_run_logger().error(message)
            return Failed(message=message)
        pulls.append(state.result())
    retry = set() if dry_run else set(tasks.contacts_to_retry(which))
    changed = sorted(retry.union(*(p.changed_contacts for p in pulls)))
    scored, failed = _score_in_batches(which, changed, dry_run)
    outcome.merge(scored)
    problems += failed
    if not dry_run:
        # A claim this run gave back (a create failed) gets one more try before the end.
        finished, failed_finish = _finish(which)
        outcome.merge(finished)
        problems += failed_finish
        if not failed:
            # Only now, with every page's plan applied and recorded, may the cursors move.
            for pull in pulls:
                if pull.cursor is not None:
                    tasks.advance_cursor(which, pull.stream, pull.cursor)
                for source, value in pull.source_cursors.items():
                    tasks.advance_cursor(which, tasks.SOURCE_PREFIX + source, value)
    pending = tasks.Pending() if dry_run else tasks.pending_work(which)
    summary = report.publish(which, "sync", pulls, outcome, dry_run, pending)
    return _verdict(which, "sync", summary, problems, pending)


@flow(name="rescore", log_prints=True)
def rescore(
    crm: Annotated[CrmName, Field(description="which CRM's contacts to rescore")],
    shards: Annotated[int, Field(ge=1, le=64, description="split the contacts this many ways")] = 1,
    shard: Annotated[
        int | None, Field(ge=0, description="score only this shard (set by the fan-out)")
    ] = None,
    dry_run: Annotated[bool, Field(description="plan only; write nothing to the CRM")] = False,
) -> str | State[Any]:
    """Score every stored contact again as of now; decay and windows move scores over time.

    With several shards inside a deployment, each shard becomes its own flow run of this
    deployment, so that every worker of the pool can take one.
    """
    which = Crm(crm.value)
    if shard is None and shards > 1 and deployment.id:
        return _fan_out(crm, shards, dry_run)
    problem = tasks.preflight(which)
    if problem is not None:
        get_run_logger().error(problem)
        return Failed(message=problem)
    selected = [shard] if shard is not None else list(range(shards))
    ids = [i for s in selected for i in tasks.contacts_in_shard(which, s, shards)]
    outcome, problems = _score_in_batches(which, ids, dry_run)
    name = "rescore" if shard is None else f"rescore-shard-{shard}"
    pending = tasks.Pending() if dry_run else tasks.pending_work(which)
    summary = report.publish(which, name, [], outcome, dry_run, pending)
    return _verdict(which, name, summary, problems, pending)


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

    # Called from a sync flow, `run_deployment` returns the run, not a coroutine to await.
    started = [
        cast(
            FlowRun,
            run_deployment(
                name,
                parameters={"crm": crm.value, "shards": shards, "shard": s, "dry_run": dry_run},
                timeout=0,
            ),
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
) -> str | State[Any]:
    """Re-pull a window of the CRM's history and rescore the contacts it touches."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    which = Crm(crm.value)
    problem = tasks.preflight(which)
    if problem is not None:
        get_run_logger().error(problem)
        return Failed(message=problem)
    since = datetime.combine(start, time.min, UTC)
    pulls = [tasks.pulling()(which, stream, since) for stream in tasks.STREAMS]
    ids = tasks.contacts_changed_between(which, start, end)
    outcome, problems = _score_in_batches(which, ids, dry_run)
    pending = tasks.Pending() if dry_run else tasks.pending_work(which)
    summary = report.publish(which, "backfill", pulls, outcome, dry_run, pending)
    return _verdict(which, "backfill", summary, problems, pending)
