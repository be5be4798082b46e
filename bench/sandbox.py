"""What the sandbox itself costs: requests per second for HubSpot search and batch
update and for Salesforce query paging and collection updates, through the real clients,
with rate limits off, next to the time the sandbox spent serving each request (from its
admin stats). Later benchmarks subtract these to see the connector's own cost.

    .venv/bin/python bench/sandbox.py                   # 20,000 contacts, ~2 s per figure
    .venv/bin/python bench/sandbox.py --scale           # also: build 100k contacts / 2M activities
    .venv/bin/python bench/sandbox.py --contacts 100000 # measure against the big population
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# This file is named like the package it measures; drop its own folder from the import
# path so that `import sandbox` finds the package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from hubspot.crm.contacts import (  # noqa: E402
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)

from sandbox.run import SandboxHandle, running_sandbox, sandbox_process  # noqa: E402

_SCALE_SNIPPET = """
import resource, time
t = time.perf_counter()
from sandbox.population import PopulationSpec
from sandbox.state import build_sandbox
sb = build_sandbox(PopulationSpec(contacts={contacts}, seed=1))
n = len(sb.population.hubspot) + len(sb.population.salesforce)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{{time.perf_counter() - t:.2f}} {{n}} {{rss}}")
"""


def rate(
    sb: SandboxHandle,
    label: str,
    endpoint: str,
    call: Callable[[int], int],
    seconds: float,
    workers: int,
) -> None:
    """Run `call(i)` (returning records handled) for `seconds` on `workers` threads and
    print client-seen rates next to the server's own time per request (admin stats)."""
    sb.admin.reset()
    deadline = time.perf_counter() + seconds
    counts = [0, 0]
    lock = threading.Lock()

    def worker(w: int) -> None:
        i = w
        while time.perf_counter() < deadline:
            records = call(i)
            with lock:
                counts[0] += 1
                counts[1] += records
            i += workers

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    elapsed = time.perf_counter() - started
    stats = sb.admin.stats()
    served = stats["requests"].get(endpoint, 0)
    server_ms = 1000 * stats["server_seconds"].get(endpoint, 0.0) / max(1, served)
    print(
        f"  {label:<42} {counts[0] / elapsed:7.1f} req/s {counts[1] / elapsed:9.0f} rec/s"
        f"   sandbox {server_ms:6.2f} ms/req  ({counts[0]} requests)"
    )


def measure(sb: SandboxHandle, seconds: float, workers: int) -> None:
    expected_hs = sb.admin.expected("hubspot")["contacts"]
    hs = sb.hubspot_client()
    search = hs.crm.contacts.search_api
    sorts = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]

    def search_page(i: int) -> int:
        # A sync window's page: modstamp range, sorted, 200 a page, paging through 2,000.
        body = PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
            ],
            sorts=sorts,
            properties=["email", "lifecyclestage", "lastmodifieddate"],
            limit=200,
            after=str((i % 10) * 200),
        )
        return len(search.do_search(public_object_search_request=body).results)

    batch = hs.crm.contacts.batch_api

    def batch_update(i: int) -> int:
        start = (i * 100) % max(1, len(expected_hs) - 100)
        ids = expected_hs[start : start + 100]
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=c, properties={"mqlsync_score": str(i % 100)})
                for c in ids
            ]
        )
        return len(batch.update(batch_input_simple_public_object_batch_input=body).results)

    sf = sb.salesforce_client()
    leads = sb.admin.expected("salesforce")["leads"]

    def query_page(i: int) -> int:
        return len(
            sf.query(
                "SELECT Id, Email, Status, SystemModstamp FROM Lead "
                "ORDER BY SystemModstamp, Id LIMIT 2000"
            )["records"]
        )

    def collection_update(i: int) -> int:
        start = (i * 200) % max(1, len(leads) - 200)
        records = [
            {"attributes": {"type": "Lead"}, "id": lid, "MQL_Score__c": i % 100}
            for lid in leads[start : start + 200]
        ]
        return len(
            sf.restful(
                "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
            )
        )

    for w in sorted({1, workers}):
        print(f"-- {w} client thread{'s' * (w > 1)}")
        rate(
            sb,
            "HubSpot search (200/page)",
            "POST /crm/v3/objects/contacts/search",
            search_page,
            seconds,
            w,
        )
        rate(
            sb,
            "HubSpot batch update (100/call)",
            "POST /crm/v3/objects/contacts/batch/update",
            batch_update,
            seconds,
            w,
        )
        rate(
            sb,
            "Salesforce query (2,000/page)",
            "GET /services/data/v59.0/query",
            query_page,
            seconds,
            w,
        )
        rate(
            sb,
            "Salesforce collections update (200/call)",
            "PATCH /services/data/v59.0/composite/sobjects",
            collection_update,
            seconds,
            w,
        )


def scale(contacts: int) -> None:
    """Build a population in a fresh process: wall time and peak memory."""
    out = subprocess.run(
        [sys.executable, "-c", _SCALE_SNIPPET.format(contacts=contacts)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    secs, activities, rss_kb = float(out[0]), int(out[1]), int(out[2])
    print(
        f"  build {contacts:,} contacts / {activities:,} activities: {secs:.1f} s, "
        f"peak RSS {rss_kb / 1024:.0f} MB (process total)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=2.0, help="per figure")
    parser.add_argument("--workers", type=int, default=4, help="client threads, 2nd round")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve from a thread of this process (default: a subprocess)",
    )
    parser.add_argument(
        "--scale", action="store_true", help="also build 100,000 contacts / ~2,000,000 activities"
    )
    args = parser.parse_args()
    if args.scale:
        print("Generation (fresh process)")
        scale(100_000)
    started = time.perf_counter()
    if args.in_process:
        context = running_sandbox(contacts=args.contacts, seed=1, enabled=False)
    else:
        context = sandbox_process(contacts=args.contacts, seed=1)
    with context as sb:
        sb.admin.set_limits(enabled=False)
        info = sb.admin.info()
        where = "in this process" if args.in_process else "in a subprocess"
        print(
            f"Sandbox: {args.contacts:,} contacts, "
            f"{info['counts']['hubspot_activities'] + info['counts']['salesforce_activities']:,} "
            f"activities, up in {time.perf_counter() - started:.1f} s "
            f"(build {info['build_seconds']:.1f} s), {where}; rate limits off"
        )
        measure(sb, args.seconds, args.workers)
    print(
        f"peak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
