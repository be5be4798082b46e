"""Connector throughput: full pull of contacts and activities from each CRM in the sandbox.

Prints records/s and requests used against the minimum the page sizes allow. Requests
are counted at the connectors' own throttle (every HTTP attempt passes it once).

    .venv/bin/python bench/connectors.py [contacts] [seed]
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings
from connectors.hubspot import EVENTS_PAGE, SEARCH_PAGE, HubSpotConnector
from connectors.throttle import Throttle, TokenBucket

SF_PAGE = 2000


def _throttle(counter: Counter[str], rate: float, search_rate: float | None = None) -> Throttle:
    buckets = {"default": TokenBucket(rate, int(rate))}
    if search_rate:
        buckets["search"] = TokenBucket(search_rate, int(search_rate))
    return Throttle(buckets, shared=lambda name: counter.update([name]))


def _drain(pages: Any) -> int:
    return sum(len(page.records) for page in pages)


def main(contacts: int = 10_000, seed: int = 1) -> None:
    from sandbox.testing import running_sandbox

    from connectors.salesforce import SalesforceConnector

    with running_sandbox(contacts=contacts, seed=seed) as sb:
        fast = ThrottleSettings(rate=1000, burst=1000)
        counter: Counter[str] = Counter()
        hubspot = HubSpotConnector(
            HubSpotConfig(access_token=sb.hubspot_token, host=sb.base_url, ca_file=sb.ca_file),
            throttle=_throttle(counter, 19.0, 5.0),
        )
        salesforce = SalesforceConnector(
            SalesforceConfig(
                instance_url=sb.base_url,
                session_id=sb.salesforce_session_id,
                ca_file=sb.ca_file,
                throttle=fast,
            ),
            throttle=_throttle(counter, 1000.0),
        )
        for name, connector in (("hubspot", hubspot), ("salesforce", salesforce)):
            counter.clear()
            started = time.perf_counter()
            n_contacts = _drain(connector.pull_contacts(None))
            n_activities = _drain(connector.pull_activities(None))
            elapsed = time.perf_counter() - started
            used = counter["default"]
            # A lower bound: every stream costs at least one request, then one per full page.
            if name == "hubspot":
                minimum = math.ceil(n_contacts / SEARCH_PAGE) + math.ceil(
                    n_activities / EVENTS_PAGE
                )
            else:
                minimum = max(2, math.ceil(n_contacts / SF_PAGE)) + max(
                    3, math.ceil(n_activities / SF_PAGE)
                )
            print(
                f"{name:10s} contacts={n_contacts} activities={n_activities} "
                f"{(n_contacts + n_activities) / elapsed:,.0f} records/s "
                f"requests={used} minimum≈{minimum} ratio={used / max(minimum, 1):.2f}"
            )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
