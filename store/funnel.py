"""The MQL funnel from the audit log: MQLs handed to sales and what sales made of them.

An MQL begins with a `decision`/`promoted_to_mql` row. Sales' verdict on it is the latest
`feedback`/`accepted` (an SQL stage read, a lead converted) or `decision`/`recycled` (sales
rejected or recycled it) recorded after the promotion, so a recycled lead that was later
converted counts as accepted. A contact promoted again before any verdict, for the same
handoff, is the same MQL (a promotion whose stage move failed and was retried); once it
has a verdict, or with a new handoff number, a promotion is a new MQL.

MQLs are grouped by when they began, and their verdicts are those recorded so far, later
than the window included: an MQL of March accepted in April counts as accepted in March.
Windows are `[since, until)`; the caller gives the times, this module never reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, select

from store.tables import AuditRow, ScoreRow, table_of

UNKNOWN_GRADE = "unknown"
ACCEPTED = "accepted"
REJECTED = "rejected"  # rejected or recycled to nurture

_AUDIT: Table = table_of(AuditRow)
_SCORES: Table = table_of(ScoreRow)


@dataclass(frozen=True)
class Mql:
    """One MQL: the contact, when it was promoted, its grade then, and sales' verdict."""

    contact_id: str
    promoted_at: datetime
    grade: str
    handoff: str | None = None
    verdict: str | None = None  # ACCEPTED, REJECTED, or None while sales has not said


@dataclass(frozen=True)
class Funnel:
    """MQLs handed to sales and how many of them sales accepted, rejected, left open.

    `conversion` is MQL -> SQL conversion: accepted over every MQL handed over, open ones
    counting as not (yet) converted. It is the figure the healthy 15-30% band and
    `mqlsync backtest` speak of; it reads low for MQLs too young to have a verdict.
    `acceptance` is accepted over the MQLs sales decided on (accepted plus rejected).
    """

    mqls: int = 0
    accepted: int = 0
    rejected: int = 0

    @property
    def open(self) -> int:
        return self.mqls - self.accepted - self.rejected

    @property
    def decided(self) -> int:
        return self.accepted + self.rejected

    @property
    def conversion(self) -> float | None:
        return self.accepted / self.mqls if self.mqls else None

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.decided if self.decided else None

    @classmethod
    def of(cls, mqls: Iterable[Mql]) -> Funnel:
        verdicts = [m.verdict for m in mqls]
        return cls(
            mqls=len(verdicts),
            accepted=verdicts.count(ACCEPTED),
            rejected=verdicts.count(REJECTED),
        )


def mqls_between(engine: Engine, crm: str, since: datetime, until: datetime) -> list[Mql]:
    """The MQLs begun in `[since, until)`, each contact once: its latest MQL in the window.

    The grade is the one the promotion recorded; where it recorded none, the contact's
    current grade in the scores table, else `unknown`.
    """
    return _latest_per_contact(_begun(engine, crm, since, until))


def funnel(engine: Engine, crm: str, since: datetime, until: datetime) -> Funnel:
    """MQLs begun in `[since, until)` and sales' verdicts on them so far."""
    return Funnel.of(mqls_between(engine, crm, since, until))


def funnel_by_grade(
    engine: Engine, crm: str, since: datetime, until: datetime
) -> dict[str, Funnel]:
    """The window's funnel by grade at promotion: grades in order, `unknown` last."""
    by_grade: dict[str, list[Mql]] = {}
    for mql in mqls_between(engine, crm, since, until):
        by_grade.setdefault(mql.grade, []).append(mql)
    order = sorted(by_grade, key=lambda grade: (grade == UNKNOWN_GRADE, grade))
    return {grade: Funnel.of(by_grade[grade]) for grade in order}


def funnel_by_month(
    engine: Engine, crm: str, months: int, until: datetime
) -> list[tuple[str, Funnel]]:
    """The funnel of each of the last `months` calendar months (UTC), oldest first.

    The last is the month `until` falls in, up to `until`; a contact counts once a month.
    """
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    starts = _month_starts(until, months)
    begun = _begun(engine, crm, starts[0], until)
    table: list[tuple[str, Funnel]] = []
    for start, end in zip(starts, [*starts[1:], until], strict=True):
        inside = [m for m in begun if start <= m.promoted_at < end]
        table.append((f"{start:%Y-%m}", Funnel.of(_latest_per_contact(inside))))
    return table


def _month_starts(until: datetime, months: int) -> list[datetime]:
    until = until.astimezone(UTC)
    year, month = until.year, until.month
    starts = []
    for _ in range(months):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _latest_per_contact(mqls: Iterable[Mql]) -> list[Mql]:
    latest: dict[str, Mql] = {}
    for mql in mqls:
        if mql.contact_id not in latest or mql.promoted_at >= latest[mql.contact_id].promoted_at:
            latest[mql.contact_id] = mql
    return sorted(latest.values(), key=lambda m: (m.promoted_at, m.contact_id))


def _begun(engine: Engine, crm: str, since: datetime, until: datetime) -> list[Mql]:
    """Every MQL begun in the window, from the whole history of the contacts promoted in it.

    The history before the window decides whether a promotion in it begins a new MQL;
    the verdicts after it are the MQL's fate so far.
    """
    a, s = _AUDIT.c, _SCORES.c
    promoted = (a.kind == "decision") & (a.action == "promoted_to_mql")
    verdict = ((a.kind == "decision") & (a.action == "recycled")) | (
        (a.kind == "feedback") & (a.action == "accepted")
    )
    promoted_in_window = select(a.contact_id).where(
        a.crm == crm, promoted, a.at >= since, a.at < until
    )
    query = (
        select(
            a.contact_id,
            a.at,
            a.action,
            a.detail["grade"].as_string(),
            a.detail[("planned", "handoff")].as_string(),
            s.grade,
        )
        .select_from(_AUDIT.outerjoin(_SCORES, (s.crm == a.crm) & (s.crm_id == a.contact_id)))
        .where(a.crm == crm, a.contact_id.in_(promoted_in_window), promoted | verdict)
        # Rows of one run share its instant; the id keeps the order they were written in.
        .order_by(a.contact_id, a.at, a.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [m for m in _fold(rows) if since <= m.promoted_at < until]


def _fold(rows: Sequence[Any]) -> list[Mql]:
    """Each contact's events, oldest first, as its MQLs with their latest verdicts."""
    found: list[Mql] = []
    current: Mql | None = None
    for contact_id, at, action, grade_then, handoff, grade_now in rows:
        if current is not None and current.contact_id != contact_id:
            found.append(current)
            current = None
        if action == "promoted_to_mql":
            if current is not None and not _new_mql(current, handoff):
                continue
            if current is not None:
                found.append(current)
            grade = grade_then or grade_now or UNKNOWN_GRADE
            current = Mql(contact_id, at, grade, handoff)
        elif current is not None:
            current = replace(current, verdict=ACCEPTED if action == "accepted" else REJECTED)
        # A verdict before any promotion of the contact is on an MQL this log never saw.
    if current is not None:
        found.append(current)
    return found


def _new_mql(current: Mql, handoff: str | None) -> bool:
    if current.verdict is not None:
        return True
    return handoff is not None and current.handoff is not None and handoff != current.handoff
