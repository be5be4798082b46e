"""Time helpers: the sandbox keeps every timestamp as integer epoch milliseconds.

Integers keep per-record storage small and make range indexes plain `bisect` calls;
these helpers convert at the HTTP edge to the formats each CRM uses.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from datetime import UTC, datetime

# Synthetic data is anchored here by default, so that the same seed gives the same data
# whatever day it is generated on.
DEFAULT_AS_OF_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z

DAY_MS = 86_400_000

_last_now = 0


def now_ms() -> int:
    """Wall-clock milliseconds, strictly increasing across calls.

    Writes stamp records with this; strict increase keeps modstamp order stable for
    readers that page on (modstamp, id).
    """
    global _last_now
    value = max(int(time.time() * 1000), _last_now + 1)
    _last_now = value
    return value


def wall_ms() -> int:
    """Wall-clock milliseconds, as they are: for measuring delays such as the search lag.

    `now_ms` runs ahead of the wall clock when many records are stamped within one
    millisecond (a bulk write of thousands stamps thousands of milliseconds); a delay
    measured against it would last that much longer than asked.
    """
    return int(time.time() * 1000)


def hubspot_iso(ms: int) -> str:
    """HubSpot's timestamp format: `2026-01-31T09:00:00.000Z`."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def salesforce_iso(ms: int) -> str:
    """Salesforce's datetime format: `2026-01-31T09:00:00.000+0000`."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def salesforce_date(ms: int) -> str:
    """Salesforce's date format: `2026-01-31`."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def parse_instant(text: str) -> int:
    """Epoch ms from an ISO 8601 datetime (`Z` or offset) or an epoch-ms string.

    Raises ValueError on anything else. A naive datetime is taken as UTC.
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    value = text.replace("Z", "+00:00") if text.endswith("Z") else text
    # Salesforce writes offsets without a colon (+0000); fromisoformat accepts both in 3.11.
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


class DataClock:
    """The data's "now": the population's `as_of`, moved forward by admin advances.

    `marks` are the as-of instants, the population's first; each advance appends the
    next. What an advance generates is dated in its window, (previous mark, mark], so
    that records derived from it (a call before a meeting, a follow-up after a demo
    request) can be kept inside that window too.
    """

    def __init__(self, origin_ms: int) -> None:
        self.marks = [origin_ms]

    @property
    def origin_ms(self) -> int:
        return self.marks[0]

    @property
    def as_of_ms(self) -> int:
        return self.marks[-1]

    def window(self, ts: int) -> tuple[int | None, int]:
        """(start, end) of the window `ts` falls in; start is None for the generated past."""
        i = min(bisect_left(self.marks, ts), len(self.marks) - 1)
        return (self.marks[i - 1] if i else None), self.marks[i]

    def clamp(self, ts: int, anchor: int) -> int:
        """`ts` (derived from an activity at `anchor`) kept inside the anchor's window."""
        start, end = self.window(anchor)
        return min(end, ts if start is None else max(start + 1, ts))
