"""One throttle that every request passes, so a process stays under the CRM's budget.

A `TokenBucket` bounds one process. Several workers share a budget through
`Throttle.shared`, a hook that can call e.g. Prefect's global concurrency
`rate_limit(name)` before each request once flows run on many machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


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
        """Wait for the default bucket and each named one, then for the shared limit."""
        for name in ("default", *names):
            bucket = self._buckets.get(name)
            if bucket is not None:
                bucket.acquire()
        if self.shared is not None:
            self.shared("default")
