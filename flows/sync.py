"""The Prefect flows: sync, rescore and backfill. Thin: tasks do the work."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, cast

from prefect import flow, get_run_logger, unmapped
from prefect.client.schemas.objects import FlowRun, State
from prefect.futures import as_completed
from prefect.runtime import deployment, flow_run
from prefect.states import Failed
from pydantic import Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from flows import progress, report, runtime, tasks
from flows.apply_report import ApplyReport
from flows.settings import DEFAULT_BACKFILL_MAX_DAYS, get_settings
from scoring.records import Crm


class CrmName(StrEnum):
    """The CRM: hubspot (HubSpot) or salesforce (Salesforce)."""

    hubspot = "hubspot"
    salesforce = "salesforce"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # A label for the values, not the class name. Not "CRM", the parameters' title:
        # pydantic drops a parameter's title that equals its type's.
        schema = handler(core_schema)
        handler.resolve_ref_schema(schema)["title"] = "CRM name"
        return schema


def run_form(title: str, description: str, **constraints: Any) -> Any:
    """A flow parameter's label and help text in the UI's run form, and its constraints.

    Prefect 3.8 titles each parameter of a deployment's schema after its name and drops a
    description given in `Annotated`; the field's `json_schema_extra` is applied last.
    """
    return Field(
        title=title,
        description=description,
        json_schema_extra={"title": title, "description": description},
        **constraints,
    )


def _dry_run_help(what: str) -> str:
    return (
        f"On: {what} as usual, then show what would change (a table and a summary artifact "
        "of the run) and write nothing to the CRM. Off (the default): write the new scores, "
        "stages and sales tasks to the CRM."
    )


def _score_in_batches(crm: Crm, ids: list[str], dry_run: bool) -> tuple[ApplyReport, list[str]]:
    """Every batch's report, and one line per batch that failed all its attempts."""
    total = ApplyReport()
    failed: list[str] = []
    batches = tasks.batches(ids, get_settings().batch_size)
    shown = progress.current()
    shown.scoring(len(batches), len(ids))
    scoring = tasks.score_and_apply.with_options(retry_delay_seconds=tasks.retry_delays())
    futures = scoring.map(unmapped(crm), batches, unmapped(dry_run))
    sizes = {future: len(batch) for batch, future in zip(batches, futures, strict=True)}
    for future in as_completed(list(futures)):  # as they finish, whatever their order
        shown.batch_done(sizes[future])
    for batch, future in zip(batches, futures, strict=True):
        future.wait()
        state = future.state
        if state.is_completed():
            total.merge(state.result())
            continue
        failed.append(f"{len(batch)} contacts not scored or written: {_why_failed(state, crm)}")
    return total, failed


def _pull_streams(
    crm: Crm,
    since: dict[str, datetime | None],
    *,
    by_source: bool = False,
    until: datetime | None = None,
) -> dict[str, State[Any]]:
    """Each stream's final state, pulled in `tasks.PULL_ORDER`: the streams of a group at
    once (contacts and activities side by side, as the CRM's limits allow), a group only
    after the one before it has ended (deletions last, so that a contact pulled and
    archived within one run ends deleted). A group with a failed pull ends the pulling."""
    shown = progress.current()
    pulling = tasks.pulling()
    states: dict[str, State[Any]] = {}
    for group in tasks.PULL_ORDER:
        futures = {}
        for stream in group:
            shown.pulling(stream)
            futures[stream] = pulling.submit(crm, stream, since[stream], by_source, until)
        for future in as_completed(list(futures.values())):
            future.wait()
            if future.state.is_completed():
                shown.pulled(future.state.result())
        for stream, future in futures.items():
            future.wait()
            states[stream] = future.state
        if not all(states[stream].is_completed() for stream in group):
            break
    return states


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
    crm: Annotated[
        CrmName,
        run_form(
            "CRM",
            "The CRM to sync: what changed there since its last sync is pulled, the contacts "
            "it touches are scored, and their new scores, stages and sales tasks written back.",
        ),
    ],
    dry_run: Annotated[
        bool,
        run_form(
            "Dry run",
            _dry_run_help("pull and score")
            + " A dry run does not mark the changes as synced: the next sync takes them up again.",
        ),
    ] = False,
) -> str | State[Any]:
    """Pull changes since the cursors, score the contacts they touch, write what changed."""
    which = Crm(crm.value)
    problem = tasks.preflight(which)
    if problem is not None:
        get_run_logger().error(problem)
        return Failed(message=problem)
    shown = progress.start("sync", which.value, tasks.STREAMS)
    problems: list[str] = []
    outcome = ApplyReport()
    if not dry_run:
        finished, failed = _finish(which)
        outcome.merge(finished)
        problems += failed
    # Each stream's cursor, for the pulls and the summary.
    started_from = {stream: tasks.stored_cursor(which, stream) for stream in tasks.STREAMS}
    states = _pull_streams(which, started_from, by_source=True)
    for stream, state in states.items():
        if not state.is_completed():
            reason = _why_failed(state, which)
            message = f"pull of {stream} failed, nothing scored; cursors kept: {reason}"
            get_run_logger().error(message)
            shown.stop(message)
            return Failed(message=message)
    pulls = [states[stream].result() for stream in tasks.STREAMS]
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
    window = report.sync_window(pulls, dry_run, started_from)
    summary = report.publish(which, "sync", pulls, outcome, dry_run, pending, window=window)
    shown.finish()
    return _verdict(which, "sync", summary, problems, pending)


