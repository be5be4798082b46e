"""Id lists cut to the size one `IN (...)` may bind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from more_itertools import chunked

T = TypeVar("T")

# SQLite binds at most 999 parameters per statement in older builds; each chunk leaves
# room for the few other parameters of the query.
IN_CHUNK = 900


def in_chunks(ids: Sequence[T]) -> Iterator[Sequence[T]]:
    """Consecutive runs of `ids`, in order, each small enough for one `IN (...)`."""
    return chunked(ids, IN_CHUNK)
