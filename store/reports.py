"""Read-only summaries of the store for people: what was handed to sales."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from store.tables import ContactRow, HandoffRow, ScoreRow


def handed_off(engine: Engine) -> list[dict[str, Any]]:
    """Every contact handed to sales, best score first, with its task id (None: pending)."""
    query = (
        select(
            ScoreRow.crm,
            ScoreRow.crm_id,
            ScoreRow.total,
            ScoreRow.grade,
            ContactRow.first_name,
            ContactRow.last_name,
            ContactRow.company,
            HandoffRow.task_id,
        )
        .join(
            ContactRow,
            (ContactRow.crm == ScoreRow.crm) & (ContactRow.crm_id == ScoreRow.crm_id),  # type: ignore[arg-type]
        )
        .join(
            HandoffRow,
            (HandoffRow.crm == ScoreRow.crm) & (HandoffRow.contact_id == ScoreRow.crm_id),  # type: ignore[arg-type]
        )
        .order_by(ScoreRow.total.desc())  # type: ignore[attr-defined]
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
