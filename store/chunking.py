"""Id lists cut to the size one `IN (...)` may bind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# SQLite binds at most 999 parameters per statement in older builds; each chunk leaves
# room for the few other parameters of the query.
IN_CHUNK = 900


def in_chunks(ids: Sequence[T]) -> Iterator[Sequence[T]]:
    """Consecutive slices of `ids`, each small enough for one `IN (...)`."""
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]
