"""Rate limits as the real services enforce them, with configurable sizes.

HubSpot (private apps): a rolling 10-second window per tier (100/190/250), a daily
budget, and 5 requests/s for the search endpoints, which have their own limit and do
not send the X-HubSpot-RateLimit headers. Salesforce: a rolling 24-hour API request
allowance; past it every call answers 403 REQUEST_LIMIT_EXCEEDED.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

TIER_TEN_SECONDLY = {"starter": 100, "professional": 190, "enterprise": 250}
TIER_DAILY = {"starter": 250_000, "professional": 625_000, "enterprise": 1_000_000}


@dataclass
class Limits:
    """Limit sizes. None for a HubSpot size means: the tier's value."""

    hubspot_tier: str = "professional"
    hubspot_per_10s: int | None = None
    hubspot_daily: int | None = None
    hubspot_search_per_s: int = 5
    salesforce_daily: int = 100_000
    enabled: bool = True
    # Seconds before HubSpot search sees a write (reads by id see it at once); 0 makes
    # search consistent. Not a rate limit, but a size of the portal set the same way.
    search_lag_s: float = 3.0

    def __post_init__(self) -> None:
        if self.hubspot_tier not in TIER_TEN_SECONDLY:
            raise ValueError(f"tier must be one of {sorted(TIER_TEN_SECONDLY)}")
        if not 0 <= float(self.search_lag_s) <= 3600:
            raise ValueError("search_lag_s must be between 0 and 3600 seconds")

    @property
    def ten_secondly(self) -> int:
        return self.hubspot_per_10s or TIER_TEN_SECONDLY[self.hubspot_tier]

    @property
    def daily(self) -> int:
        return self.hubspot_daily or TIER_DAILY[self.hubspot_tier]


@dataclass
class Rejection:
    """A throttled request: the policy it broke and the headers to send."""

    policy: str  # TEN_SECONDLY_ROLLING | SECONDLY | DAILY | REQUEST_LIMIT_EXCEEDED
    headers: dict[str, str] = field(default_factory=dict)


def is_search(path: str) -> bool:
    return path.endswith("/search")


class Limiter:
    """Counts requests and decides which are throttled."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.reset()

    def reset(self) -> None:
        self._window: deque[float] = deque()
        self._search: deque[float] = deque()
        self.hubspot_used = 0
        self.salesforce_used = 0

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def hubspot(self, path: str, oauth: bool = False) -> tuple[Rejection | None, dict[str, str]]:
        """(rejection or None, rate-limit headers for the response).

        Search answers carry no X-HubSpot-RateLimit headers; OAuth answers carry no
        daily ones (an OAuth app has no daily limit to report).
        """
        lim = self.limits
        now = time.monotonic()
        search = is_search(path)
        self._trim(self._window, now, 10.0)
        self._trim(self._search, now, 1.0)
        headers: dict[str, str] = {}
        if not search:
            headers = {
                "X-HubSpot-RateLimit-Daily": str(lim.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(
                    max(0, lim.daily - self.hubspot_used - 1)
                ),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(lim.ten_secondly),
                "X-HubSpot-RateLimit-Remaining": str(
                    max(0, lim.ten_secondly - len(self._window) - 1)
                ),
                "X-HubSpot-RateLimit-Secondly": str(max(1, lim.ten_secondly // 10)),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(
                    max(0, lim.ten_secondly // 10 - sum(1 for t in self._window if t > now - 1) - 1)
                ),
            }
            if oauth:
                del headers["X-HubSpot-RateLimit-Daily"]
                del headers["X-HubSpot-RateLimit-Daily-Remaining"]
        if not lim.enabled:
            self.hubspot_used += 1
            return None, headers
        if self.hubspot_used >= lim.daily:
            if "X-HubSpot-RateLimit-Daily" in headers:
                headers["X-HubSpot-RateLimit-Daily-Remaining"] = "0"
            return Rejection("DAILY", headers), headers
        if search:
            if len(self._search) >= lim.hubspot_search_per_s:
                wait = max(0.0, self._search[0] + 1.0 - now)
                return Rejection("SECONDLY", {"Retry-After": str(max(1, round(wait)))}), headers
            self._search.append(now)
        else:
            if len(self._window) >= lim.ten_secondly:
                headers["X-HubSpot-RateLimit-Remaining"] = "0"
                return Rejection("TEN_SECONDLY_ROLLING", headers), headers
            self._window.append(now)
        self.hubspot_used += 1
        return None, headers

    def salesforce(self) -> tuple[Rejection | None, dict[str, str]]:
        lim = self.limits
        if lim.enabled and self.salesforce_used >= lim.salesforce_daily:
            info = {"Sforce-Limit-Info": f"api-usage={self.salesforce_used}/{lim.salesforce_daily}"}
            return Rejection("REQUEST_LIMIT_EXCEEDED", info), info
        self.salesforce_used += 1
        return None, {
            "Sforce-Limit-Info": f"api-usage={self.salesforce_used}/{lim.salesforce_daily}"
        }

    def describe(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "hubspot": {
                "tier": lim.hubspot_tier,
                "per_10s": lim.ten_secondly,
                "daily": lim.daily,
                "search_per_s": lim.hubspot_search_per_s,
                "search_lag_s": lim.search_lag_s,
                "used_today": self.hubspot_used,
            },
            "salesforce": {"daily": lim.salesforce_daily, "used_today": self.salesforce_used},
            "enabled": lim.enabled,
        }
