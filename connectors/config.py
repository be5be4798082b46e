"""Typed connector settings, built by the caller; nothing here reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.retry import RetryPolicy


class ThrottleSettings(BaseModel):
    """A token bucket: `rate` requests per second on average, bursts up to `burst`."""

    model_config = ConfigDict(frozen=True)

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class HubSpotConfig(BaseModel):
    """How to reach one HubSpot portal."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    host: str = "https://api.hubapi.com"
    ca_file: Path | None = None
    mapping_file: Path | None = None  # None: the packaged mappings/hubspot.yaml
    timeout_s: float = 30.0
    # Professional tier: 190 requests per rolling 10 s; keep a margin for other apps.
    throttle: ThrottleSettings = ThrottleSettings(rate=17.0, burst=10)
    # The search endpoints have their own, lower, per-second limit.
    search_throttle: ThrottleSettings = ThrottleSettings(rate=4.0, burst=4)
    retry: RetryPolicy = RetryPolicy()
    overlap_minutes: float = 5.0
    # After a create fails in transit, wait this long before looking for what landed: a
    # request the client gave up on may still be processed by the CRM.
    settle_s: float = 5.0


class SalesforceConfig(BaseModel):
    """How to reach one Salesforce org; either a session id or client credentials (or both)."""

    model_config = ConfigDict(frozen=True)

    instance_url: str
    session_id: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None  # default: <instance_url>/services/oauth2/token
    api_version: str = "59.0"
    ca_file: Path | None = None
    mapping_file: Path | None = None
    timeout_s: float = 30.0
    # Salesforce has no short-term rate limit, only a daily budget; stay polite anyway.
    throttle: ThrottleSettings = ThrottleSettings(rate=25.0, burst=25)
    retry: RetryPolicy = RetryPolicy()
    overlap_minutes: float = 10.0
    settle_s: float = 5.0  # as HubSpotConfig.settle_s
