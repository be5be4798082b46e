"""One bulk upsert for both dialects: INSERT … ON CONFLICT DO UPDATE, executed many."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

# Rows sent to the driver per call: bounds memory of one call, not the statement size.
CHUNK_ROWS = 1_000

# The dialects' own inserts: they alone have ON CONFLICT (`excluded`, `on_conflict_do_update`).
_INSERTS: dict[str, Callable[[Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def bulk_upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
    newer: str | None = None,
) -> int:
    """Insert `rows`, updating `update` columns where `conflict` columns already exist.

    With `newer`, an existing row is updated only when the incoming value of that column
    is later than the stored one (or the stored one is unknown).
    """
    dialect = connection.dialect.name
    insert = _INSERTS[dialect]
    if not rows:
        return 0
    statement = insert(table)
    where = None
    if newer is not None:
        stored, incoming = table.c[newer], statement.excluded[newer]
        where = or_(stored.is_(None), incoming.is_(None), incoming > stored)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_={name: statement.excluded[name] for name in update},
        where=where,
    )
    # One compiled statement run with many parameter sets: the drivers batch it (SQLite's
    # executemany, psycopg's pipeline), and SQLAlchemy compiles it once, not per chunk.
    for start in range(0, len(rows), CHUNK_ROWS):
        connection.execute(statement, list(rows[start : start + CHUNK_ROWS]))
    return len(rows)
