"""Artifacts of a run: a markdown summary, a table of its new MQLs, a table of its failures.

The summary says which CRM, which window (a backfill's days, a sync's cursors, a
rescore's instant), whether anything was written ("wrote") or only planned ("would
write"), what the run counted, its new MQLs and failures, the score distribution and the
funnel. The flows return it, so the command line prints the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from sqlalchemy import Engine

from connectors.throttle import DailyQuota
from flows import run_tables, runtime
from flows.apply_report import ApplyReport, AssessedMql, Scored, assessed_mql
from flows.explain import TaskLinks
from flows.settings import get_settings
from flows.tasks import Pending, PullResult, run_id
from scoring.lifecycle import is_backward
from scoring.records import Contact, Crm, LifecycleStage

CRM_NAMES = {Crm.HUBSPOT: "HubSpot", Crm.SALESFORCE: "Salesforce"}
MQLS_IN_SUMMARY = 10
FAILURES_IN_SUMMARY = 10

# Requests each connector had sent at its last report: a process runs flows one after
# another on one connector (`runtime.connector_for` is built once per process).
_reported: WeakKeyDictionary[Any, int] = WeakKeyDictionary()

T = TypeVar("T")


def publish(
    crm: Crm,
    flow: str,
    pulls: list[PullResult],
    report: ApplyReport,
    dry_run: bool,
    pending: Pending | None = None,
    *,
    window: str | None = None,
) -> str:
    """Create the run's summary and tables; returns the summary text.

    `window` is the line `backfill_window`, `sync_window` or `rescore_window` makes.
    """
    name = CRM_NAMES.get(crm, crm.value)
    engine = _engine()
    current = run_id()
    links = TaskLinks.from_settings(get_settings())
    missing: list[str] = []  # what the store could not tell: the report says so, the run goes on
    scored = _read(
        missing, "the scores", None, lambda: _scored(engine, crm, report, dry_run, current)
    )
    if scored is None and not missing:
        missing.append("the scores (no store, or no flow run to find them by)")
    rows = _read(
        missing,
        "the new MQLs' details",
        run_tables.mql_rows(None, crm, _bare(crm, report.new_mqls), report.tasks_created, links),
        lambda: run_tables.mql_rows(
            engine, crm, _new_mqls(engine, crm, report, dry_run), report.tasks_created, links
        ),
    )
    failed = [f.contact_id for f in report.failures]
    nobody: dict[str, str] = {}
    names = _read(missing, "names", nobody, lambda: run_tables.display_names(engine, crm, failed))
    top = _top_reasons()

    head = f"# {flow} {name} ({'dry run' if dry_run else 'applied'})"
    summary = "\n".join(
        [
            head,
            "",
            f"- CRM: {name}",
            f"- window: {window or 'not given'}",
            _mode_line(name, dry_run),
            *_count_lines(name, pulls, report, dry_run, scored),
            _api_calls_line(crm),
            f"- handoffs left to another run's claim: {report.skipped_claims}",
            f"- contacts left to another run writing them: {len(report.skipped_writes)}",
            *_pending_lines(pending),
            *(f"- not available: {what}" for what in missing),
            *_streams(pulls),
            "",
            f"## New MQLs ({len(rows)})",
            "",
            *(
                run_tables.mql_lines(rows, MQLS_IN_SUMMARY)
                + _more(len(rows), MQLS_IN_SUMMARY, "in the run's MQL table")
                if rows
                else ["No new MQL in this run."]
            ),
            *(
                [
                    "",
                    f"## Failures ({len(report.failures)})",
                    "",
                    *run_tables.failure_lines(report.failures, names, FAILURES_IN_SUMMARY),
                    *_more(len(report.failures), FAILURES_IN_SUMMARY, "in the failures table"),
                ]
                if report.failures
                else []
            ),
            "",
            "## Score distribution" + (" (planned)" if dry_run else ""),
            "",
            *run_tables.distribution_lines(scored or [], dry_run),
            "",
            "## Funnel",
            "",
            *(
                run_tables.funnel_lines(engine, crm.value, runtime.now())
                if engine is not None
                else ["- funnel: not available (no store)"]
            ),
            *(
                ["", "A dry run records no MQL: the funnel is the store's as it was."]
                if dry_run
                else []
            ),
        ]
    )
    key = f"mqlsync-{flow}-{crm.value}"
    mode = "dry run: would write" if dry_run else "applied: wrote"
    create_markdown_artifact(
        key=key + "-summary", markdown=summary, description=f"{flow} {name}: {mode}"
    )
    table = run_tables.mql_table(rows, top)
    note = "top reasons: rule id (points): evidence in words"
    if rows and not dry_run and not any(row.link for row in rows):
        note += f"; {links.missing(crm.value)}"
    create_table_artifact(
        key=key + "-mqls",
        table=table or [{"name": "no new MQL in this run"}],
        description=f"{flow} {name}: new MQLs ({mode}); {note}",
    )
    failures = run_tables.failure_table(report.failures, names)
    create_table_artifact(
        key=key + "-failures",
        table=failures or [{"failed to": "nothing failed in this run"}],
        description=f"{flow} {name}: failed writes and what to do. {run_tables.STILL_FAILING}",
    )
    return summary


# --- windows ---------------------------------------------------------------------------


def backfill_window(start: date, end: date) -> str:
    """A backfill's window: its days as given, UTC dates, both included."""
    return (
        f"{start.isoformat()} to {end.isoformat()}, UTC dates, both included "
        f"(00:00 UTC on {start.isoformat()} to 24:00 UTC on {end.isoformat()})"
    )


