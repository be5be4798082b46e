"""Per-process building blocks for flows: the store, the model, the mapping, the connector.

Built once per process and reused by every task in it; a Prefect worker runs each flow
run in its own process, so nothing here is shared between machines.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine

from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings
from connectors.hubspot import HubSpotConnector
from connectors.mapping import Mapping, default_mapping, load_mapping
from connectors.protocol import CrmConnector
from connectors.salesforce import SalesforceConnector
from connectors.throttle import Throttle, TokenBucket
from flows.settings import Settings, get_settings
from scoring.model import ScoringModel, parse_model
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
    path = get_settings().model_path
    return parse_model(path.read_text(encoding="utf-8"), str(path))


@cache
def mapping_for(crm: Crm) -> Mapping:
    settings = get_settings()
    path = settings.hubspot_mapping if crm is Crm.HUBSPOT else settings.salesforce_mapping
    return load_mapping(path) if path else default_mapping(crm)


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

    name = f"mqlsync-{crm.value}-api"
    rate = settings.hubspot_rate_per_s if crm is Crm.HUBSPOT else settings.salesforce_rate_per_s
    buckets = {"default": TokenBucket(rate, max(1, int(rate)))}
    if crm is Crm.HUBSPOT:
        buckets["search"] = TokenBucket(4.0, 4)
    # strict: a missing limit is an error, not a silent free-for-all across workers.
    return Throttle(buckets, shared=lambda _bucket: rate_limit(name, strict=True))


def _hubspot(settings: Settings) -> HubSpotConnector:
    token = _secret(settings.hubspot_token, "mqlsync-hubspot-token")
    if token is None:
        raise ConfigurationError(
            "no HubSpot token: set MQLSYNC_HUBSPOT_TOKEN or a Secret block mqlsync-hubspot-token"
        )
    from pydantic import SecretStr

    rate = settings.hubspot_rate_per_s
    config = HubSpotConfig(
        access_token=SecretStr(token),
        host=settings.hubspot_host,
        ca_file=settings.ca_file,
        mapping_file=settings.hubspot_mapping,
        throttle=ThrottleSettings(rate=rate, burst=max(1, int(rate))),
    )
    return HubSpotConnector(
        config, mapping_for(Crm.HUBSPOT), throttle=_shared_limit(Crm.HUBSPOT, settings)
    )


def _salesforce(settings: Settings) -> SalesforceConnector:
    if not settings.salesforce_instance_url:
        raise ConfigurationError("no Salesforce instance: set MQLSYNC_SALESFORCE_INSTANCE_URL")
    from pydantic import SecretStr

    session = _secret(settings.salesforce_session_id, "mqlsync-salesforce-session-id")
    secret = _secret(settings.salesforce_client_secret, "mqlsync-salesforce-client-secret")
    client_id = _secret(settings.salesforce_client_id, "mqlsync-salesforce-client-id")
    if session is None and (client_id is None or secret is None):
        raise ConfigurationError(
            "no Salesforce credentials: set MQLSYNC_SALESFORCE_SESSION_ID, or "
            "MQLSYNC_SALESFORCE_CLIENT_ID and MQLSYNC_SALESFORCE_CLIENT_SECRET"
        )
    rate = settings.salesforce_rate_per_s
    config = SalesforceConfig(
        instance_url=settings.salesforce_instance_url,
        session_id=SecretStr(session) if session else None,
        client_id=client_id,
        client_secret=SecretStr(secret) if secret else None,
        token_url=settings.salesforce_token_url,
        ca_file=settings.ca_file,
        mapping_file=settings.salesforce_mapping,
        throttle=ThrottleSettings(rate=rate, burst=max(1, int(rate))),
    )
    return SalesforceConnector(
        config, mapping_for(Crm.SALESFORCE), throttle=_shared_limit(Crm.SALESFORCE, settings)
    )


def reset() -> None:
    """Forget everything built (settings changed, e.g. in tests or the demo)."""
    get_settings.cache_clear()
    for built in (store_engine, scoring_model, mapping_for, connector_for):
        built.cache_clear()
