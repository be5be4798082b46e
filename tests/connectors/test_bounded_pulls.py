"""A bounded pull (`until`) reads only its window, on both connectors, over TLS against
the sandbox: exactly what a pull from the window's start returns, less what a pull from
its end returns; and HubSpot is asked for the window in each API's own terms."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from connectors.hubspot_sources import ms
from connectors.paging import Page
from connectors.protocol import CrmConnector
from tests.connectors.conftest import make_connector

STREAMS = ("contacts", "activities", "deletions")


def _window(sb: Any) -> tuple[datetime, datetime]:
    """September 2026: a month of history, with more of it after (the data's "now" is
    2026-11-01), so that a pull from the start alone would read past the window."""
    as_of = datetime.fromisoformat(sb.admin.info()["as_of"].replace("Z", "+00:00"))
    until = as_of.astimezone(UTC) - timedelta(days=31)
    return until - timedelta(days=30), until


def _pages(
    connector: CrmConnector, stream: str, since: datetime, until: datetime | None
) -> Iterator[Page[Any]]:
    if until is None:  # the incremental pull, called as the sync calls it
        pulls = {"contacts": connector.pull_contacts, "deletions": connector.pull_deletions}
        return connector.pull_activities(since) if stream == "activities" else pulls[stream](since)
    if stream == "contacts":
        return connector.pull_contacts(since, until=until)
    if stream == "activities":
        return connector.pull_activities(since, until=until)
    return connector.pull_deletions(since, until=until)


def _ids(pages: Iterator[Page[Any]]) -> list[str]:
    return [record.crm_id for page in pages for record in page.records]


@pytest.mark.parametrize("stream", STREAMS)
def test_a_bounded_pull_returns_exactly_its_window(
    crm: str, stream: str, small_sandbox: Any
) -> None:
    connector = make_connector(crm, small_sandbox)
    since, until = _window(small_sandbox)
    overlap = timedelta(minutes=connector._config.overlap_minutes)  # type: ignore[attr-defined]
    from_start = set(_ids(_pages(connector, stream, since, None)))
    # A pull whose window starts at `until` exactly: what the bounded pull must leave out.
    from_end = set(_ids(_pages(connector, stream, until + overlap, None)))
    pages = list(_pages(connector, stream, since, until))
    bounded = [record.crm_id for page in pages for record in page.records]
    assert len(bounded) == len(set(bounded))
    assert set(bounded) == from_start - from_end
    # Nothing of a window is a place for the schedule to resume from.
    assert all(page.cursor is None and not page.source_cursors for page in pages)
    if stream != "deletions":  # the small sandbox's deletions may all lie elsewhere
        assert bounded and from_end, "the window or what follows it is empty: proves nothing"


def test_hubspot_is_asked_for_the_window_in_each_apis_terms(small_sandbox: Any) -> None:
    """The upper bound goes to the server where the API takes one: a search filter `LT`
    beside the `GTE`, the events API's `occurredBefore`, the email events API's inclusive
    `endTimestamp` (the last millisecond before the end)."""
    connector = make_connector("hubspot", small_sandbox)
    since, until = _window(small_sandbox)
    small_sandbox.sandbox.exchanges = []
    try:
        for stream in ("contacts", "activities"):
            _ids(_pages(connector, stream, since, until))
        exchanges = list(small_sandbox.sandbox.exchanges)
    finally:
        small_sandbox.sandbox.exchanges = None
    searches = [e for e in exchanges if e.path.endswith("/search")]
    assert {e.path.split("/")[4] for e in searches} >= {"contacts", "meetings", "calls"}
    for search in searches:
        for group in search.request_body["filterGroups"]:
            bounds = {f["operator"]: f["value"] for f in group["filters"] if f["operator"] != "GT"}
            assert bounds == {"GTE": ms(since - timedelta(minutes=5)), "LT": ms(until)}, search
    events = [parse_qs(e.query) for e in exchanges if e.path.rstrip("/") == "/events/v3/events"]
    assert events and all("occurredBefore" in q and "occurredAfter" in q for q in events)
    assert {
        datetime.fromisoformat(q["occurredBefore"][0].replace("Z", "+00:00")) for q in events
    } == {until}
    emails = [parse_qs(e.query) for e in exchanges if e.path == "/email/public/v1/events"]
    assert emails and {q["endTimestamp"][0] for q in emails} == {str(int(ms(until)) - 1)}