def rescore_window(as_of: datetime) -> str:
    """A rescore's window: every stored contact, as of the run's instant."""
    return f"every stored contact, scored as of {_instant(as_of)} (nothing pulled)"


def sync_window(
    pulls: Sequence[PullResult], dry_run: bool, started_from: Mapping[str, datetime | None]
) -> str:
    """A sync's window: what changed since each stream's cursor, as the run started."""
    parts = [f"{p.stream} {_since(started_from.get(p.stream))}" for p in pulls]
    if not parts:
        return "what changed since each stream's cursor"
    note = " (a dry run leaves the cursors where they are)" if dry_run else ""
    return (
        "what changed since each stream's cursor: "
        + ", ".join(parts)
        + " (each activity source from its own cursor)"
        + note
    )


def _since(cursor: datetime | None) -> str:
    return f"since {_instant(cursor)}" if cursor else "since the start (no cursor yet)"


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- counts ----------------------------------------------------------------------------


def _mode_line(name: str, dry_run: bool) -> str:
    if dry_run:
        return (
            f'- mode: dry run: nothing was written to {name}; "would write" is what a run '
            "with Dry run off would write"
        )
    return f'- mode: applied: what "wrote" counts was written to {name}'


def _count_lines(
    name: str,
    pulls: Sequence[PullResult],
    report: ApplyReport,
    dry_run: bool,
    scored: list[Scored] | None,
) -> list[str]:
    did = "would write" if dry_run else "wrote"
    by_stream = {p.stream: p.records for p in pulls}
    others = ", ".join(f"{s}: {n:,}" for s, n in by_stream.items() if s != "contacts")
    pulled = (
        f"{by_stream.get('contacts', 0):,}"
        + (f" (records of the other streams: {others})" if others else "")
        if pulls
        else "none (a rescore scores the contacts in the store)"
    )
    recycled = [m for m in report.stage_moves if _backward(m.from_stage, m.to_stage)]
    tasks = len(report.tasks_created)
    return [
        f"- contacts pulled: {pulled}",
        f"- contacts scored: {len(scored):,}"
        if scored is not None
        else "- contacts scored: not known",
        f"- contacts changed: {report.updated:,} ({did} their new score fields to {name})",
        f"- new MQLs: {len(report.new_mqls)}",
        f"- recycled to nurture: {len(recycled)} ({did} their stage back to lead)",
        f"- stage moves: {len(report.stage_moves)} ({did})",
        f"- handoff tasks: {tasks} ({'would create' if dry_run else 'created'} in {name})",
        f"- failures: {len(report.failures)}"
        + (" (below, each with what to do)" if report.failures else ""),
    ]


