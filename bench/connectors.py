"""Connector throughput: a full pull of contacts, activities and deletions from each CRM
in the sandbox, over TLS with the real clients.

Prints records/s and the requests the sandbox counted (admin API) against the fewest the
page sizes allow. The sandbox's rate limits are lifted so the figures measure the
connectors; production throttles (HubSpot search 4/s) would bound HubSpot instead.

    .venv/bin/python bench/connectors.py [people] [seed]     # people split over both CRMs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

# This file is named like the package it measures: put the repository root in place of
# its own folder so that `import connectors` (and `sandbox`) resolve.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()
]

from bench.workload import (  # noqa: E402
    hubspot_activities,
    minimum_requests,
    pull,
    record_counts,
)
from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from connectors.protocol import CrmConnector  # noqa: E402
from connectors.salesforce import SalesforceConnector  # noqa: E402

UNLIMITED = ThrottleSettings(rate=10_000, burst=1_000)


def _connectors(sb: Any) -> dict[str, CrmConnector]:
    return {
        "hubspot": HubSpotConnector(
            HubSpotConfig(
                access_token=sb.hubspot_token,
                host=sb.base_url,
                ca_file=sb.ca_file,
                throttle=UNLIMITED,
                search_throttle=UNLIMITED,
                activity_lookback_days=None,  # the whole sandbox history, as expected counts
            )
        ),
        "salesforce": SalesforceConnector(
            SalesforceConfig(
                instance_url=sb.base_url,
                session_id=sb.salesforce_session_id,
                ca_file=sb.ca_file,
                throttle=UNLIMITED,
            )
        ),
    }


def main(people: int = 20_500, seed: int = 3) -> None:
    """Pull everything from both CRMs once and print the figures."""
    from sandbox.run import running_sandbox

    limits = {"hubspot_search_per_s": 10_000, "hubspot_per_10s": 1_000_000}
    with running_sandbox(contacts=people, seed=seed, **limits) as sb:
        for name, connector in _connectors(sb).items():
            sb.admin.reset()
            started = time.perf_counter()
            pulled = pull(connector)
            elapsed = time.perf_counter() - started
            used = sum(sb.admin.stats()["requests"].values())
            expected = sb.admin.expected(name)
            sources = hubspot_activities(sb, expected) if name == "hubspot" else None
            minimum = minimum_requests(name, record_counts(name, expected), None, sources)
            records = len(pulled.contacts) + len(pulled.activities) + len(pulled.deletions)
            print(
                f"{name:10s} contacts={len(pulled.contacts)} activities={len(pulled.activities)} "
                f"deletions={len(pulled.deletions)} {elapsed:.1f}s {records / elapsed:,.0f} "
                f"records/s requests={used} minimum={minimum} ratio={used / minimum:.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="Connector throughput: a full pull from each CRM in the sandbox."
    )
    parser.add_argument("people", type=int, nargs="?", default=20_500, help="split over both CRMs")
    parser.add_argument("seed", type=int, nargs="?", default=3)
    args = parser.parse_args()
    main(args.people, args.seed)
