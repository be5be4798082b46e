"""Typed settings from `MQLSYNC_*` environment variables: the one place that reads them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AwareDatetime, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = PROJECT_ROOT / "scoring" / "models" / "default.yaml"
DEFAULT_BACKFILL_MAX_DAYS = 366


class Settings(BaseSettings):
    """Everything configurable. Secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(env_prefix="MQLSYNC_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        repr=False,  # a URL may carry a password
        description="SQLAlchemy URL of the store; unset means a local SQLite file",
    )
    data_dir: Path = Field(default=PROJECT_ROOT / "var", description="where local files go")
    model_path: Path = Field(default=DEFAULT_MODEL, description="the scoring model file")

    hubspot_host: str = "https://api.hubapi.com"
    hubspot_token: SecretStr | None = None
    hubspot_client_id: str | None = Field(default=None, description="OAuth app client id")
    hubspot_client_secret: SecretStr | None = None
    hubspot_refresh_token: SecretStr | None = Field(
        default=None, description="OAuth refresh token: access tokens are renewed on a 401"
    )
    salesforce_instance_url: str | None = Field(
        default=None,
        description="the org's API host, e.g. https://yourorg.my.salesforce.com: needed with "
        "a session id; otherwise taken from the token answer",
    )
    salesforce_login_url: str | None = Field(
        default=None,
        description="where sessions are requested (and the JWT audience): "
        "https://login.salesforce.com, https://test.salesforce.com or a My Domain URL; "
        "unset: the instance URL when set, else https://login.salesforce.com",
    )
    salesforce_session_id: SecretStr | None = None
    salesforce_client_id: SecretStr | None = Field(
        default=None, description="the connected app's consumer key"
    )
    salesforce_client_secret: SecretStr | None = None
    salesforce_token_url: str | None = Field(
        default=None, description="default: <login URL>/services/oauth2/token"
    )
    salesforce_username: str | None = Field(
        default=None, description="the user a JWT bearer session acts as"
    )
    salesforce_jwt_key_file: Path | None = Field(
        default=None,
        description="PEM private key of the certificate uploaded to the connected app: "
        "sessions come from the JWT bearer flow",
    )
    salesforce_jwt_key_block: str | None = Field(
        default=None,
        description="or the name of a Prefect Secret block holding that PEM key",
    )
    salesforce_session_minutes: float = Field(
        default=110.0,
        gt=0,
        description="renew a Salesforce session after this long (the org's session timeout "
        "is 2 hours by default; a 401 renews it anyway)",
    )
    salesforce_daily_budget_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="share of the org's daily API requests (Sforce-Limit-Info) past which a "
        "run stops, its cursors kept; 1: only Salesforce's own limit",
    )
    ca_file: Path | None = Field(default=None, description="CA bundle for the CRM's TLS")
    hubspot_mapping: Path | None = Field(default=None, description="default: mappings/hubspot.yaml")
    salesforce_mapping: Path | None = Field(
        default=None, description="default: mappings/salesforce.yaml"
    )
    hubspot_rate_per_s: float = Field(default=17.0, gt=0, description="HubSpot requests/s cap")
    salesforce_rate_per_s: float = Field(default=25.0, gt=0, description="Salesforce requests/s")
    shared_rate_limit: bool = Field(
        default=False,
        description="take a slot of the Prefect global concurrency limit mqlsync-<crm>-api "
        "before every CRM request (on when several workers share one CRM budget)",
    )
    batch_size: int = Field(default=500, ge=1, description="contacts scored per task")
    backfill_max_days: int = Field(
        default=DEFAULT_BACKFILL_MAX_DAYS,
        ge=1,
        description="the longest window a backfill accepts, in days, its first and last day "
        "counted; a longer one is refused before any request, saying what to change",
    )
    allow_http_loopback: bool = Field(
        default=False,
        description="accept an http:// CRM endpoint on a loopback address (tests, proxies); "
        "a token is never sent in clear text to any other host",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="CRM request timeout")
    backoff_base_s: float = Field(default=0.5, gt=0, description="first retry backoff")
    backoff_max_s: float = Field(default=30.0, gt=0, description="longest retry backoff")
    settle_s: float = Field(
        default=10.0,
        ge=0,
        description="how long a CRM's search may take to show a write: a create whose answer "
        "was lost is looked up again after it before it is sent again",
    )
    hubspot_activity_lookback_days: float | None = Field(
        default=365.0,
        gt=0,
        description="how far back a first HubSpot activity pull reaches (unset: all history)",
    )
    hubspot_daily_budget_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="share of the portal's daily API quota one run may use before it stops",
    )
    # The defaults are the benchmark's (bench/throughput.py): at HubSpot's answer times,
    # 8 requests in flight reach its rate limit, where 4 use half of it.
    hubspot_concurrency: int = Field(
        default=8,
        ge=1,
        description="HubSpot requests in flight at once in a process, whatever sends them: "
        "activity sources (and parts of them), ranges of contact ids, batches of a write",
    )
    salesforce_concurrency: int = Field(
        default=4,
        ge=1,
        description="Salesforce requests in flight at once in a process, whatever sends them: "
        "objects queried side by side, batches of a write",
    )
    salesforce_bulk_rows: int = Field(
        default=50_000,
        ge=0,
        description="an object's pull with more rows than this runs as a Bulk API 2.0 query "
        "job instead of REST query pages (0: never)",
    )
    fixed_now: AwareDatetime | None = Field(
        default=None,
        description="decide every run as of this instant instead of the clock: for "
        "reproducing a past run and for tests that compare runs made minutes apart",
    )
    task_retry_delay_s: float | None = Field(
        default=None,
        ge=0,
        description="seconds between Prefect attempts of a failed batch (default 10, then 60)",
    )

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mqlsync.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
