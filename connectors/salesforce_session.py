"""The requests session the Salesforce connector owns: TLS, auth, limits, throttle, retries.

simple-salesforce sends every request (including `query_all_iter`'s follow-up pages)
through this session, so each HTTP call passes the budget guard, the throttle and the
retry policy here, once; the session is renewed (see `connectors.salesforce_auth`)
before it gets old and after a 401, without simple-salesforce knowing.

Every answer, success or error, may carry `Sforce-Limit-Info: api-usage=N/M`: the org's
API requests of the last 24 hours and its limit, counting every integration of the org.
The latest is kept (`api_usage`); once N reaches `daily_budget_share` of M, requests
stop with `RunBudgetSpent` and the run ends with its cursors kept.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter

from connectors.config import SalesforceConfig
from connectors.errors import RunBudgetSpent
from connectors.retry import Redactor, call_with_retry
from connectors.salesforce_auth import SalesforceAuth
from connectors.throttle import Throttle

_NOT_IDEMPOTENT = frozenset({"POST"})
_POOL_DEFAULT = DEFAULT_POOLSIZE  # connections requests keeps per host
LIMIT_HEADER = "Sforce-Limit-Info"
# `api-usage=18/5000`, possibly beside `per-app-api-usage=17/250(appName=x)` or
# `api-bursts=1/750`; the look-behind keeps `per-app-api-usage` out.
_API_USAGE = re.compile(r"(?<![\w-])api-usage=(\d+)/(\d+)")


def parse_api_usage(value: str | None) -> tuple[int, int] | None:
    """(used, limit) from a `Sforce-Limit-Info` value; None when it has no api-usage."""
    match = _API_USAGE.search(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


class SalesforceSession(requests.Session):
    """A `requests.Session` with the configured CA (not the environment's) and the policy.

    The API base URL is `instance_url()`: build the simple-salesforce client with it.
    `clock` (epoch seconds) decides when a session is old enough to renew.
    """

    def __init__(
        self,
        config: SalesforceConfig,
        throttle: Throttle,
        redact: Redactor,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        # REQUESTS_CA_BUNDLE in the environment would otherwise override `verify`.
        self.trust_env = False
        self.verify = str(config.ca_file) if config.ca_file else True
        if config.concurrency > _POOL_DEFAULT:
            # Objects read at once share this session: past the pool's size urllib3 would
            # open a connection per request and discard it.
            adapter = HTTPAdapter(pool_maxsize=config.concurrency)
            self.mount("https://", adapter)
            self.mount("http://", adapter)
        self._config = config
        self._throttle = throttle
        self._redact = redact
        self._auth = SalesforceAuth(config, redact, self._post_token, clock=clock)
        self._limits_lock = threading.Lock()
        self._api_usage: tuple[int, int] | None = None
        self._requests = 0
        # `concurrency` bounds the requests in flight however many pulls and writes share
        # this session (the flows build one connector per CRM and process).
        self._in_flight = threading.BoundedSemaphore(config.concurrency)

    def __repr__(self) -> str:
        return f"SalesforceSession(auth={self._auth!r})"

    # --- auth --------------------------------------------------------------------------

    @property
    def auth_flow(self) -> SalesforceAuth:
        """The session's token holder (the grant, renewals), for diagnostics."""
        return self._auth

    @property
    def token(self) -> str | None:
        """The session id in use now; None until the first is fetched (see `instance_url`)."""
        return self._auth.token

    @property
    def token_url(self) -> str:
        return self._auth.token_url

    def can_refresh(self) -> bool:
        return self._auth.can_renew()

    def refresh(self) -> None:
        """A new session from the configured grant (`AuthExpired` when there is none)."""
        self._auth.renew()

    def instance_url(self) -> str:
        """The org's API base URL (no trailing slash), from the token answer when a grant
        is configured (a session is fetched first when none is held), else the configured
        one."""
        return self._auth.instance_url()

    def _post_token(self, url: str, data: dict[str, str]) -> requests.Response:
        self._throttle.acquire()
        return super().request("POST", url, data=data, timeout=self._config.timeout_s)

    # --- limits ------------------------------------------------------------------------

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(requests used, daily limit) of the org as its latest answer said, or None."""
        with self._limits_lock:
            return self._api_usage

    @property
    def requests_sent(self) -> int:
        """API requests this session has sent (each attempt counts; token requests not)."""
        with self._limits_lock:
            return self._requests

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Keep the api-usage of one answer (answers without it change nothing)."""
        usage = parse_api_usage((headers or {}).get(LIMIT_HEADER))
        if usage is not None:
            with self._limits_lock:
                self._api_usage = usage

    def _before_attempt(self) -> None:
        share = self._config.daily_budget_share
        with self._limits_lock:
            usage = self._api_usage
            if usage is not None and share < 1:
                # The org's use as Salesforce last reported it (every integration, every
                # worker), or this run's own count where that is higher.
                used, limit = max(usage[0], self._requests), usage[1]
                if used >= share * limit:
                    raise RunBudgetSpent(
                        f"Salesforce: the org has used {used} of its {limit} daily API "
                        f"requests ({self._requests} by this run): the run's share "
                        f"({share:.0%}) of the daily API budget is spent (the run stops "
                        "with its cursors kept; the next run goes on from them)",
                        code="RUN_BUDGET",
                    )
            self._requests += 1
        self._throttle.acquire()

    # --- requests ----------------------------------------------------------------------

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send once per attempt through the throttle; raise `ConnectorError` on failure."""
        method_name = method.decode() if isinstance(method, bytes) else method
        kwargs.setdefault("timeout", self._config.timeout_s)
        # A session is fetched first when none is held, renewed when it has grown old.
        self._auth.current()
        base_headers = dict(kwargs.pop("headers", None) or {})
        sent_with: list[str | None] = [None]

        def send() -> requests.Response:
            headers = dict(base_headers)
            token = self._auth.token
            sent_with[0] = token
            if token is not None:
                # Always the current token: a refresh after a 401 applies to the next attempt.
                headers["Authorization"] = f"Bearer {token}"
            with self._in_flight:
                response = super(SalesforceSession, self).request(
                    method,
                    url,
                    *args,
                    headers=headers,
                    **kwargs,  # type: ignore[misc]
                )
            self.observe(response.headers)
            if response.status_code >= 400:
                raise requests.HTTPError(response=response)
            return response

        def renew() -> bool:
            # Renewed once however many requests saw the same session refused.
            return self._auth.renew(stale=sent_with[0])

        return call_with_retry(
            send,
            policy=self._config.retry,
            redact=self._redact,
            refresh_auth=renew if self._auth.can_renew() else None,
            idempotent=method_name.upper() not in _NOT_IDEMPOTENT,
            what=f"{method_name} {str(url).split('?', 1)[0]}",
            before_attempt=self._before_attempt,
        )
