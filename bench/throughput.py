"""A HubSpot sync at the portal's rate limit, as a real portal answers: the sandbox's
latency profile on (median 250 ms, search 500 ms), Professional limits (190 requests per
10 s, search 5 per second), the connector's production throttles.

The streams are pulled as the sync flow pulls them (contacts and activities side by
side, then deletions). Three runs, as a portal sees them: the first sync (everything
pulled, every contact's score written, a few MQL moves and tasks), then one after a day
of the sandbox's clock (`advance 1`: people keep engaging, sales works tasks; the
contacts that changed are pulled and written), then one with nothing new. Each prints
requests, elapsed, the utilisation (requests / (elapsed x the limit)), the 429s, and the
floor: the time the limits allow for the requests the run needs (the larger of all
requests at 19 per second and the searches at 5 per second), against the time taken. For
the first sync the requests it needs are the fewest the page and batch sizes allow
(`bench.workload`); for the others, the requests made.

    .venv/bin/python bench/throughput.py [people] [seed] [--concurrency N]

`--concurrency` defaults to the flows' own default (`MQLSYNC_HUBSPOT_CONCURRENCY`): the
figures are what a sync left at its defaults does.

Targets (the issue's): utilisation >= 0.85 on the first sync, 429s under 1%, elapsed
within 1.2 x the floor; no write when nothing changed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.workload import (  # noqa: E402
    Pulled,
    Writes,
    hubspot_activities,
    minimum_requests,
    pull,
    record_counts,
    write_back,
)
from connectors.config import HubSpotConfig  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from flows.settings import Settings  # noqa: E402
from sandbox.run import SandboxHandle, running_sandbox  # noqa: E402

LIMIT_PER_S = 19.0  # Professional: 190 requests per 10 seconds
SEARCH_PER_S = 5.0


@dataclass
class Run:
    name: str
    requests: int
    searches: int
    throttled: int
    elapsed: float
    contacts: int
    written: int
    minimum: int | None = None

    def floor(self) -> float:
        needed = self.minimum if self.minimum is not None else self.requests
        return max(needed / LIMIT_PER_S, self.searches / SEARCH_PER_S)

    def line(self) -> str:
        utilisation = self.requests / (self.elapsed * LIMIT_PER_S)
        floor = self.floor()
        minimum = "" if self.minimum is None else f" (fewest possible {self.minimum})"
        share = self.throttled / self.requests if self.requests else 0.0
        return (
            f"{self.name:12s} contacts={self.contacts} written={self.written} "
            f"requests={self.requests}{minimum} searches={self.searches} "
            f"elapsed={self.elapsed:.1f}s utilisation={utilisation:.2f} "
            f"429s={self.throttled} ({share:.1%}) floor={floor:.1f}s "
            f"elapsed/floor={self.elapsed / floor:.2f}"
        )


def _measured(
    sb: SandboxHandle, name: str, work: Callable[[], tuple[Pulled, Writes | None]]
) -> tuple[Run, Pulled, Writes | None]:
    sb.admin.reset()
    started = time.perf_counter()
    pulled, writes = work()
    elapsed = time.perf_counter() - started
    stats = sb.admin.stats()
    requests = stats["requests"]
    run = Run(
        name=name,
        requests=sum(requests.values()),
        searches=sum(n for key, n in requests.items() if key.endswith("/search")),
        throttled=sum(stats["throttled_by_policy"].values()),
        elapsed=elapsed,
        contacts=len(pulled.contacts),
        written=0 if writes is None else writes.updates,
    )
    return run, pulled, writes


def main(people: int, seed: int, concurrency: int) -> None:
    with running_sandbox(contacts=people, seed=seed, latency=1.0) as sb:
        config = HubSpotConfig(
            access_token=sb.hubspot_token,
            host=sb.base_url,
            ca_file=sb.ca_file,
            activity_lookback_days=None,  # a first sync reads the whole history
            concurrency=concurrency,
            # Runs seconds apart: a schedule's 15 minutes put the last run's own writes
            # outside the 5-minute overlap, which here would read them all again.
            overlap_minutes=0.0,
        )
        connector = HubSpotConnector(config)
        expected = sb.admin.expected("hubspot")
        sources = hubspot_activities(sb, expected)
        counts = record_counts("hubspot", expected)
        medians = sb.admin.latency()["effective_median_ms"]
        print(
            f"{people} people, seed {seed}, concurrency {concurrency}; limits "
            f"{LIMIT_PER_S:g}/s, search {SEARCH_PER_S:g}/s; answer-time medians (ms): {medians}"
        )

        def first() -> tuple[Pulled, Writes | None]:
            pulled = pull(connector, at_once=True)
            return pulled, write_back(connector, pulled.contacts)

        run, pulled, writes = _measured(sb, "first sync", first)
        run.minimum = minimum_requests("hubspot", counts, writes, sources)
        print(run.line(), flush=True)
        cursors: dict[str, datetime | None] = dict(pulled.cursors)

        known = {contact.crm_id: contact for contact in pulled.contacts}

        def incremental() -> tuple[Pulled, Writes | None]:
            # A sync writes only the scores that moved: those of contacts new since the
            # last run and of contacts with new activity.
            pulled = pull(connector, cursors, at_once=True)
            new = [c for c in pulled.contacts if c.crm_id not in known]
            known.update({c.crm_id: c for c in pulled.contacts})
            fresh = {c.crm_id for c in new}
            engaged = {a.contact_id for a in pulled.activities if a.contact_id in known}
            changed = new + [known[i] for i in sorted(engaged - fresh)]
            return pulled, write_back(connector, changed) if changed else None

        day = sb.admin.advance(1)
        print(
            f"advance 1 day: {day['activities']} activities, {day['tasks_worked']} tasks worked",
            flush=True,
        )
        run, pulled, _ = _measured(sb, "after a day", incremental)
        print(run.line() + f" ({run.written / people:.1%} of the people written)", flush=True)
        cursors.update({k: v for k, v in pulled.cursors.items() if v is not None})
        run, _, _ = _measured(sb, "nothing new", incremental)
        print(run.line(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("people", type=int, nargs="?", default=20_000)
    parser.add_argument("seed", type=int, nargs="?", default=3)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=Settings.model_fields["hubspot_concurrency"].default,
        help="requests in flight at once (default: the flows' MQLSYNC_HUBSPOT_CONCURRENCY)",
    )
    args = parser.parse_args()
    main(args.people, args.seed, args.concurrency)
