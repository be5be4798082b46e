"""Acceptance: a full pull of ~10,000 contacts and their activities from each CRM returns
exactly the sandbox's records, and a pull plus write-back costs at most 1.05 x the
fewest requests the page and batch sizes allow; a second pull costs one call per stream."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bench.workload import (
    expected_ids,
    hubspot_activities,
    minimum_requests,
    pull,
    pulled_ids,
    record_counts,
    write_back,
)
from connectors import hubspot_sources
from connectors.config import ThrottleSettings
from connectors.hubspot import HubSpotConnector
from scoring.writes import OutcomeStatus
from tests.connectors.conftest import make_connector

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


def _by_form(requests: dict[str, int]) -> dict[str, int]:
    """Request counts with each form's GUID in the path folded into `{guid}`."""
    out: dict[str, int] = {}
    for key, n in requests.items():
        key = re.sub(r"/forms/[0-9a-f-]{36}$", "/forms/{guid}", key)
        out[key] = out.get(key, 0) + n
    return out


@pytest.mark.slow
def test_full_pull_then_write_back(crm: str, big_sandbox: Any) -> None:
    sb = big_sandbox
    connector = make_connector(crm, sb, throttle=UNLIMITED, search_throttle=UNLIMITED)
    if isinstance(connector, HubSpotConnector):
        # The sandbox's data is anchored at 2026-11-01: read all of it, whatever the day,
        # rather than the last `activity_lookback_days`.
        everything = connector._config.model_copy(update={"activity_lookback_days": None})
        connector = HubSpotConnector(everything)
    expected = sb.admin.expected(crm)
    counts = record_counts(crm, expected)
    activities = hubspot_activities(sb, expected) if crm == "hubspot" else None

    sb.admin.reset()
    first = pull(connector)
    pull_requests = _requests(sb)

    assert first.issues == [] and first.warnings == []
    # HubSpot: the webinar form (registrations come from participations) and the email
    # events and submissions of archived contacts, whose emails name no contact.
    assert first.skipped == (activities.skipped if activities else 0)
    got, want = pulled_ids(first), expected_ids(crm, expected, activities)
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
        assert activities is not None
        # The overlap may hold recipients and submitters to look up again: at most one
        # read for each of the two sources that name contacts by email.
        assert again.pop("POST /crm/v3/objects/contacts/batch/read", 0) <= 2
        # and CRM objects whose contacts to read (one call for up to 1,000 objects).
        for obj in activities.objects:
            assert again.pop(f"POST /crm/v4/associations/{obj}/contacts/batch/read", 0) <= 1
        assert _by_form(again) == {
            "POST /crm/v3/objects/contacts/search": 1,
            # One request per source (Events API type, email event type, form, CRM object)
            # and the lists of forms, marketing events and custom event definitions; the
            # participations have no time filter: each event's are read whole every time.
            "GET /events/v3/events": len(activities.events),
            "GET /events/v3/event-definitions": 1,
            "GET /email/public/v1/events": len(activities.email_events),
            "GET /marketing/v3/forms": 1,
            "GET /form-integrations/v1/submissions/forms/{guid}": len(activities.submissions),
            "GET /marketing/marketing-events/v3": 1,
            "GET /marketing/v3/marketing-events/participations/{id}/breakdown": sum(
                math.ceil(n / hubspot_sources.PARTICIPATIONS_PAGE)
                for n in activities.participations.values()
            ),
            "POST /crm/v3/objects/meetings/search": 1,
            "POST /crm/v3/objects/calls/search": 1,
            "POST /crm/v3/objects/emails/search": 1,
            "POST /crm/v3/objects/communications/search": 1,
            # The archived list has no time filter and is read whole, so at most daily:
            # not again in the second pull.
        }
    else:
        assert again == {
            # Lead, Contact, Task, Event, CampaignMember; converted Leads
            "GET /services/data/v59.0/query": 6,
            "GET /services/data/v59.0/queryAll": 2,  # deleted Leads, Contacts
        }

    sb.admin.reset()
    writes = write_back(connector, first.contacts)
    write_requests = _requests(sb)
    assert {o.status for o in writes.outcomes} == {OutcomeStatus.OK}

    used = sum(pull_requests.values()) + sum(write_requests.values())
    minimum = minimum_requests(crm, counts, writes, activities)
    print(
        f"\n{crm}: pulled {len(got['contacts'])} contacts, {len(got['activities'])} activities, "
        f"{len(got['deletions'])} deletions; requests pull+write {used} vs minimum {minimum} "
        f"({used / minimum:.3f}x); second pull {sum(again.values())}"
    )
    assert used <= 1.05 * minimum, {**pull_requests, **write_requests}
