"""The audit log: every decision and every write outcome, with its flow run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlmodel import col

from store.db import Bind, reading, writing
from store.tables import AuditRow


class AuditKind(StrEnum):
    """What an audit row records."""

    DECISION = "decision"  # a lifecycle decision and the plan made from it
    WRITE = "write"  # a write to the CRM and its outcome
    FEEDBACK = "feedback"  # what sales did (accepted, converted)
    CLAIM = "claim"  # a handoff claim another run held
    PULL = "pull"  # a record a pull reported and skipped
    RUN = "run"  # a batch that failed all its attempts


@dataclass(frozen=True)
class AuditEvent:
    crm: str
    contact_id: str | None
    kind: AuditKind
    action: str
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    def __post_init__(self) -> None:
        # A kind given as its text is checked and kept as the enum.
        object.__setattr__(self, "kind", AuditKind(self.kind))


def record(engine: Bind, events: list[AuditEvent], flow_run_id: str | None, at: datetime) -> None:
    """Append events; a decision a retried attempt of the same run makes again is kept once."""
    if flow_run_id is not None and any(e.kind is AuditKind.DECISION for e in events):
        known = _decisions_of_run(engine, flow_run_id)
        events = [
            e
            for e in events
            if e.kind is not AuditKind.DECISION or (e.crm, e.contact_id, e.action) not in known
        ]
    if not events:
        return
    rows = [
        {
            "at": at,
            "flow_run_id": flow_run_id,
            "crm": e.crm,
            "contact_id": e.contact_id,
            "kind": e.kind.value,
            "action": e.action,
            "outcome": e.outcome,
            "detail": e.detail,
            "message": e.message,
        }
        for e in events
    ]
    with writing(engine) as connection:
        connection.execute(insert(AuditRow), rows)


def _decisions_of_run(engine: Bind, flow_run_id: str) -> set[tuple[str, str | None, str]]:
    with reading(engine) as connection:
        rows = connection.execute(
            select(col(AuditRow.crm), col(AuditRow.contact_id), col(AuditRow.action)).where(
                col(AuditRow.flow_run_id) == flow_run_id,
                col(AuditRow.kind) == AuditKind.DECISION.value,
            )
        ).all()
    return {(crm, contact, action) for crm, contact, action in rows}


def failures_of_run(engine: Engine, flow_run_id: str) -> dict[str, int]:
    """Failed outcomes this run recorded, by action, over every attempt of every task."""
    from sqlalchemy import func

    with engine.connect() as connection:
        rows = connection.execute(
            select(col(AuditRow.action), func.count())
            .where(
                col(AuditRow.flow_run_id) == flow_run_id,
                col(AuditRow.outcome) == "failed",
            )
            .group_by(col(AuditRow.action))
        ).all()
    return {action: int(n) for action, n in rows}


def contacts_with(
    engine: Engine, crm: str, kind: str, action: str, contact_ids: list[str]
) -> set[str]:
    """Those of these contacts that already have an event of this kind and action."""
    found: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(contact_ids), 500):
            ids = connection.execute(
                select(col(AuditRow.contact_id)).where(
                    col(AuditRow.crm) == crm,
                    col(AuditRow.kind) == kind,
                    col(AuditRow.action) == action,
                    col(AuditRow.contact_id).in_(contact_ids[start : start + 500]),
                )
            ).scalars()
            # The column is nullable, but no NULL passes the IN: this only narrows the type.
            found.update(contact_id for contact_id in ids if contact_id is not None)
    return found


def acceptances(engine: Engine, crm: str) -> dict[str, datetime]:
    """When sales first accepted each contact (an SQL stage read, a lead converted).

    A converted lead's acceptance counts for the Contact it became as well: that is the
    record the person lives on in. The date is the conversion's where the CRM gave one.
    """
    first: dict[str, datetime] = {}
    for contact_id, at, detail in _accepted_rows(engine, crm):
        detail = detail or {}
        when = datetime.fromisoformat(detail["converted_at"]) if detail.get("converted_at") else at
        for crm_id in (contact_id, detail.get("converted_to")):
            if crm_id and when is not None:
                keep_earliest(first, crm_id, when)
    return first


def conversions(engine: Engine, crm: str) -> dict[str, str]:
    """The Contact each converted lead became, by lead id (from the acceptances)."""
    return {
        lead: str(detail["converted_to"])
        for lead, _, detail in _accepted_rows(engine, crm)
        if lead and detail and detail.get("converted_to")
    }


def keep_earliest(found: dict[str, datetime], key: str, at: datetime) -> None:
    """Record `at` for `key` unless an earlier instant is already there."""
    if key not in found or at < found[key]:
        found[key] = at


def _accepted_rows(engine: Engine, crm: str) -> list[Any]:
    """(contact id, at, detail) of every acceptance by sales the log holds for `crm`."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(col(AuditRow.contact_id), col(AuditRow.at), col(AuditRow.detail)).where(
                    col(AuditRow.crm) == crm,
                    col(AuditRow.kind) == AuditKind.FEEDBACK.value,
                    col(AuditRow.action) == "accepted",
                )
            ).all()
        )


def history(engine: Engine, crm: str, contact_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditRow)
            .where(col(AuditRow.crm) == crm, col(AuditRow.contact_id) == contact_id)
            .order_by(col(AuditRow.id))
        ).mappings()
        return [dict(row) for row in rows]


def conversion(engine: Engine, crm: str) -> dict[str, int]:
    """MQLs handed to sales, accepted (SQL or later) and recycled, from the audit log."""
    from sqlalchemy import func

    with engine.connect() as connection:
        rows = connection.execute(
            select(col(AuditRow.action), func.count(func.distinct(col(AuditRow.contact_id))))
            .where(
                col(AuditRow.crm) == crm,
                col(AuditRow.action).in_(["promoted_to_mql", "accepted", "recycled"]),
                col(AuditRow.kind).in_([AuditKind.DECISION.value, AuditKind.FEEDBACK.value]),
            )
            .group_by(col(AuditRow.action))
        ).all()
    counts = {action: int(n) for action, n in rows}
    return {
        "mqls": counts.get("promoted_to_mql", 0),
        "accepted": counts.get("accepted", 0),
        "recycled": counts.get("recycled", 0),
    }