def _backward(from_stage: str, to_stage: str) -> bool:
    try:
        return is_backward(
            LifecycleStage(from_stage) if from_stage else None, LifecycleStage(to_stage)
        )
    except ValueError:
        return False


def _api_calls_line(crm: Crm) -> str:
    """Requests this run sent to the CRM, from the connector's own count, and the
    account's daily use where the CRM's answers said it."""
    name = CRM_NAMES.get(crm, crm.value)
    try:
        connector: Any = runtime.connector_for(crm)
    except Exception:  # the report must not fail a run that did its work
        return "- API calls: not counted (no connector)"
    sent = getattr(connector, "requests_sent", None)
    if not isinstance(sent, int):
        return (
            f"- API calls: not counted (the {name} connector does not say how many requests "
            "it sent)"
        )
    used = sent - _reported.get(connector, 0)
    _reported[connector] = sent
    line = f"- API calls: {used:,} (every attempt counted)"
    quota = getattr(connector, "quota", None)
    daily = quota() if callable(quota) else None
    if isinstance(daily, DailyQuota):
        line += (
            f"; {name}'s daily use: {daily.limit - daily.remaining:,} of {daily.limit:,} "
            "requests, by every integration, as its last answer said"
        )
    return line


def _pending_lines(pending: Pending | None) -> list[str]:
    if pending is None:
        return []
    attempts = ", ".join(f"{action} {n}" for action, n in sorted(pending.failures.items()))
    return [
        f"- failed attempts, every retry counted: {sum(pending.failures.values())}"
        + (f" ({attempts})" if attempts else ""),
        f"- MQLs still without a sales task: {pending.handoffs}",
        f"- contacts with writes still to do: {pending.writes}",
        f"- handoffs another run is finishing: {pending.in_other_runs}",
    ]


def _streams(pulls: Sequence[PullResult]) -> list[str]:
    if not pulls:
        return []
    return [
        "",
        "| stream | records | pages | bad records |",
        "|---|---:|---:|---:|",
        *(f"| {p.stream} | {p.records:,} | {p.pages} | {p.bad_records} |" for p in pulls),
    ]


def _more(total: int, shown: int, where: str) -> list[str]:
    return ["", f"... and {total - shown} more {where}"] if total > shown else []


# --- sources ---------------------------------------------------------------------------


def _read(missing: list[str], what: str, default: T, read: Callable[[], T]) -> T:
    """What `read` finds in the store, or `default` with a line for `missing`: a report
    that cannot read the store must not fail a run whose work is done."""
    try:
        return read()
    except Exception as exc:
        # The error's type only: a store's error text may carry its URL, password included.
        missing.append(f"{what} (the store did not answer: {type(exc).__name__})")
        return default


def _bare(crm: Crm, ids: Sequence[str]) -> dict[str, AssessedMql]:
    """The new MQLs by id alone, where the store cannot say more."""
    return {i: assessed_mql(Contact(crm=crm, crm_id=i), None, []) for i in ids}


def _engine() -> Engine | None:
    try:
        return runtime.store_engine()
    except Exception:  # the report says what it cannot know rather than fail the run
        return None


def _scored(
    engine: Engine | None, crm: Crm, report: ApplyReport, dry_run: bool, current: str | None
) -> list[Scored] | None:
    """The run's scores: a dry run's from its plan; a run that wrote, from the store."""
    if dry_run:
        return run_tables.distinct(report.scored)
    if engine is None or current is None:
        return run_tables.distinct(report.scored) if report.scored else None
    return run_tables.scored_in_run(engine, crm.value, current)


def _new_mqls(
    engine: Engine | None, crm: Crm, report: ApplyReport, dry_run: bool
) -> dict[str, AssessedMql]:
    known = {i: report.mql_rows[i] for i in report.new_mqls if i in report.mql_rows}
    missing = [i for i in report.new_mqls if i not in known]
    if missing and engine is not None and not dry_run:
        known.update(run_tables.mqls_from_store(engine, crm, missing))
    return {
        i: known[i] if i in known else _bare(crm, [i])[i] for i in dict.fromkeys(report.new_mqls)
    }


def _top_reasons() -> int:
    try:
        return runtime.scoring_model().handoff.top_reasons
    except Exception:  # a model that does not load was said by the preflight
        return 3
