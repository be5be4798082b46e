"""One bulk upsert for both dialects: INSERT … ON CONFLICT DO UPDATE in chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

# SQLite allows 32,766 bound parameters a statement; ten columns times 1,000 rows fits both.
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
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        statement = insert(table).values(chunk)
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict),
            set_={name: statement.excluded[name] for name in update},
        )
        connection.execute(statement)
    return len(rows)
