"""A sorted (modstamp, id) index: the access path of every incremental read.

Both CRMs' sync reads are "records modified in [a, b), in modstamp then id order";
keeping that order in one sorted list turns each page into two `bisect` calls.
Updates move one entry (O(n) memmove, fast enough at 100,000 records).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Generic, TypeVar

K = TypeVar("K", int, str)


class ModIndex(Generic[K]):
    """Sorted (stamp, key) pairs with move-on-update."""

    def __init__(self, entries: Iterable[tuple[int, K]] = ()) -> None:
        self._entries: list[tuple[int, K]] = sorted(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, stamp: int, key: K) -> None:
        insort(self._entries, (stamp, key))

    def remove(self, stamp: int, key: K) -> None:
        i = bisect_left(self._entries, (stamp, key))
        if i < len(self._entries) and self._entries[i] == (stamp, key):
            del self._entries[i]

    def move(self, old: int, new: int, key: K) -> None:
        self.remove(old, key)
        self.add(new, key)

    def keys_between(self, lo: int, hi: int) -> list[K]:
        """Keys whose stamp is in [lo, hi] (inclusive), in (stamp, key) order."""
        entries = self._entries
        start = bisect_left(entries, (lo,))
        end = bisect_left(entries, (hi + 1,))
        return [k for _, k in entries[start:end]]

    def keys(self) -> list[K]:
        return [k for _, k in self._entries]
