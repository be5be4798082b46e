"""Prefect tasks: each one step of I/O with retries, calling connectors, store and scoring."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, cast

from more_itertools import chunked
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from sqlalchemy import Engine

from connectors.errors import AuthExpired, ConnectorError, DailyLimitExceeded, FatalError
from connectors.paging import Page
from connectors.protocol import Deletion
from flows import apply_report, claims, pipeline, recovery, runtime
from flows.apply_report import ApplyReport
from flows.settings import get_settings
from scoring.model import ModelError
from scoring.records import Activity, Contact, Crm
from store import audit, cursors, handoffs, mirror, scores
from store.audit import AuditEvent, AuditKind

STREAMS = ("contacts", "activities", "deletions")
# The groups of streams pulled at once, one group after the other (`flows.sync`).
PULL_ORDER = (("contacts", "activities"), ("deletions",))


def is_fatal(error: BaseException) -> bool:
    """Errors a retry cannot fix: auth, 4xx, the daily limit, configuration, the model."""
    return isinstance(error, FatalError | runtime.ConfigurationError | ModelError)


def retry_unless_fatal(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a task run unless its error is one a retry cannot fix (4xx, daily limit, config)."""
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, BaseException) and is_fatal(error))


def retry_delays(defaults: tuple[float, ...] = (10.0, 60.0)) -> list[float]:
    """Seconds between Prefect attempts of a task: its defaults, or the setting's value."""
    delay = get_settings().task_retry_delay_s
    return list(defaults) if delay is None else [delay] * len(defaults)


def pulling() -> Any:
    """`pull_stream` with the configured delays between its Prefect attempts."""
    return pull_stream.with_options(retry_delay_seconds=retry_delays((5.0, 30.0, 120.0)))


