"""Typed connector settings, built by the caller; nothing here reads the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.hubspot_auth import HubSpotOAuth
from connectors.retry import RetryPolicy


class ThrottleSettings(BaseModel):
    """A token bucket: `rate` requests per second on average, bursts up to `burst`."""

    model_config = ConfigDict(frozen=True)

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_tls(name: str, url: str | None, allow_http_loopback: bool) -> None:
    """Refuse an endpoint that would carry a token in clear text.

    Only https may carry a token; http only to a loopback address, and only when
    `allow_http_loopback` says so (a local proxy, a test double).
    """
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        if allow_http_loopback:
            return
        raise ValueError(
            f"{name} {url!r} is plain http: use https, or set MQLSYNC_ALLOW_HTTP_LOOPBACK=true "
            "for a loopback endpoint"
        )
    raise ValueError(f"{name} {url!r} is not an https URL: a token is only ever sent over TLS")


class HubSpotConfig(BaseModel):
    """How to reach one HubSpot portal."""

    model_config = ConfigDict(frozen=True)

    # A private-app token, or none when `oauth` is set (the first token is then fetched).
    access_token: SecretStr | None = None
    oauth: HubSpotOAuth | None = None
    host: str = "https://api.hubapi.com"
    ca_file: Path | None = None
    mapping_file: Path | None = None  # None: the packaged mappings/hubspot.yaml
    timeout_s: float = 30.0
    # Professional tier: 190 requests per rolling 10 s; keep a margin for other apps.
    throttle: ThrottleSettings = ThrottleSettings(rate=17.0, burst=10)
    # The search endpoints have their own, lower, per-second limit (5 in any second). A
    # bucket lets through `burst` + `rate` requests in a second: 1 + 4, not 4 + 4, which
    # requests sent at once would reach (as the shared limit in flows/runtime.py has it).
    search_throttle: ThrottleSettings = ThrottleSettings(rate=4.0, burst=1)
    retry: RetryPolicy = RetryPolicy()
    overlap_minutes: float = 5.0
    # How far back the first activities pull (no cursor yet) reaches; None: all history.
    # A year covers the longest time window a scoring model normally uses.
    # The archived-contacts list can only be read whole: at most this often.
    archive_scan_hours: float = Field(default=24.0, ge=0)
    activity_lookback_days: float | None = Field(default=365.0, gt=0)
    allow_http_loopback: bool = False
    # After a create fails in transit, wait this long before looking for what landed: a
    # request the client gave up on may still be processed by the CRM.
    settle_s: float = 5.0
    # The share of the account's daily API limit (X-HubSpot-RateLimit-Daily) one
    # connector, i.e. one run, may use; past it the run stops with `RunBudgetSpent` and
    # leaves the rest to other runs and integrations. 1.0: only HubSpot's own limit.
    daily_budget_share: float = Field(default=0.5, gt=0, le=1)
    # Below this share of the rolling window left (X-HubSpot-RateLimit-Remaining of -Max),
    # requests are spaced at the window's average rate.
    rate_limit_reserve: float = Field(default=0.1, ge=0, lt=1)
    # The requests in flight at once, whoever sends them through this connector: activity
    # sources and their parts (slices of time, forms, events), ranges of contact ids when
    # a contacts pull holds more than a search page, the batches of a write. The CRM
    # answers in 150-600 ms, so one at a time leaves the throttles mostly unused; the
    # throttles above hold whatever this is. 1: one source after the other, in the
    # mapping's order, contacts in one keyset search, one batch at a time.
    concurrency: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _tls_only(self) -> Any:
        require_tls("HubSpot host", self.host, self.allow_http_loopback)
        if self.access_token is None and self.oauth is None:
            raise ValueError("HubSpot needs a private-app token or OAuth refresh credentials")
        return self


DEFAULT_LOGIN_URL = "https://login.salesforce.com"
TOKEN_PATH = "/services/oauth2/token"


class SalesforceConfig(BaseModel):
    """How to reach one Salesforce org, and how to get a session there.

    Sessions come from one of two OAuth grants, renewed on a 401 and before
    `session_minutes` have passed:
    - JWT bearer (`jwt_key_file` or `jwt_private_key`, with `client_id` = the connected
      app's consumer key and `username`): an RS256 assertion signed with the key of the
      certificate uploaded to the connected app. Chosen when a key is given.
    - client credentials (`client_id` and `client_secret`).
    A `session_id` may be given as well (with `instance_url`): it is used until it dies,
    then renewed by the grant, if any; without a grant a dead session stops the run.

    The token endpoint is `token_url`, else `<login_url>/services/oauth2/token`; without
    `login_url` it is on `instance_url` when that is set (a My Domain serves it too), else
    on https://login.salesforce.com. The API base is the `instance_url` of the token
    answer, else the configured one.
    """

    model_config = ConfigDict(frozen=True)

    instance_url: str | None = None  # required with a static `session_id`
    login_url: str | None = None  # e.g. https://login.salesforce.com, https://test.salesforce.com
    session_id: SecretStr | None = None
    client_id: str | None = None  # the connected app's consumer key
    client_secret: SecretStr | None = None
    token_url: str | None = None  # default: <login URL>/services/oauth2/token
    username: str | None = None  # the user a JWT bearer session acts as (`sub`)
    jwt_key_file: Path | None = None  # PEM private key of the connected app's certificate
    jwt_private_key: SecretStr | None = None  # or the PEM text itself (e.g. a Secret block)
    # Neither grant's answer says when the session ends: it lives for the org's session
    # timeout (2 hours by default). Renew before that; a 401 renews it anyway.
    session_minutes: float = Field(default=110.0, gt=0)
    api_version: str = "59.0"
    ca_file: Path | None = None
    mapping_file: Path | None = None
    timeout_s: float = 30.0
    # Salesforce has no short-term rate limit, only a daily budget; stay polite anyway.
    throttle: ThrottleSettings = ThrottleSettings(rate=25.0, burst=25)
    retry: RetryPolicy = RetryPolicy()
    overlap_minutes: float = 10.0
    settle_s: float = 5.0  # as HubSpotConfig.settle_s
    # The requests in flight at once, whoever sends them through this connector: objects'
    # queries (Leads and Contacts; each activity object), each one page after another,
    # and the collections of a write. An org answers a query page in 300-900 ms, so one
    # at a time leaves the throttle mostly unused; the throttle holds whatever this is.
    # 1: one object after the other, in the mapping's order, one collection at a time.
    concurrency: int = Field(default=1, ge=1)
    # A pull of one object whose first query page says it holds more rows than this goes
    # through a Bulk API 2.0 query job instead (CSV pages of up to `bulk_page_rows`
    # where REST serves 2,000): a first sync or a backfill of a large org. An incremental
    # sync stays under it and on REST. 0: never.
    bulk_rows: int = Field(default=50_000, ge=0)
    bulk_page_rows: int = Field(default=50_000, ge=1)
    bulk_poll_s: float = Field(default=2.0, gt=0)  # the first wait before a job's status
    allow_http_loopback: bool = False
    # The share of the org's daily API requests (Sforce-Limit-Info: api-usage=N/M, which
    # counts every integration of the org) past which this run stops with
    # `RunBudgetSpent`. 1.0: only Salesforce's own REQUEST_LIMIT_EXCEEDED stops it.
    daily_budget_share: float = Field(default=0.5, gt=0, le=1)

    @property
    def uses_jwt(self) -> bool:
        return self.jwt_key_file is not None or self.jwt_private_key is not None

    @property
    def uses_client_credentials(self) -> bool:
        return not self.uses_jwt and bool(self.client_id and self.client_secret)

    @property
    def effective_login_url(self) -> str:
        """The login URL: the token endpoint's host and the JWT audience."""
        return (self.login_url or self.instance_url or DEFAULT_LOGIN_URL).rstrip("/")

    @property
    def token_endpoint(self) -> str:
        return self.token_url or self.effective_login_url + TOKEN_PATH

    @model_validator(mode="after")
    def _tls_only(self) -> Any:
        require_tls("Salesforce instance URL", self.instance_url, self.allow_http_loopback)
        require_tls("Salesforce login URL", self.login_url, self.allow_http_loopback)
        require_tls("Salesforce token URL", self.token_url, self.allow_http_loopback)
        if self.jwt_key_file is not None and self.jwt_private_key is not None:
            raise ValueError("give the Salesforce JWT key once: a key file or the key text")
        if self.uses_jwt and not (self.client_id and self.username):
            raise ValueError(
                "the Salesforce JWT bearer flow needs the connected app's consumer key "
                "(client id) and the username to act as, besides the private key"
            )
        if self.session_id is not None and not self.instance_url:
            raise ValueError("a Salesforce session id needs the instance URL it belongs to")
        if self.session_id is None and not (self.uses_jwt or self.uses_client_credentials):
            raise ValueError(
                "Salesforce needs a JWT key (with client id and username), client "
                "credentials (client id and secret), or a session id with its instance URL"
            )
        return self
