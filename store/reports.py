"""Read-only summaries of the store for people: what was handed to sales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from store.chunking import in_chunks
from store.db import Bind, reading
from store.tables import ContactRow, HandoffRow, ScoreRow


def handed_off(engine: Engine) -> list[dict[str, Any]]:
    """Every contact handed to sales, best score first, with its task id (None: pending)."""
    query = (
        select(
            col(ScoreRow.crm),
            col(ScoreRow.crm_id),
            col(ScoreRow.total),
            col(ScoreRow.grade),
            col(ContactRow.first_name),
            col(ContactRow.last_name),
            col(ContactRow.company),
            col(HandoffRow.task_id),
        )
        .join(
            ContactRow,
            (col(ContactRow.crm) == col(ScoreRow.crm))
            & (col(ContactRow.crm_id) == col(ScoreRow.crm_id)),
        )
        .join(
            HandoffRow,
            (col(HandoffRow.crm) == col(ScoreRow.crm))
            & (col(HandoffRow.contact_id) == col(ScoreRow.crm_id)),
        )
        .order_by(col(ScoreRow.total).desc())
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


@dataclass(frozen=True)
class Handoff:
    """One handoff of a contact: its key, who claimed it when, and its task once created."""

    key: str
    claimed_at: datetime | None
    claimed_by: str | None
    task_id: str | None  # None: claimed, no task yet
    recorded_at: datetime | None


def last_task_ids(engine: Bind, crm: str, contact_ids: Sequence[str]) -> dict[str, str | None]:
    """Each contact's task id from its latest handoff (None: claimed, no task yet), by
    id; a contact never handed off is missing. One query per `IN` chunk."""
    latest: dict[str, str | None] = {}
    with reading(engine) as connection:
        for chunk in in_chunks(list(dict.fromkeys(contact_ids))):
            rows = connection.execute(
                select(col(HandoffRow.contact_id), col(HandoffRow.task_id))
                .where(col(HandoffRow.crm) == crm, col(HandoffRow.contact_id).in_(chunk))
                .order_by(col(HandoffRow.claimed_at), col(HandoffRow.key))
            ).all()
            # Oldest first, so each contact ends with its latest, as `handoffs_of(...)[-1]`.
            latest.update((contact_id, task_id) for contact_id, task_id in rows)
    return latest


def handoffs_of(engine: Bind, crm: str, contact_id: str) -> list[Handoff]:
    """The contact's handoffs (one per MQL transition), oldest claim first."""
    with reading(engine) as connection:
        rows = connection.execute(
            select(
                col(HandoffRow.key),
                col(HandoffRow.claimed_at),
                col(HandoffRow.claimed_by),
                col(HandoffRow.task_id),
                col(HandoffRow.recorded_at),
            )
            .where(col(HandoffRow.crm) == crm, col(HandoffRow.contact_id) == contact_id)
            .order_by(col(HandoffRow.claimed_at), col(HandoffRow.key))
        ).all()
    return [
        Handoff(key=key, claimed_at=at, claimed_by=by, task_id=task_id, recorded_at=recorded)
        for key, at, by, task_id, recorded in rows
    ]
