"""One throttle that every request passes, so a process stays under the CRM's budget.

A `TokenBucket` bounds one process. Several workers share a budget through
`Throttle.shared`, a hook that can call e.g. Prefect's global concurrency
`rate_limit(name)` before each request once flows run on many machines.
`RateLimitHeaders` paces by what the CRM itself says is left (HubSpot's
`X-HubSpot-RateLimit-*` answer headers), which counts every app of the account.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; `acquire` blocks until one is free."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, cost: float = 1.0) -> float:
        """Take `cost` tokens, sleeping as long as needed; returns the time slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= cost
            # Tokens may go negative: the debt is the wait, and later callers queue behind it.
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def hold(self, seconds: float) -> None:
        """Hand out no token for `seconds` from now, to whoever asks: the CRM answered a
        429, and every worker sharing the bucket must slow down, not only the one that got
        it. Holds do not add up: the later end wins."""
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            # With this many tokens, the next `acquire` waits exactly `seconds`.
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate)


SharedLimit = Callable[[str], None]


class Throttle:
    """Named buckets (e.g. "default", "search") plus an optional shared, cross-process hook."""

    def __init__(
        self, buckets: Mapping[str, TokenBucket], *, shared: SharedLimit | None = None
    ) -> None:
        if "default" not in buckets:
            raise ValueError("a throttle needs a 'default' bucket")
        self._buckets = dict(buckets)
        self.shared = shared

    def acquire(self, *names: str) -> None:
        """Wait for the default bucket and each named one, then for the shared limits of
        the same names (a search takes a slot of the shared search limit too: HubSpot
        counts its search requests per account, whatever the number of workers)."""
        for name in ("default", *names):
            bucket = self._buckets.get(name)
            if bucket is not None:
                bucket.acquire()
        if self.shared is not None:
            for name in ("default", *names):
                self.shared(name)

    def hold(self, name: str, seconds: float) -> None:
        """Hold the named bucket (if there is one) for `seconds`: see `TokenBucket.hold`.
        The shared, cross-process limits are not held: they count requests, not answers."""
        bucket = self._buckets.get(name)
        if bucket is not None:
            bucket.hold(seconds)


class DailyQuota(NamedTuple):
    """The account's daily request limit and what is left of it, as last answered."""

    limit: int
    remaining: int


HEADER_PREFIX = "x-hubspot-ratelimit-"


class RateLimitHeaders:
    """Paces requests by the rate-limit headers of the CRM's last answer.

    HubSpot answers most requests (not the search endpoints) with the size of its rolling
    window (`-Max` requests per `-Interval-Milliseconds`), what is left in it
    (`-Remaining`) and, for private apps, the daily limit (`-Daily`,
    `-Daily-Remaining`). The window is shared with every other app of the account, so
    the local token bucket alone cannot know when it runs low. While more than
    `reserve` of the window is left nothing waits; below that, requests are spaced at
    the window's average rate; with nothing left, the next request waits until the
    window seen in the last answer has passed.
    """

    def __init__(
        self,
        reserve: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._max: int | None = None
        self._remaining = 0
        self._interval_s = 0.0
        self._seen_at = 0.0
        self._sent_since = 0
        self._next_at = 0.0
        self._daily: DailyQuota | None = None

    def observe(self, headers: Mapping[str, Any] | None) -> None:
        """Take the rate-limit headers of one answer (answers without them change nothing)."""
        if not headers:
            return
        try:
            values = {
                str(k).lower()[len(HEADER_PREFIX) :]: int(str(v))
                for k, v in headers.items()
                if str(k).lower().startswith(HEADER_PREFIX)
            }
        except ValueError:
            return  # a malformed value: keep what the previous answers said
        with self._lock:
            if {"max", "remaining", "interval-milliseconds"} <= values.keys():
                self._max = max(1, values["max"])
                self._remaining = values["remaining"]
                self._interval_s = values["interval-milliseconds"] / 1000.0
                self._seen_at = self._clock()
                self._sent_since = 0
            if {"daily", "daily-remaining"} <= values.keys():
                self._daily = DailyQuota(values["daily"], values["daily-remaining"])

    def pace(self) -> float:
        """Wait as the last answer's window asks, before one request; returns the time slept."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._max is not None:
                left = self._remaining - self._sent_since
                low = max(1, math.ceil(self._max * self.reserve))
                if left <= 0:
                    # Every request counted in that answer has left the rolling window by
                    # the end of one interval after it.
                    wait = max(0.0, self._seen_at + self._interval_s - now)
                elif left <= low:
                    wait = max(0.0, self._next_at - now)
                self._next_at = now + wait + self._interval_s / self._max
                self._sent_since += 1
        if wait > 0:
            self._sleep(wait)
        return wait

    def quota(self) -> DailyQuota | None:
        """The daily limit and what is left of it, or None if no answer has said."""
        with self._lock:
            return self._daily