@flow(name="rescore", log_prints=True)
def rescore(
    crm: Annotated[
        CrmName,
        run_form(
            "CRM",
            "The CRM whose contacts are scored again as of now (scores fade and time windows "
            "close even when nothing new happens); nothing is pulled from it.",
        ),
    ],
    shards: Annotated[
        int,
        run_form(
            "Shards",
            "Split the contacts into this many parts (1 to 64), each scored in its own run, "
            "so that every worker can take one. 1: one run scores them all.",
            ge=1,
            le=64,
        ),
    ] = 1,
    shard: Annotated[
        int | None,
        run_form(
            "Only this part",
            "Leave empty to score every contact. A number from 0 to Shards minus 1 scores only "
            "that part of the contacts: the runs a rescore splits into are started with it.",
            ge=0,
        ),
    ] = None,
    dry_run: Annotated[bool, run_form("Dry run", _dry_run_help("score"))] = False,
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
    name = "rescore" if shard is None else f"rescore-shard-{shard}"
    shown = progress.start(name, which.value)
    selected = [shard] if shard is not None else list(range(shards))
    ids = [i for s in selected for i in tasks.contacts_in_shard(which, s, shards)]
    outcome, problems = _score_in_batches(which, ids, dry_run)
    pending = tasks.Pending() if dry_run else tasks.pending_work(which)
    window = report.rescore_window(runtime.now())
    summary = report.publish(which, name, [], outcome, dry_run, pending, window=window)
    shown.finish()
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
    crm: Annotated[
        CrmName,
        run_form(
            "CRM",
            "The CRM to backfill: what changed or happened there within the window (contacts, "
            "their activities, deletions) is pulled again, nothing from before or after it, "
            "and the contacts updated or active within the window are scored again.",
        ),
    ],
    start: Annotated[
        date,
        run_form(
            "Window start",
            "The window's first day, a UTC date, included: the window starts at 00:00 UTC "
            "that day (the pull reaches a few minutes earlier, the overlap every sync reads "
            "again).",
        ),
    ],
    end: Annotated[
        date,
        run_form(
            "Window end",
            "The window's last day, a UTC date, included: the window ends at 24:00 UTC that "
            "day, and nothing that changed after it is pulled (a contact changed within the "
            "window and again later is placed by its later change: end the window today to "
            "re-pull everything changed since the start). On or after the start and "
            "today at the latest, with at most "
            f"{DEFAULT_BACKFILL_MAX_DAYS} days from start to end, both counted (the workers' "
            "MQLSYNC_BACKFILL_MAX_DAYS changes that maximum).",
        ),
    ],
    dry_run: Annotated[
        bool,
        run_form(
            "Dry run",
            "On (the default): show the plan only, what would change (a table and a summary "
            "artifact of the run), and write nothing to the CRM. Off: write the new scores, "
            "stages and sales tasks to the CRM.",
        ),
    ] = True,
) -> str | State[Any]:
    """Re-pull a window of the CRM's history and rescore the contacts it touches."""
    refused = window_problem(start, end)
    if refused is not None:
        message = f"backfill {crm.value}: {refused}"
        get_run_logger().error(message)
        return Failed(message=message)
    which = Crm(crm.value)
    problem = tasks.preflight(which)
    if problem is not None:
        get_run_logger().error(problem)
        return Failed(message=problem)
    since = datetime.combine(start, time.min, UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, UTC)
    shown = progress.start("backfill", which.value, tasks.STREAMS)
    # A window, not what changed since a cursor: it yields no cursor and none is stored,
    # so each sync resumes from its own (a window's high-water mark stored as one would
    # skip whatever changed between that cursor and the window).
    states = _pull_streams(which, dict.fromkeys(tasks.STREAMS, since), until=until)
    # A failed pull fails the run with its own error, before anything is scored.
    pulls = [states[stream].result() for stream in tasks.STREAMS]
    ids = tasks.contacts_changed_between(which, start, end)
    outcome, problems = _score_in_batches(which, ids, dry_run)
    pending = tasks.Pending() if dry_run else tasks.pending_work(which)
    window = report.backfill_window(start, end)
    summary = report.publish(which, "backfill", pulls, outcome, dry_run, pending, window=window)
    shown.finish()
    return _verdict(which, "backfill", summary, problems, pending)


def window_problem(start: date, end: date) -> str | None:
    """Why a backfill cannot run this window, in one line saying what to change; or None.

    Both days are whole UTC days, included; "today" is the runs' clock (MQLSYNC_FIXED_NOW).
    """
    today = runtime.now().astimezone(UTC).date()
    longest = get_settings().backfill_max_days
    if end < start:
        return f"Window end {end} is before Window start {start}: set the end on or after the start"
    if end > today:
        return (
            f"Window end {end} is in the future (today is {today}, UTC): set the end to "
            f"{today} or earlier"
        )
    days = (end - start).days + 1
    if days > longest:
        earliest = end - timedelta(days=longest - 1)
        return (
            f"the window {start} to {end} spans {days} days, more than the {longest} allowed: "
            f"set Window start to {earliest} or later, or raise MQLSYNC_BACKFILL_MAX_DAYS"
        )
    return None
