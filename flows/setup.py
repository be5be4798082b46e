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


def limit_name(crm: str) -> str:
    return f"mqlsync-{crm}-api"


def setup_prefect(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """Create the process work pool and one rate limit per CRM (requests per second)."""
    rates = {"hubspot": settings.hubspot_rate_per_s, "salesforce": settings.salesforce_rate_per_s}
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
            echo(f"work pool {WORK_POOL}: created")
        except ObjectAlreadyExists:
            echo(f"work pool {WORK_POOL}: exists")
        for crm, rate in rates.items():
            name = limit_name(crm)
            # A rate limit: `rate` slots, each freed after 1/rate s, so at most `rate`
            # requests start per second across every worker.
            slots = max(1, int(rate))
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
