"""Acceptance: a full pull of ~10,000 contacts and their activities from each CRM returns
exactly the sandbox's records, and a pull plus write-back costs at most 1.05 x the
fewest requests the page and batch sizes allow; a second pull costs one call per stream."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import hubspot_pulls as hubspot
from connectors.config import ThrottleSettings
from scoring.writes import OutcomeStatus
from tests.connectors.conftest import make_connector
from tests.connectors.workload import (
    expected_ids,
    minimum_requests,
    pull,
    pulled_ids,
    record_counts,
    write_back,
)

# 20,500 people: half in each CRM, so HubSpot holds more live contacts than one search
# can page through (10,000 results), and the pull must get past the cap.
PEOPLE = 20_500
UNLIMITED = ThrottleSettings(rate=10_000, burst=1_000)


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    # Limits raised so the test measures the connectors, not the sandbox's budgets; the
    # connectors' own defaults (HubSpot search 4/s) are tested in test_throttle_paging.
    with running_sandbox(
        contacts=PEOPLE, seed=3, hubspot_search_per_s=10_000, hubspot_per_10s=1_000_000
    ) as handle:
        yield handle


def _requests(handle: Any) -> dict[str, int]:
    return dict(handle.admin.stats()["requests"])


@pytest.mark.slow
def test_full_pull_then_write_back(crm: str, big_sandbox: Any) -> None:
    sb = big_sandbox
    connector = make_connector(crm, sb, throttle=UNLIMITED, search_throttle=UNLIMITED)
    expected = sb.admin.expected(crm)
    counts = record_counts(crm, expected)

    sb.admin.reset()
    first = pull(connector)
    pull_requests = _requests(sb)

    assert first.issues == [] and first.skipped == 0
    got, want = pulled_ids(first), expected_ids(crm, expected)
    for stream, ids in got.items():
        assert len(ids) == len(set(ids)), f"{stream}: doubles"
        assert set(ids) == want[stream], f"{stream}: missed or extra"
    if crm == "hubspot":
        assert len(got["contacts"]) > 10_000  # past the search cap
    assert all(first.cursors.values())

    sb.admin.reset()
    pull(connector, first.cursors)
    again = _requests(sb)
    if crm == "hubspot":
        # The archived list has no time filter: it is read whole, 100 a page, every time.
        archived_pages = math.ceil(counts["archived"] / hubspot.LIST_PAGE)
        assert again == {
            "POST /crm/v3/objects/contacts/search": 1,
            "GET /events/v3/events": 1,
            "POST /crm/v3/objects/meetings/search": 1,
            "GET /crm/v3/objects/contacts": archived_pages,
        }
    else:
        assert again == {
            "GET /services/data/v59.0/query": 5,  # Lead, Contact, Task, Event, CampaignMember
            "GET /services/data/v59.0/queryAll": 2,  # deleted Leads, Contacts
        }

    sb.admin.reset()
    writes = write_back(connector, first.contacts)
    write_requests = _requests(sb)
    assert {o.status for o in writes.outcomes} == {OutcomeStatus.OK}

    used = sum(pull_requests.values()) + sum(write_requests.values())
    minimum = minimum_requests(crm, counts, writes)
    print(
        f"\n{crm}: pulled {len(got['contacts'])} contacts, {len(got['activities'])} activities, "
        f"{len(got['deletions'])} deletions; requests pull+write {used} vs minimum {minimum} "
        f"({used / minimum:.3f}x); second pull {sum(again.values())}"
    )
    assert used <= 1.05 * minimum, {**pull_requests, **write_requests}
