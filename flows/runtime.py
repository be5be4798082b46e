"""Per-process building blocks for flows: the store, the model, the mapping, the connector.

Built once per process and reused by every task in it; a Prefect worker runs each flow
run in its own process, so nothing here is shared between machines.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings
from connectors.errors import FatalError
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_auth import HubSpotOAuth
from connectors.mapping import Mapping, default_mapping, load_mapping
from connectors.protocol import CrmConnector
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_auth import read_private_key
from connectors.throttle import Throttle, TokenBucket
from flows.settings import Settings, get_settings
from scoring.model import ScoringModel
from scoring.records import Crm
from store.db import make_engine, migrate


class ConfigurationError(RuntimeError):
    """Settings that cannot work (a missing credential, an unreadable file)."""


# Tasks running at once (a flow's pulls side by side) may each be the first to ask for
# the store, and `cache` does not make the others wait: their migrations go one at a time,
# the later finding the schema done.
_migrating = threading.Lock()


@cache
def store_engine() -> Engine:
    engine = make_engine(get_settings().store_url)
    with _migrating:
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

        # Called from sync code, `load` returns the block, not a coroutine to await.
        secret = cast("Secret[Any]", Secret.load(block))
        return str(secret.get())
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
        concurrency=settings.hubspot_concurrency,
        **_common(settings),
    )
    return HubSpotConnector(
        config, mapping_for(Crm.HUBSPOT), throttle=_shared_limit(Crm.HUBSPOT, settings)
    )


def _salesforce_jwt_key(settings: Settings) -> tuple[Path | None, SecretStr | None]:
    """The JWT key the settings name: (its file, or its PEM text from a Secret block)."""
    key_file, block = settings.salesforce_jwt_key_file, settings.salesforce_jwt_key_block
    if key_file is not None and block:
        raise ConfigurationError(
            "set one of MQLSYNC_SALESFORCE_JWT_KEY_FILE and MQLSYNC_SALESFORCE_JWT_KEY_BLOCK"
        )
    if block:
        pem = _secret(None, block)
        if not pem:
            raise ConfigurationError(
                f"cannot load the Prefect Secret block {block!r} named by "
                "MQLSYNC_SALESFORCE_JWT_KEY_BLOCK: it should hold the PEM private key of the "
                "connected app's certificate"
            )
        return None, SecretStr(pem)
    if key_file is not None and not key_file.is_file():
        raise ConfigurationError(f"MQLSYNC_SALESFORCE_JWT_KEY_FILE {key_file}: no such file")
    return key_file, None


def _salesforce(settings: Settings) -> SalesforceConnector:
    key_file, key_text = _salesforce_jwt_key(settings)
    jwt = key_file is not None or key_text is not None
    username = settings.salesforce_username
    if username and not jwt:
        raise ConfigurationError(
            "MQLSYNC_SALESFORCE_USERNAME is for the JWT bearer flow: set "
            "MQLSYNC_SALESFORCE_JWT_KEY_FILE (or MQLSYNC_SALESFORCE_JWT_KEY_BLOCK) too"
        )
    session = _secret(settings.salesforce_session_id, "mqlsync-salesforce-session-id")
    if session is not None and not settings.salesforce_instance_url:
        raise ConfigurationError(
            "MQLSYNC_SALESFORCE_SESSION_ID needs MQLSYNC_SALESFORCE_INSTANCE_URL, the org's "
            "URL the session belongs to"
        )
    client_id = _secret(settings.salesforce_client_id, "mqlsync-salesforce-client-id")
    if jwt and not (client_id and username):
        missing = [
            name
            for name, value in (
                ("MQLSYNC_SALESFORCE_CLIENT_ID (the connected app's consumer key)", client_id),
                ("MQLSYNC_SALESFORCE_USERNAME (the user to act as)", username),
            )
            if not value
        ]
        raise ConfigurationError(
            "the Salesforce JWT bearer flow needs " + " and ".join(missing) + " besides the key"
        )
    # With a JWT key the client secret is not needed (nor looked up).
    secret = (
        None
        if jwt
        else _secret(settings.salesforce_client_secret, "mqlsync-salesforce-client-secret")
    )
    if not jwt and session is None and (client_id is None or secret is None):
        raise ConfigurationError(
            "no Salesforce credentials: set MQLSYNC_SALESFORCE_CLIENT_ID and "
            "MQLSYNC_SALESFORCE_CLIENT_SECRET (client credentials), or "
            "MQLSYNC_SALESFORCE_CLIENT_ID, MQLSYNC_SALESFORCE_USERNAME and "
            "MQLSYNC_SALESFORCE_JWT_KEY_FILE (JWT bearer), or MQLSYNC_SALESFORCE_SESSION_ID "
            "with MQLSYNC_SALESFORCE_INSTANCE_URL"
        )
    rate = settings.salesforce_rate_per_s
    config = _config(
        SalesforceConfig,
        instance_url=settings.salesforce_instance_url,
        login_url=settings.salesforce_login_url,
        session_id=SecretStr(session) if session else None,
        client_id=client_id,
        client_secret=SecretStr(secret) if secret else None,
        token_url=settings.salesforce_token_url,
        username=username if jwt else None,
        jwt_key_file=key_file,
        jwt_private_key=key_text,
        session_minutes=settings.salesforce_session_minutes,
        daily_budget_share=settings.salesforce_daily_budget_share,
        ca_file=settings.ca_file,
        mapping_file=settings.salesforce_mapping,
        throttle=ThrottleSettings(rate=rate, burst=max(1, int(rate))),
        concurrency=settings.salesforce_concurrency,
        bulk_rows=settings.salesforce_bulk_rows,
        **_common(settings),
    )
    if config.uses_jwt:
        try:
            read_private_key(config)  # a bad key is a setting to fix, found before any request
        except FatalError as exc:
            setting = (
                "MQLSYNC_SALESFORCE_JWT_KEY_FILE"
                if key_file is not None
                else "MQLSYNC_SALESFORCE_JWT_KEY_BLOCK"
            )
            raise ConfigurationError(f"{exc.message} ({setting})") from None
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
