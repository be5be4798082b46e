"""Read-only summaries of the store for people: what was handed to sales."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

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
