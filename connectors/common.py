"""Small helpers the two connectors share: batching, overlap, write outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from more_itertools import chunked

# The lifecycle's forward order is scoring's rule; re-exported for the connectors and flows.
from scoring.lifecycle import is_backward as is_backward
from scoring.records import Crm
from scoring.writes import OutcomeStatus, WriteOutcome

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive runs of at most `size` items, in order."""
    return chunked(items, size)


def groups(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items from any iterable (consumed lazily)."""
    return chunked(items, size)


def window_start(since: datetime | None, overlap_minutes: float) -> datetime | None:
    """Where a pull starts: the stored cursor minus the overlap window."""
    return None if since is None else since - timedelta(minutes=overlap_minutes)


def ok(crm: Crm, target: str, object_id: str | None = None, attempts: int = 1) -> WriteOutcome:
    return WriteOutcome(
        crm=crm, target=target, status=OutcomeStatus.OK, crm_object_id=object_id, attempts=attempts
    )


def failed(crm: Crm, target: str, message: str, attempts: int = 1) -> WriteOutcome:
    return WriteOutcome(
        crm=crm, target=target, status=OutcomeStatus.FAILED, message=message, attempts=attempts
    )
