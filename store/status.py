"""What `mqlsync status` reads: runs, cursors, claims and failing writes, from the store only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlmodel import col

from store.audit import AuditKind
from store.chunking import in_chunks
from store.db import Bind, reading
from store.tables import AuditRow, CursorRow, HandoffRow, ScoreRow

# Write outcomes that did not land for sure: refused, or sent and never read back.
FAILED_WRITE_OUTCOMES = ("failed", "unconfirmed")


@dataclass(frozen=True)
class RunSummary:
    """One flow run as the audit log saw it (runs that recorded nothing do not appear)."""

    flow_run_id: str | None
    first_at: datetime | None
    last_at: datetime | None
    decisions: int
    writes: int
    failures: int  # failed outcomes of any kind, every attempt counted


@dataclass(frozen=True)
class Cursor:
    object: str
    value: datetime | None  # the high-water mark: records up to here are pulled
    updated_at: datetime | None  # when it last moved


@dataclass(frozen=True)
class Claim:
    """Work a run has claimed and not finished: a handoff without a task, or a write."""

    kind: str  # "handoff" | "write"
    contact_id: str
    key: str | None  # the handoff key (None for a write claim)
    owner: str | None  # None: given back, any run may finish it
    since: datetime | None


@dataclass(frozen=True)
class FailingContact:
    """A contact whose writes failed (needs_write) and what its last failed write said."""

    contact_id: str
    failures: int  # failed write outcomes the audit holds for it
    last_at: datetime | None
    last_action: str | None
    last_outcome: str | None
    last_message: str | None


def last_runs(engine: Bind, crm: str, limit: int = 10) -> list[RunSummary]:
    """The latest runs that audited something for `crm`, newest first."""

    first = func.min(col(AuditRow.at))
    last = func.max(col(AuditRow.at))
    query = (
        select(
            col(AuditRow.flow_run_id),
            first,
            last,
            _count_of(col(AuditRow.kind) == AuditKind.DECISION.value),
            _count_of(col(AuditRow.kind) == AuditKind.WRITE.value),
            _count_of(col(AuditRow.outcome) == "failed"),
        )
        .where(col(AuditRow.crm) == crm)
        .group_by(col(AuditRow.flow_run_id))
        .order_by(last.desc(), col(AuditRow.flow_run_id))
        .limit(limit)
    )
    with reading(engine) as connection:
        rows = connection.execute(query).all()
    return [
        RunSummary(
            flow_run_id=run,
            first_at=first_at,
            last_at=last_at,
            decisions=int(decisions),
            writes=int(writes),
            failures=int(failures),
        )
        for run, first_at, last_at, decisions, writes, failures in rows
    ]


def _count_of(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows of the group meet `condition`."""
    return func.sum(case((condition, 1), else_=0))


def cursors(engine: Bind, crm: str) -> list[Cursor]:
    """Every cursor of `crm` (contacts, deletions, activities and per-source ones), by name."""
    with reading(engine) as connection:
        rows = connection.execute(
            select(col(CursorRow.object), col(CursorRow.value), col(CursorRow.updated_at))
            .where(col(CursorRow.crm) == crm)
            .order_by(col(CursorRow.object))
        ).all()
    return [Cursor(object=obj, value=value, updated_at=at) for obj, value, at in rows]


def claims_in_progress(engine: Bind, crm: str) -> list[Claim]:
    """Handoffs claimed without a task yet, then contacts held by a write claim; oldest first."""
    with reading(engine) as connection:
        handoffs = connection.execute(
            select(
                col(HandoffRow.contact_id),
                col(HandoffRow.key),
                col(HandoffRow.claimed_by),
                col(HandoffRow.claimed_at),
            )
            .where(col(HandoffRow.crm) == crm, col(HandoffRow.task_id).is_(None))
            .order_by(col(HandoffRow.claimed_at), col(HandoffRow.key))
        ).all()
        writes = connection.execute(
            select(col(ScoreRow.crm_id), col(ScoreRow.writing_by), col(ScoreRow.writing_at))
            .where(col(ScoreRow.crm) == crm, col(ScoreRow.writing_by).is_not(None))
            .order_by(col(ScoreRow.writing_at), col(ScoreRow.crm_id))
        ).all()
    return [
        Claim(kind="handoff", contact_id=contact, key=key, owner=owner, since=at)
        for contact, key, owner, at in handoffs
    ] + [
        Claim(kind="write", contact_id=contact, key=None, owner=owner, since=at)
        for contact, owner, at in writes
    ]


def failing_writes(engine: Bind, crm: str) -> list[FailingContact]:
    """Contacts marked needs_write, most failed writes first, with their last failed write."""
    with reading(engine) as connection:
        contact_ids = list(
            connection.execute(
                select(col(ScoreRow.crm_id))
                .where(col(ScoreRow.crm) == crm, col(ScoreRow.needs_write) == True)  # noqa: E712
                .order_by(col(ScoreRow.crm_id))
            ).scalars()
        )
        counts: dict[str, int] = {}
        last: dict[str, tuple[datetime | None, str, str | None, str | None]] = {}
        for chunk in in_chunks(contact_ids):
            rows = connection.execute(
                select(
                    col(AuditRow.contact_id),
                    col(AuditRow.at),
                    col(AuditRow.action),
                    col(AuditRow.outcome),
                    col(AuditRow.message),
                )
                .where(
                    col(AuditRow.crm) == crm,
                    col(AuditRow.kind) == AuditKind.WRITE.value,
                    col(AuditRow.outcome).in_(FAILED_WRITE_OUTCOMES),
                    col(AuditRow.contact_id).in_(chunk),
                )
                .order_by(col(AuditRow.id))
            ).all()
            for contact, at, action, outcome, message in rows:
                if contact is None:  # no NULL passes the IN: this only narrows the type
                    continue
                counts[contact] = counts.get(contact, 0) + 1
                last[contact] = (at, action, outcome, message)
    found: list[FailingContact] = []
    for contact in contact_ids:
        at, action, outcome, message = last.get(contact, (None, None, None, None))
        found.append(
            FailingContact(
                contact_id=contact,
                failures=counts.get(contact, 0),
                last_at=at,
                last_action=action,
                last_outcome=outcome,
                last_message=message,
            )
        )
    return sorted(found, key=lambda f: -f.failures)  # stable: by id within a count
