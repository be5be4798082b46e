"""Cursors: per CRM and object, advanced only after a page's writes are recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from store.tables import CursorRow
from store.upsert import bulk_upsert


def cursor_for(engine: Engine, crm: str, obj: str) -> datetime | None:
    with engine.connect() as connection:
        return connection.execute(
            select(CursorRow.value).where(CursorRow.crm == crm, CursorRow.object == obj)
        ).scalar_one_or_none()


def cursors_under(engine: Engine, crm: str, prefix: str) -> dict[str, datetime]:
    """Cursors whose object starts with `prefix` ("activities:"), keyed by the rest."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(CursorRow.object, CursorRow.value).where(
                CursorRow.crm == crm,
                CursorRow.object.startswith(prefix),  # type: ignore[attr-defined]
            )
        ).all()
    return {obj.removeprefix(prefix): value for obj, value in rows if value is not None}


def advance_cursor(engine: Engine, crm: str, obj: str, value: datetime, now: datetime) -> None:
    """Move the cursor forward to `value`; never backwards, even with two runs at once."""
    with engine.begin() as connection:
        bulk_upsert(
            connection,
            CursorRow.__table__,  # type: ignore[arg-type]
            [{"crm": crm, "object": obj, "value": value, "updated_at": now}],
            ("crm", "object"),
            ("value", "updated_at"),
            newer="value",
        )
