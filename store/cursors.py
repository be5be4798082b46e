"""Cursors: per CRM and object, advanced only after a page's writes are recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlmodel import col

from store.tables import CursorRow, table_of
from store.upsert import bulk_upsert


def cursor_for(engine: Engine, crm: str, obj: str) -> datetime | None:
    with engine.connect() as connection:
        return connection.execute(
            select(col(CursorRow.value)).where(
                col(CursorRow.crm) == crm, col(CursorRow.object) == obj
            )
        ).scalar_one_or_none()


def cursors_under(engine: Engine, crm: str, prefix: str) -> dict[str, datetime]:
    """Cursors whose object starts with `prefix` ("activities:"), keyed by the rest."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(col(CursorRow.object), col(CursorRow.value)).where(
                col(CursorRow.crm) == crm,
                col(CursorRow.object).startswith(prefix),
            )
        ).all()
    return {obj.removeprefix(prefix): value for obj, value in rows if value is not None}


def advance_cursor(engine: Engine, crm: str, obj: str, value: datetime, now: datetime) -> None:
    """Move the cursor forward to `value`; never backwards, even with two runs at once."""
    with engine.begin() as connection:
        bulk_upsert(
            connection,
            table_of(CursorRow),
            [{"crm": crm, "object": obj, "value": value, "updated_at": now}],
            ("crm", "object"),
            ("value", "updated_at"),
            newer="value",
        )
