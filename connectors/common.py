"""Small helpers the two connectors share: batching, overlap, write outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from scoring.records import Crm, LifecycleStage
from scoring.writes import OutcomeStatus, WriteOutcome

T = TypeVar("T")

STAGE_ORDER: tuple[LifecycleStage, ...] = tuple(LifecycleStage)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def groups(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items from any iterable (consumed lazily)."""
    group: list[T] = []
    for item in items:
        group.append(item)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def window_start(since: datetime | None, overlap_minutes: float) -> datetime | None:
    """Where a pull starts: the stored cursor minus the overlap window."""
    return None if since is None else since - timedelta(minutes=overlap_minutes)


def is_backward(from_stage: LifecycleStage | None, to_stage: LifecycleStage) -> bool:
    """True when a stage change moves against the lifecycle's forward order."""
    return from_stage is not None and STAGE_ORDER.index(to_stage) < STAGE_ORDER.index(from_stage)


def ok(crm: Crm, target: str, object_id: str | None = None, attempts: int = 1) -> WriteOutcome:
    return WriteOutcome(
        crm=crm, target=target, status=OutcomeStatus.OK, crm_object_id=object_id, attempts=attempts
    )


def failed(crm: Crm, target: str, message: str, attempts: int = 1) -> WriteOutcome:
    return WriteOutcome(
        crm=crm, target=target, status=OutcomeStatus.FAILED, message=message, attempts=attempts
    )
