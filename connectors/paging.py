"""Paging, written once: a generic paginator and the page type every pull yields."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from connectors.errors import RepeatedPageToken

R = TypeVar("R")
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class RecordIssue:
    """One CRM record that did not become a canonical record, and why."""

    crm_id: str
    message: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """Canonical records from one CRM page, plus the cursor that is safe to store after it.

    `cursor` is None while no progress can be stored yet (e.g. mid-way through an
    id-ordered pull); store/ keeps its previous cursor then. `warnings` name sources
    switched off for this pull (a scope or tier the account lacks), once each.
    `source_cursors` (last page of a pull of several sources) is each source's own
    cursor: a source switched off, or added later, keeps its place.
    """

    records: list[T]
    cursor: datetime | None
    errors: list[RecordIssue] = field(default_factory=list)
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    source_cursors: dict[str, datetime] = field(default_factory=dict)


def paginate(fetch: Callable[[K | None], R], next_token: Callable[[R], K | None]) -> Iterator[R]:
    """Yield responses from `fetch(token)` until `next_token` says there is none.

    Refuses a token it has already seen: a server that hands back the same page
    token would otherwise keep a sync busy forever.
    """
    seen: set[K] = set()
    token: K | None = None
    while True:
        response = fetch(token)
        yield response
        token = next_token(response)
        if token is None:
            return
        if token in seen:
            raise RepeatedPageToken(f"page token {token!r} was returned twice")
        seen.add(token)


class SeenIds:
    """De-duplicates records by id within one pull (overlap windows re-read some)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def first_time(self, crm_id: str) -> bool:
        if crm_id in self._ids:
            return False
        self._ids.add(crm_id)
        return True


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item with a flag that is True for the last one (looks one item ahead)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True
