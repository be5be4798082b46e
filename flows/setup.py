"""`mqlsync setup`: the Prefect objects deployments need, created idempotently."""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    WorkPoolCreate,
)
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows.settings import Settings

WORK_POOL = "mqlsync-process"


# HubSpot's search endpoints allow five requests per second per account, apart from the
# other limits; every worker together keeps under it. One slot, no burst: a bucket of C
# slots refilled at r/s lets C + r requests through in a second.
HUBSPOT_SEARCH_LIMIT = "mqlsync-hubspot-search"
HUBSPOT_SEARCH_PER_S = 3.5


def limit_name(crm: str) -> str:
    return f"mqlsync-{crm}-api"


def setup_prefect(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """Create the process work pool and the rate limits: one per CRM (requests per
    second) and HubSpot's search limit."""
    rates = {
        limit_name("hubspot"): settings.hubspot_rate_per_s,
        limit_name("salesforce"): settings.salesforce_rate_per_s,
        HUBSPOT_SEARCH_LIMIT: HUBSPOT_SEARCH_PER_S,
    }
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
            echo(f"work pool {WORK_POOL}: created")
        except ObjectAlreadyExists:
            echo(f"work pool {WORK_POOL}: exists")
        for name, rate in rates.items():
            # A rate limit: `rate` slots, each freed after 1/rate s, so at most `rate`
            # requests start per second across every worker.
            slots = 1 if name == HUBSPOT_SEARCH_LIMIT else max(1, int(rate))
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(
                    name,
                    GlobalConcurrencyLimitUpdate(limit=slots, slot_decay_per_second=rate),
                )
                echo(f"rate limit {name}: updated to {rate:g}/s")
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(
                        name=name, limit=slots, slot_decay_per_second=rate, active=True
                    )
                )
                echo(f"rate limit {name}: created at {rate:g}/s")
