"""Realistic answer times: a seeded log-normal delay per request, by endpoint family.

A real CRM answers in hundreds of milliseconds; the sandbox in a few. With a latency
profile on, the gate waits before serving each CRM request that passed authentication,
limits and faults, for a delay drawn from the request's family: log-normal with the
family's median (times the profile's `scale`) and a spread `sigma`, so that most answers
come near the median and a few come late. The wait is an `asyncio.sleep` on the server's
event loop, as the `slow` fault's is: it costs no CPU and holds no other request.

The draws come from one generator seeded with `seed`, in the order requests reach the
gate: the same seed and the same request sequence give the same delays. Every wait is
recorded (`waits`, the most recent `RECORD_LIMIT`), with its start and end on the
server's monotonic clock, so that tests and benchmarks can read what was chosen and
whether waits overlapped, instead of timing answers on the client.

Off by default: unit tests stay fast. The medians are in README.md with their sources;
where no published figure was found, the number is a choice and says so there.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HUBSPOT = "hubspot"
HUBSPOT_SEARCH = "hubspot_search"
HUBSPOT_BATCH_WRITE = "hubspot_batch_write"
SALESFORCE = "salesforce"
SALESFORCE_COMPOSITE_WRITE = "salesforce_composite_write"

# Medians in milliseconds before `scale`. The two CRM-wide ones are the profile's
# defaults; the families where the real APIs are slower get their own (README.md).
DEFAULT_MEDIANS_MS: dict[str, float] = {
    HUBSPOT: 250.0,
    HUBSPOT_SEARCH: 500.0,
    HUBSPOT_BATCH_WRITE: 600.0,
    SALESFORCE: 400.0,
    SALESFORCE_COMPOSITE_WRITE: 900.0,
}
# sigma 0.5: the 95th percentile is e^(1.645 * 0.5) = 2.27 times the median.
DEFAULT_SIGMA = 0.5
# A draw is capped at e^(4 sigma) times the median (the 99.997th percentile) so that one
# unlucky draw cannot pass a client's read timeout; the `slow` fault is for that.
TAIL_CAP_SIGMAS = 4.0
RECORD_LIMIT = 10_000

HUBSPOT_BATCH_WRITES = ("/batch/create", "/batch/update", "/batch/upsert", "/batch/archive")
SALESFORCE_COMPOSITE = "/composite"


def family_of(crm: str, method: str, path: str) -> str:
    """The endpoint family whose median a request's delay is drawn from."""
    if crm == "hubspot":
        if method == "POST" and path.rstrip("/").endswith("/search"):
            return HUBSPOT_SEARCH
        if method == "POST" and path.rstrip("/").endswith(HUBSPOT_BATCH_WRITES):
            return HUBSPOT_BATCH_WRITE
        return HUBSPOT
    if method in ("POST", "PATCH", "DELETE") and SALESFORCE_COMPOSITE in path:
        return SALESFORCE_COMPOSITE_WRITE
    return SALESFORCE


def lognormal_delay_s(rng: random.Random, median_s: float, sigma: float) -> float:
    """One draw: log-normal around `median_s`, capped at TAIL_CAP_SIGMAS sigmas."""
    if sigma <= 0:
        return median_s
    return min(
        rng.lognormvariate(math.log(median_s), sigma), median_s * math.exp(TAIL_CAP_SIGMAS * sigma)
    )


@dataclass
class Wait:
    """One request's chosen delay and when it waited (server monotonic seconds)."""

    number: int  # counts the waits since the generator was seeded
    family: str
    endpoint: str
    delay_s: float
    started: float
    ended: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "family": self.family,
            "endpoint": self.endpoint,
            "delay_ms": round(self.delay_s * 1000, 3),
            "started": self.started,
            "ended": self.ended,
        }


