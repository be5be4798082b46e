"""A full pull from each CRM as a real one answers: the sandbox's latency profile on
(HubSpot median 250 ms, search 500 ms; Salesforce 400 ms), production throttles, and the
sandbox's professional-tier limits.

Prints, per CRM: requests, elapsed, requests/s, what share of the connector's own rate
limit that is (utilisation), and how much of the elapsed time the answers took (the
sandbox's recorded waits). A client that sends one request at a time is bounded by the
round trip, not the limit: its utilisation stays low and the waits fill its time. That is
the figure concurrency has to move.

    .venv/bin/python bench/latency.py [people] [seed] [--scale 1.0] [--concurrency 1]

`--concurrency N` pulls N HubSpot activity sources (`HubSpotConfig.concurrency`) and N
Salesforce objects (`SalesforceConfig.concurrency`) at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.workload import pull  # noqa: E402
from connectors.config import HubSpotConfig, SalesforceConfig  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from connectors.protocol import CrmConnector  # noqa: E402
from connectors.salesforce import SalesforceConnector  # noqa: E402
from sandbox.run import SandboxHandle, running_sandbox  # noqa: E402


def _connectors(sb: SandboxHandle, concurrency: int) -> dict[str, tuple[CrmConnector, float]]:
    """Each CRM's connector with its production throttle, and that throttle's rate."""
    hubspot = HubSpotConfig(
        access_token=sb.hubspot_token,
        host=sb.base_url,
        ca_file=sb.ca_file,
        activity_lookback_days=None,  # the whole history: a first sync's pull
        concurrency=concurrency,
    )
    salesforce = SalesforceConfig(
        instance_url=sb.base_url,
        session_id=sb.salesforce_session_id,
        ca_file=sb.ca_file,
        concurrency=concurrency,
    )
    return {
        "hubspot": (HubSpotConnector(hubspot), hubspot.throttle.rate),
        "salesforce": (SalesforceConnector(salesforce), salesforce.throttle.rate),
    }


def main(people: int, seed: int, scale: float, concurrency: int) -> None:
    with running_sandbox(contacts=people, seed=seed, latency=scale) as sb:
        medians = sb.admin.latency()["effective_median_ms"]
        print(
            f"{people} people, seed {seed}, concurrency {concurrency}; "
            f"answer-time medians (ms): {medians}"
        )
        for name, (connector, rate) in _connectors(sb, concurrency).items():
            sb.admin.reset()
            started = time.perf_counter()
            pulled = pull(connector)
            elapsed = time.perf_counter() - started
            stats = sb.admin.stats()
            used = sum(stats["requests"].values())
            waited = sum(stats["latency_seconds"].values())
            throttled = sum(stats["throttled_by_policy"].values())
            peak = sb.admin.latency()["peak_waiting"]
            records = len(pulled.contacts) + len(pulled.activities) + len(pulled.deletions)
            print(
                f"{name:10s} records={records} requests={used} elapsed={elapsed:.1f}s "
                f"{used / elapsed:.2f} req/s, utilisation {used / elapsed / rate:.0%} of "
                f"{rate:g} req/s; answers took {waited:.1f}s ({waited / elapsed:.0%} of the time); "
                f"at most {peak} answered at once; {throttled} refused by the limits (429)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("people", type=int, nargs="?", default=4_000)
    parser.add_argument("seed", type=int, nargs="?", default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="times every median")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="sources (objects) pulled at once per CRM"
    )
    args = parser.parse_args()
    main(args.people, args.seed, args.scale, args.concurrency)
