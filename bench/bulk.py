"""A Salesforce backfill over the whole history, through REST query pages and through
Bulk API 2.0 query jobs: the same records, the requests and the time each takes.

The sandbox answers as a real org does (latency profile on: Salesforce's median 400 ms),
behind the production throttle (25 requests/s). Each object above `--bulk-rows` rows
goes through a query job (its first REST page says how many rows it holds), the others
through REST as before; `--bulk-rows 0` is REST alone.

    .venv/bin/python bench/bulk.py [people] [seed] [--bulk-rows 50000] [--concurrency 4]

Target (the issue's): a 200,000-row backfill in fewer requests and less time through
Bulk 2.0 than through REST queries. 20,000 people hold about that many Salesforce rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from connectors.config import SalesforceConfig  # noqa: E402
from connectors.salesforce import SalesforceConnector  # noqa: E402
from sandbox.run import SandboxHandle, running_sandbox  # noqa: E402
from sandbox.salesforce_schema import DATA_PATH  # noqa: E402

JOBS = f"{DATA_PATH}/jobs/query"


@dataclass
class Backfill:
    elapsed: float
    records: Counter[str]  # per stream
    requests: Counter[str]  # REST queries, bulk jobs
    ids: set[str]


def backfill(sb: SandboxHandle, bulk_rows: int, concurrency: int) -> Backfill:
    """Every stream over a window that holds the whole history (a backfill's bounded
    pull), with a fresh connector; what it read and what it cost."""
    connector = SalesforceConnector(
        SalesforceConfig(
            instance_url=sb.base_url,
            session_id=sb.salesforce_session_id,
            ca_file=sb.ca_file,
            concurrency=concurrency,
            bulk_rows=bulk_rows,
        )
    )
    connector.check_mapping()  # describes first: the backfill's own requests alone
    sb.admin.reset()
    until = datetime.now(UTC) + timedelta(days=3650)
    started = time.perf_counter()
    records: Counter[str] = Counter()
    ids: set[str] = set()
    for name, pages in (
        ("contacts", connector.pull_contacts(None, until=until)),
        ("activities", connector.pull_activities(None, until=until)),
        ("deletions", connector.pull_deletions(None, until=until)),
    ):
        for page in pages:
            records[name] += len(page.records)
            ids.update(f"{name}:{getattr(r, 'crm_id', r)}" for r in page.records)
    elapsed = time.perf_counter() - started
    requests: Counter[str] = Counter()
    for endpoint, n in sb.admin.stats()["requests"].items():
        path = endpoint.split(" ", 1)[1]
        requests["bulk jobs" if path.startswith(JOBS) else "REST queries"] += n
    return Backfill(elapsed, records, requests, ids)


def main(people: int, seed: int, bulk_rows: int, concurrency: int) -> None:
    with running_sandbox(contacts=people, seed=seed, latency=1.0) as sb:
        print(f"{people} people, seed {seed}, concurrency {concurrency}, latency on")
        rest = backfill(sb, 0, concurrency)
        bulk = backfill(sb, bulk_rows, concurrency)
        for name, run in (("REST", rest), ("Bulk 2.0", bulk)):
            print(
                f"{name:8s} {sum(run.records.values()):,} records ({dict(run.records)}): "
                f"{sum(run.requests.values())} requests ({dict(run.requests)}), "
                f"{run.elapsed:.1f} s"
            )
        print(
            f"same records: {rest.ids == bulk.ids}; Bulk 2.0 against REST: "
            f"{sum(bulk.requests.values()) / sum(rest.requests.values()):.2f}x the requests, "
            f"{bulk.elapsed / rest.elapsed:.2f}x the time"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("people", nargs="?", type=int, default=20_000)
    parser.add_argument("seed", nargs="?", type=int, default=3)
    parser.add_argument("--bulk-rows", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    main(args.people, args.seed, args.bulk_rows, args.concurrency)