def remedy(error: BaseException, crm: Crm) -> str:
    """One line: what went wrong and what to do about it, for a run that must stop."""
    if isinstance(error, AuthExpired):
        fix = (
            (
                "re-authorise the app and set MQLSYNC_HUBSPOT_REFRESH_TOKEN to its new "
                "refresh token"
                if "refused the OAuth refresh" in str(error)
                else "set MQLSYNC_HUBSPOT_TOKEN (or the Secret block mqlsync-hubspot-token) "
                "to a valid private-app token, or configure OAuth refresh credentials"
            )
            if crm is Crm.HUBSPOT
            else "configure a grant that renews sessions: MQLSYNC_SALESFORCE_CLIENT_ID with "
            "MQLSYNC_SALESFORCE_CLIENT_SECRET (client credentials), or with "
            "MQLSYNC_SALESFORCE_USERNAME and MQLSYNC_SALESFORCE_JWT_KEY_FILE (JWT bearer)"
        )
        return f"{crm.value} rejected the credentials ({error}): {fix}"
    if isinstance(error, DailyLimitExceeded):
        return f"{error}"
    if isinstance(error, ModelError | runtime.ConfigurationError | FatalError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def preflight(crm: Crm) -> str | None:
    """Check model, mapping, settings and the CRM's schema before any pull; the problem or None.

    The model and mapping are read before the first request, so a broken file costs no
    API call; the CRM is then asked once for its schema (which also proves the token).
    """
    from flows.check import check_configuration, mapping_path

    problems = check_configuration(get_settings())
    if problems:
        return "\n".join(problems)
    try:
        runtime.scoring_model()
        runtime.mapping_for(crm)
        connector = runtime.connector_for(crm)
        problems = connector.check_mapping()
    except (ConnectorError, runtime.ConfigurationError, ModelError) as exc:
        return remedy(exc, crm)
    if problems:
        path = mapping_path(get_settings(), crm)
        return f"{path}: the mapping names what the {crm.value} account lacks: " + "; ".join(
            problems
        )
    return None


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
    skipped: int = 0  # records the mapping says are no activity, or with no contact
    # Sources switched off for this pull (a scope or tier the account lacks), once each.
    warnings: list[str] = field(default_factory=list)
    source_cursors: dict[str, datetime] = field(default_factory=dict)


# Each activity source's own cursor is stored as object "activities:<source>".
SOURCE_PREFIX = "activities:"

# A stream's pages; which records they hold follows the stream's name.
_Pages = Iterator[Page[Contact]] | Iterator[Page[Activity]] | Iterator[Page[Deletion]]


@task(retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=retry_unless_fatal,
      cache_policy=NONE)  # fmt: skip
def pull_stream(
    crm: Crm,
    stream: str,
    since: datetime | None,
    by_source: bool = False,
    until: datetime | None = None,
) -> PullResult:
    """Pull one stream since `since` into the store; the cursor is returned, not stored.

    With `by_source`, each activity source reads from its own stored cursor. With `until`
    (exclusive) only the window is pulled, and the result has no cursor to store.
    """
    logger = get_run_logger()
    connector = runtime.connector_for(crm)
    engine = runtime.store_engine()
    now = datetime.now(UTC)
    result = PullResult(stream=stream)
    pages: _Pages
    if stream == "activities":
        sources = cursors.cursors_under(engine, crm.value, SOURCE_PREFIX) if by_source else {}
        pages = connector.pull_activities(since, sources, until=until)
    elif stream == "contacts":
        pages = connector.pull_contacts(since, until=until)
    elif stream == "deletions":
        pages = connector.pull_deletions(since, until=until)
    else:
        raise ValueError(f"no such stream: {stream!r} (one of {', '.join(STREAMS)})")
    from flows import progress  # the flow's, when this task runs in its process

    shown = progress.current()
    bad: list[AuditEvent] = []
    # Closed however the loop ends, so that a failure here stops a concurrent pull's
    # workers at once, not when the generator is collected.
    with _closed_at_end(pages):
        for page in pages:
            result.source_cursors.update(page.source_cursors)
            result.pages += 1
            result.records += len(page.records)
            if stream == "contacts":
                contacts = cast("list[Contact]", page.records)
                mirror.upsert_contacts(engine, contacts, now)
                result.changed_contacts.update(c.crm_id for c in contacts)
            elif stream == "activities":
                activities = cast("list[Activity]", page.records)
                mirror.upsert_activities(engine, activities)
                result.changed_contacts.update(a.contact_id for a in activities)
            else:
                deletions = cast("list[Deletion]", page.records)
                mirror.mark_deleted(engine, crm, [d.crm_id for d in deletions])
                bad += conversions(engine, crm, deletions)
            for issue in page.errors:
                # A bad record is reported and skipped; the rest of the run goes on.
                logger.warning(
                    "%s %s %s skipped: %s", crm.value, stream, issue.crm_id, issue.message
                )
                bad.append(
                    AuditEvent(crm.value, issue.crm_id, AuditKind.PULL, f"bad_{stream}", "skipped",
                               message=issue.message)
                )  # fmt: skip
            result.bad_records += len(page.errors)
            result.skipped += page.skipped
            for warning in page.warnings:
                if warning not in result.warnings:
                    logger.warning("%s %s: %s", crm.value, stream, warning)
                    result.warnings.append(warning)
            if page.cursor is not None and (result.cursor is None or page.cursor > result.cursor):
                result.cursor = page.cursor
            shown.page(stream, result.pages, result.records)
    audit.record(engine, bad, run_id(), now)
    logger.info("%s %s: %d records in %d pages", crm.value, stream, result.records, result.pages)
    return result


@contextmanager
def _closed_at_end(pages: Iterator[Any]) -> Iterator[None]:
    """Close a generator of pages however the block ends (a plain iterator has nothing
    to close)."""
    try:
        yield
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def conversions(engine: Engine, crm: Crm, deletions: Sequence[Deletion]) -> list[AuditEvent]:
    """An outcome per lead converted since the last pull, once: sales accepted it.

    Counted in the conversion figures as an acceptance (once per lead, however often the
    overlap brings it again), with the date and the Contact it became, for backtests.
    """
    converted = {d.crm_id: d for d in deletions if d.converted_to or d.converted_at}
    if not converted:
        return []
    known = audit.contacts_with(engine, crm.value, "feedback", "accepted", sorted(converted))
    return [
        AuditEvent(
            crm.value, d.crm_id, AuditKind.FEEDBACK, "accepted",
            detail={
                "converted_to": d.converted_to,
                "converted_at": d.converted_at.isoformat() if d.converted_at else None,
            },
            message="lead converted",
        )
        for crm_id, d in converted.items()
        if crm_id not in known
    ]  # fmt: skip


@task(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_unless_fatal,
      cache_policy=NONE)  # fmt: skip
def score_and_apply(crm: Crm, contact_ids: Sequence[str], dry_run: bool) -> ApplyReport:
    """Score a batch of contacts, plan their writes and (unless a dry run) apply them.

    A failed attempt is an audit row before it is raised: the run's report counts every
    attempt, not only the last one Prefect returns.
    """
    try:
        return _score_and_apply(crm, contact_ids, dry_run)
    except Exception as exc:
        audit.record(
            runtime.store_engine(),
            [AuditEvent(crm.value, None, AuditKind.RUN, "score_and_apply", "failed",
                        detail={"contacts": len(contact_ids)}, message=remedy(exc, crm)[:500])],
            run_id(),
            runtime.now(),
        )  # fmt: skip
        raise


def _score_and_apply(crm: Crm, contact_ids: Sequence[str], dry_run: bool) -> ApplyReport:
    engine = runtime.store_engine()
    now = runtime.now()
    mapping = runtime.mapping_for(crm)
    decided = pipeline.score_and_plan(
        engine, runtime.scoring_model(), crm, list(contact_ids),
        mapping.lead_status.key_for, now, run_id(), record=not dry_run,
    )  # fmt: skip
    if dry_run:
        return apply_report.planned_report(decided)
    return pipeline.apply_plans(
        engine, runtime.connector_for(crm), decided, now, run_id(), worker_name()
    )


@task(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_unless_fatal,
      cache_policy=NONE)  # fmt: skip
def finish_handoffs(crm: Crm) -> ApplyReport:
    """Finish handoffs a crashed run claimed but did not record."""
    return recovery.finish_interrupted_handoffs(
        runtime.store_engine(), runtime.connector_for(crm), runtime.now(), run_id(),
        worker_name(), settle_s=get_settings().settle_s,
    )  # fmt: skip


@dataclass
class Pending:
    """What a run leaves undone or failed, from the store: the truth its report tells."""

    failures: dict[str, int] = field(default_factory=dict)  # by action, every attempt
    handoffs: int = 0  # MQLs whose task is not created yet
    writes: int = 0  # contacts whose writes or stage moves wait for the next run
    in_other_runs: int = 0  # handoffs a concurrent live run is finishing: its to report

    @property
    def anything(self) -> bool:
        return bool(self.handoffs or self.writes)


@task(cache_policy=NONE)
def pending_work(crm: Crm) -> Pending:
    engine = runtime.store_engine()
    current = run_id()
    elsewhere = claims.held_elsewhere(worker_name(), runtime.now())
    left = len(handoffs.unfinished(engine, crm.value, elsewhere))
    return Pending(
        failures=audit.failures_of_run(engine, current) if current else {},
        handoffs=left,
        writes=len(scores.contacts_needing_write(engine, crm.value, elsewhere)),
        in_other_runs=len(handoffs.unfinished(engine, crm.value)) - left,
    )


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
    """The ids, sorted, in lists of at most `size`."""
    return list(chunked(sorted(ids), size))
