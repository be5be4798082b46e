"""Fixtures: connectors for both CRMs against one sandbox over real HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings
from connectors.hubspot import HubSpotConnector
from connectors.protocol import CrmConnector
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector

# Fast but still bounded: the sandbox enforces its own limits and the connectors must
# stay under them; tests only shorten waits.
TEST_RETRY = RetryPolicy(
    max_attempts=8, backoff_base_s=0.02, backoff_max_s=0.5, max_retry_after_s=1.0
)
FAST = ThrottleSettings(rate=200.0, burst=50)


def _testing() -> Any:
    import sandbox.testing

    return sandbox.testing


def make_connector(crm: str, handle: Any, **overrides: Any) -> CrmConnector:
    """A connector for `crm` ("hubspot" | "salesforce") wired to a running sandbox."""
    if crm == "hubspot":
        return HubSpotConnector(
            HubSpotConfig(
                access_token=handle.hubspot_token,
                host=handle.base_url,
                ca_file=handle.ca_file,
                timeout_s=overrides.get("timeout_s", 5.0),
                throttle=overrides.get("throttle", FAST),
                search_throttle=overrides.get(
                    "search_throttle", ThrottleSettings(rate=4.5, burst=5)
                ),
                retry=TEST_RETRY,
                settle_s=overrides.get("settle_s", 0.0),
            ),
            # As an OAuth app would: a 401 fetches a token again (the sandbox's is fixed).
            token_provider=lambda: str(handle.hubspot_token),
        )
    return SalesforceConnector(
        SalesforceConfig(
            instance_url=handle.base_url,
            session_id=handle.salesforce_session_id,
            client_id=handle.salesforce_client_id,
            client_secret=handle.salesforce_client_secret,
            ca_file=handle.ca_file,
            timeout_s=overrides.get("timeout_s", 5.0),
            throttle=overrides.get("throttle", FAST),
            retry=TEST_RETRY,
            settle_s=overrides.get("settle_s", 0.0),
        )
    )


@pytest.fixture(scope="session")
def small_sandbox() -> Iterator[Any]:
    with _testing().running_sandbox(contacts=400, seed=11) as handle:
        yield handle


@pytest.fixture(params=["hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest) -> str:
    return str(request.param)