@dataclass
class Latency:
    """The latency profile: on or off, its medians, spread, scale and generator."""

    enabled: bool = False
    scale: float = 1.0
    sigma: float = DEFAULT_SIGMA
    seed: int = 0
    medians_ms: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MEDIANS_MS))
    waits: deque[Wait] = field(default_factory=lambda: deque(maxlen=RECORD_LIMIT))
    waiting: int = 0  # requests in their wait right now
    peak_waiting: int = 0  # the most that were ever in their wait at once
    drawn: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.configure()

    def configure(self, **settings: Any) -> None:
        """Change settings (the fields above, `medians_ms` merged by family); a `seed`
        reseeds the generator and forgets the record. Raises ValueError on bad values."""
        unknown = set(settings) - {"enabled", "scale", "sigma", "seed", "medians_ms"}
        if unknown:
            raise ValueError(f"unknown latency settings {sorted(unknown)}")
        enabled = settings.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        scale = _positive("scale", settings.get("scale", self.scale))
        sigma = float(settings.get("sigma", self.sigma))
        if not math.isfinite(sigma) or sigma < 0:
            raise ValueError("sigma must be a finite number >= 0")
        changes = settings.get("medians_ms") or {}
        if not isinstance(changes, dict):
            raise ValueError("medians_ms must be an object of {family: milliseconds}")
        medians = dict(self.medians_ms)
        for family, median in changes.items():
            if family not in DEFAULT_MEDIANS_MS:
                raise ValueError(
                    f"unknown family {family!r}; expected one of {sorted(DEFAULT_MEDIANS_MS)}"
                )
            medians[family] = _positive(f"medians_ms.{family}", median)
        seed = int(settings.get("seed", self.seed))
        # Validated as a whole above: a bad value changes nothing.
        self.enabled, self.scale, self.sigma, self.medians_ms = enabled, scale, sigma, medians
        if "seed" in settings or not hasattr(self, "rng"):
            self.seed = seed
            self.rng = random.Random(seed)
            self.drawn = 0
            self.forget()

    def forget(self) -> None:
        """Clear the record of waits (the generator goes on where it was)."""
        self.waits.clear()
        self.peak_waiting = self.waiting

    def median_s(self, family: str) -> float:
        return self.medians_ms[family] * self.scale / 1000

    def draw(self, family: str, endpoint: str) -> Wait:
        """The next delay for a request of `family` (consumes one draw)."""
        self.drawn += 1
        delay = lognormal_delay_s(self.rng, self.median_s(family), self.sigma)
        return Wait(self.drawn, family, endpoint, delay, started=time.monotonic())

    async def wait(self, crm: str, method: str, path: str, endpoint: str) -> float:
        """Wait this request's delay, if the profile is on; record it. Returns the
        delay in seconds (0 when off)."""
        if not self.enabled:
            return 0.0
        entry = self.draw(family_of(crm, method, path), endpoint)
        self.waits.append(entry)
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            await asyncio.sleep(entry.delay_s)
        finally:
            self.waiting -= 1
            entry.ended = time.monotonic()
        return entry.delay_s

    def describe(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "scale": self.scale,
            "sigma": self.sigma,
            "seed": self.seed,
            "medians_ms": dict(self.medians_ms),
            # What a request of each family waits at the median and the 95th percentile.
            "effective_median_ms": {f: round(self.median_s(f) * 1000, 3) for f in self.medians_ms},
            "effective_p95_ms": {
                f: round(self.median_s(f) * math.exp(1.645 * self.sigma) * 1000, 3)
                for f in self.medians_ms
            },
            "drawn": self.drawn,
            "waiting": self.waiting,
            "peak_waiting": self.peak_waiting,
        }


def _positive(name: str, value: Any) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0")
    return number


def latency_from(setting: float | Latency | None, seed: int = 0) -> Latency:
    """The profile for a start-up setting: None or 0 is off; a number is on, with every
    median times that number (1.0: the realistic figures, 0.5: half of them)."""
    if isinstance(setting, Latency):
        return setting
    if not setting:
        return Latency(seed=seed)
    return Latency(enabled=True, scale=float(setting), seed=seed)
