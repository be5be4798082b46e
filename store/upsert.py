"""One bulk upsert for both dialects: INSERT … ON CONFLICT DO UPDATE, executed many."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

# Rows sent to the driver per call: bounds memory of one call, not the statement size.
CHUNK_ROWS = 1_000


def bulk_upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
) -> int:
    """Insert `rows`, updating `update` columns where `conflict` columns already exist."""
    dialect = connection.dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
    if not rows:
        return 0
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_={name: statement.excluded[name] for name in update},
    )
    # One compiled statement run with many parameter sets: the drivers batch it (SQLite's
    # executemany, psycopg's pipeline), and SQLAlchemy compiles it once, not per chunk.
    for start in range(0, len(rows), CHUNK_ROWS):
        connection.execute(statement, list(rows[start : start + CHUNK_ROWS]))
    return len(rows)
