"""Per-process building blocks for flows: the store, the model, the mapping, the connector.

Built once per process and reused by every task in it; a Prefect worker runs each flow
run in its own process, so nothing here is shared between machines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_auth import HubSpotOAuth
from connectors.mapping import Mapping, default_mapping, load_mapping
from connectors.protocol import CrmConnector
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector
from connectors.throttle import Throttle, TokenBucket
from flows.settings import Settings, get_settings
from scoring.model import ScoringModel
from scoring.records import Crm
from store.db import make_engine, migrate


class ConfigurationError(RuntimeError):
    """Settings that cannot work (a missing credential, an unreadable file)."""


@cache
def store_engine() -> Engine:
    engine = make_engine(get_settings().store_url)
    migrate(engine)
    return engine


@cache
def scoring_model() -> ScoringModel:
    from flows.check import load_model_file

    return load_model_file(get_settings().model_path)


@cache
def mapping_for(crm: Crm) -> Mapping:
    settings = get_settings()
    path = settings.hubspot_mapping if crm is Crm.HUBSPOT else settings.salesforce_mapping
    return load_mapping(path, crm=crm) if path else default_mapping(crm)


@cache
def connector_for(crm: Crm) -> CrmConnector:
    """The connector for `crm`, from `MQLSYNC_*` settings or Prefect Secret blocks."""
    settings = get_settings()
    if crm is Crm.HUBSPOT:
        return _hubspot(settings)
    return _salesforce(settings)


def _secret(value: object, block: str) -> str | None:
    if value is not None:
        return value.get_secret_value()  # type: ignore[attr-defined,no-any-return]
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(block).get())
    except Exception:  # no block by that name, or no Prefect API: not configured
        return None


def _shared_limit(crm: Crm, settings: Settings) -> Throttle | None:
    if not settings.shared_rate_limit:
        return None
    from prefect.concurrency.sync import rate_limit

    from flows.setup import HUBSPOT_SEARCH_LIMIT, HUBSPOT_SEARCH_PER_S, limit_name

    rate = settings.hubspot_rate_per_s if crm is Crm.HUBSPOT else settings.salesforce_rate_per_s
    buckets = {"default": TokenBucket(rate, max(1, int(rate)))}
    limits = {"default": limit_name(crm.value)}
    if crm is Crm.HUBSPOT:
        buckets["search"] = TokenBucket(HUBSPOT_SEARCH_PER_S, 1)
        limits["search"] = HUBSPOT_SEARCH_LIMIT
    # strict: a missing limit is an error, not a silent free-for-all across workers.
    return Throttle(buckets, shared=lambda bucket: rate_limit(limits[bucket], strict=True))


def _common(settings: Settings) -> dict[str, Any]:
    """Connector settings both CRMs take from `MQLSYNC_*`."""
    return {
        "timeout_s": settings.timeout_s,
        "settle_s": settings.settle_s,
        "allow_http_loopback": settings.allow_http_loopback,
        "retry": RetryPolicy(
            backoff_base_s=settings.backoff_base_s, backoff_max_s=settings.backoff_max_s
        ),
    }


C = TypeVar("C", HubSpotConfig, SalesforceConfig)


def _config(kind: type[C], **values: Any) -> C:
    try:
        return kind(**values)
    except ValidationError as exc:
        # One line per problem, without the input values (they hold the credentials).
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigurationError(problems) from None


def _hubspot(settings: Settings) -> HubSpotConnector:
    token = _secret(settings.hubspot_token, "mqlsync-hubspot-token")
    refresh = _secret(settings.hubspot_refresh_token, "mqlsync-hubspot-refresh-token")
    secret = _secret(settings.hubspot_client_secret, "mqlsync-hubspot-client-secret")
    oauth = None
    if refresh is not None and secret is not None and settings.hubspot_client_id:
        oauth = HubSpotOAuth(
            client_id=settings.hubspot_client_id,
            client_secret=SecretStr(secret),
            refresh_token=SecretStr(refresh),
        )
    if token is None and oauth is None:
        raise ConfigurationError(
            "no HubSpot credentials: set MQLSYNC_HUBSPOT_TOKEN (or a Secret block "
            "mqlsync-hubspot-token), or MQLSYNC_HUBSPOT_CLIENT_ID, "
            "MQLSYNC_HUBSPOT_CLIENT_SECRET and MQLSYNC_HUBSPOT_REFRESH_TOKEN"
        )
    rate = settings.hubspot_rate_per_s
    config = _config(
        HubSpotConfig,
        access_token=SecretStr(token) if token else None,
        oauth=oauth,
        host=settings.hubspot_host,
        ca_file=settings.ca_file,
        mapping_file=settings.hubspot_mapping,
        throttle=ThrottleSettings(rate=rate, burst=max(1, int(rate))),
        daily_budget_share=settings.hubspot_daily_budget_share,
        activity_lookback_days=settings.hubspot_activity_lookback_days,
        **_common(settings),
    )
    return HubSpotConnector(
        config, mapping_for(Crm.HUBSPOT), throttle=_shared_limit(Crm.HUBSPOT, settings)
    )


def _salesforce(settings: Settings) -> SalesforceConnector:
    if not settings.salesforce_instance_url:
        raise ConfigurationError("no Salesforce instance: set MQLSYNC_SALESFORCE_INSTANCE_URL")
    session = _secret(settings.salesforce_session_id, "mqlsync-salesforce-session-id")
    secret = _secret(settings.salesforce_client_secret, "mqlsync-salesforce-client-secret")
    client_id = _secret(settings.salesforce_client_id, "mqlsync-salesforce-client-id")
    if session is None and (client_id is None or secret is None):
        raise ConfigurationError(
            "no Salesforce credentials: set MQLSYNC_SALESFORCE_SESSION_ID, or "
            "MQLSYNC_SALESFORCE_CLIENT_ID and MQLSYNC_SALESFORCE_CLIENT_SECRET"
        )
    rate = settings.salesforce_rate_per_s
    config = _config(
        SalesforceConfig,
        instance_url=settings.salesforce_instance_url,
        session_id=SecretStr(session) if session else None,
        client_id=client_id,
        client_secret=SecretStr(secret) if secret else None,
        token_url=settings.salesforce_token_url,
        ca_file=settings.ca_file,
        mapping_file=settings.salesforce_mapping,
        throttle=ThrottleSettings(rate=rate, burst=max(1, int(rate))),
        **_common(settings),
    )
    return SalesforceConnector(
        config, mapping_for(Crm.SALESFORCE), throttle=_shared_limit(Crm.SALESFORCE, settings)
    )


def now() -> datetime:
    """The moment a run scores and decides by: the clock, or the pinned `fixed_now`."""
    return get_settings().fixed_now or datetime.now(UTC)


def reset() -> None:
    """Forget everything built (settings changed, e.g. in tests or the demo)."""
    get_settings.cache_clear()
    for built in (store_engine, scoring_model, mapping_for, connector_for):
        built.cache_clear()
