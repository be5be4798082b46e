"""HubSpot contacts read as ranges of ids at once (`HubSpotConfig.concurrency`): the same
contacts and cursor as one keyset search, real overlap at the sandbox, and a window of a
page or less read whole. Over real HTTPS against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from connectors.config import HubSpotConfig, ThrottleSettings
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_sources import SEARCH_PAGE
from tests.connectors.conftest import FAST, TEST_RETRY

SEED = 11
PEOPLE = 1500  # 750 HubSpot contacts: four pages of a search
SEARCH = "POST /crm/v3/objects/contacts/search"
TEST_SEARCH = ThrottleSettings(rate=4.5, burst=5)  # as the other connector tests
PRODUCTION = HubSpotConfig.model_fields["throttle"].default
PRODUCTION_SEARCH = HubSpotConfig.model_fields["search_throttle"].default


def _connector(
    handle: Any,
    concurrency: int,
    *,
    throttle: ThrottleSettings = FAST,
    search_throttle: ThrottleSettings = TEST_SEARCH,
) -> HubSpotConnector:
    return HubSpotConnector(
        HubSpotConfig(
            access_token=handle.hubspot_token,
            host=handle.base_url,
            ca_file=handle.ca_file,
            timeout_s=5.0,
            throttle=throttle,
            search_throttle=search_throttle,
            retry=TEST_RETRY,
            concurrency=concurrency,
        )
    )


def _contacts(
    connector: HubSpotConnector, since: datetime | None = None
) -> tuple[list[str], datetime | None]:
    """Each contact whole, as text, in the order read; and the pull's cursor."""
    records: list[str] = []
    cursors: list[datetime | None] = []
    for page in connector.pull_contacts(since):
        assert page.errors == []
        records += [c.model_dump_json() for c in page.records]
        cursors.append(page.cursor)
    # Only the last page carries the cursor, however many ranges were read.
    assert cursors[:-1] == [None] * (len(cursors) - 1)
    return records, cursors[-1]


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=PEOPLE, seed=SEED) as handle:
        yield handle


def test_ranges_read_the_same_contacts_and_cursor_as_one_search(sb: Any) -> None:
    sb.admin.reset()
    one, one_cursor = _contacts(_connector(sb, 1))
    serial = sb.admin.stats()["requests"][SEARCH]
    sb.admin.reset()
    four, four_cursor = _contacts(_connector(sb, 4))
    ranged = sb.admin.stats()["requests"][SEARCH]
    assert len(one) > 3 * SEARCH_PAGE
    assert sorted(four) == sorted(one) and len(set(four)) == len(four)
    assert four_cursor == one_cursor is not None
    # The two bounds requests, and at most one short page more per range.
    assert serial < ranged <= serial + 2 + 4


def test_a_window_of_a_page_or_less_is_read_whole(sb: Any) -> None:
    _, cursor = _contacts(_connector(sb, 1))
    assert cursor is not None
    since = cursor - timedelta(hours=12)
    sb.admin.reset()
    one, _ = _contacts(_connector(sb, 1), since)
    serial = sb.admin.stats()["requests"][SEARCH]
    sb.admin.reset()
    four, _ = _contacts(_connector(sb, 4), since)
    assert 0 < len(one) <= SEARCH_PAGE
    assert four == one
    # One request to learn the window is small, then the same search.
    assert sb.admin.stats()["requests"][SEARCH] == serial + 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_range_searches_overlap_at_the_sandbox_only_when_asked(concurrency: int) -> None:
    from sandbox.testing import running_sandbox

    # Production throttles (searches spaced at under 5 a second) against the sandbox's
    # limits, and search's real answer time (median 500 ms): searches sent at once meet
    # at the sandbox, and one at a time never do.
    with running_sandbox(contacts=PEOPLE, seed=SEED, latency=1.0) as handle:
        connector = _connector(
            handle, concurrency, throttle=PRODUCTION, search_throttle=PRODUCTION_SEARCH
        )
        handle.admin.reset()
        records, _ = _contacts(connector)
        peak = handle.admin.latency()["peak_waiting"]
        stats = handle.admin.stats()
    assert len(records) > 3 * SEARCH_PAGE
    assert stats["throttled_by_policy"] == {}
    if concurrency == 1:
        assert peak == 1
    else:
        assert 2 <= peak <= concurrency
