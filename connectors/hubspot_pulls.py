"""HubSpot pulls: contacts, activities and archived contacts, as pages of canonical records.

Contacts come from the search API ordered by `hs_object_id` and paged by key
(`hs_object_id > last id`) rather than by offset, so the 10,000-result cap of a single
search never applies and no record is skipped or read twice; with `concurrency` above 1,
a window of more than a page is read as that many ranges of ids at once. Activities come from the
sources the mapping declares (`connectors.hubspot_sources`), in one pull: one after the
other, or `HubSpotConfig.concurrency` of them at once.
A bounded pull (`until`) asks each API for its window where the API takes a bound (search
filters, the events and email events APIs) and keeps it itself where it does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.hubspot_sources import (
    ASSOCIATIONS_BATCH,
    EVENTS_PAGE,
    SEARCH_PAGE,
    HubSpotSources,
    PullContext,
    after_token,
    window_filter,
)
from connectors.paging import Page, paginate, with_last
from connectors.protocol import Deletion
from connectors.streams import Fetch, Stream, at, pull
from connectors.translate import last_numeric_id, parse_datetime, properties_of, to_contact
from scoring.records import Activity, Contact, Crm

LIST_PAGE = 100
__all__ = ["ASSOCIATIONS_BATCH", "EVENTS_PAGE", "LIST_PAGE", "SEARCH_PAGE", "HubSpotPulls"]


class HubSpotPulls(HubSpotSources):
    """The read side of `HubSpotConnector`: what it pulls, over the connector's `_call`."""

    crm: Crm
    _contacts_search: Any

    # --- pulls -------------------------------------------------------------------------

    def pull_contacts(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Contact]]:
        """Contacts modified at or after `since` minus the overlap (and before `until`),
        by keyset search."""
        source = self._mapping.contacts[0]
        updated = source.fields.get("updated_at", "lastmodifieddate")
        properties = source.crm_fields((self._mapping.stage.field,))

        def search(filters: list[dict[str, Any]]) -> Iterator[list[Any]]:
            responses = self._keyset_search(
                self._contacts_search.do_search, filters, properties, "contacts search"
            )
            return (response.get("results") or [] for response in responses)

        def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[Any]]:
            return search(window_filter(updated, start, until))

        def split(start: datetime | None, until: datetime | None, count: int) -> list[Fetch]:
            ranges = self._id_ranges(window_filter(updated, start, until), count)

            def part(bounds: list[dict[str, Any]]) -> Fetch:
                return lambda start, until: search(window_filter(updated, start, until) + bounds)

            return [part(bounds) for bounds in ranges]

        def translate(item: Any, crm_id: str) -> Contact:
            return to_contact(self._mapping, source, crm_id, properties_of(item))

        stream = Stream("contacts", fetch, translate, time=at("properties", updated), split=split)
        return pull([stream], since, self._config.overlap_minutes, until=until,
                    concurrency=self._config.concurrency)  # fmt: skip

    def _id_ranges(self, window: list[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
        """Filters that split the contacts of the window into up to `count` ranges of
        `hs_object_id` of equal width, one keyset search each; none (read whole) when the
        window holds no more than a page.

        The bounds come from two searches of one result each, sorted up and down: the
        first also says how many contacts the window holds. Contact ids are handed out
        in order, so equal widths hold about equal numbers in a first sync."""

        def first(direction: str) -> tuple[int, int | None]:
            body = {
                "filterGroups": [{"filters": window}] if window else [],
                "sorts": [{"propertyName": "hs_object_id", "direction": direction}],
                "properties": ["hs_object_id"],
                "limit": 1,
            }
            response = self._call(
                self._contacts_search.do_search, body, search=True, what="contacts search bounds"
            )
            return int(response.get("total") or 0), last_numeric_id(response.get("results") or [])

        total, low = first("ASCENDING")
        parts = min(count, -(-total // SEARCH_PAGE))
        if parts < 2 or low is None:
            return []
        _, high = first("DESCENDING")
        if high is None or high <= low:
            return []
        width = high - low + 1
        edges = [str(low + width * k // parts) for k in range(1, parts)]
        # The outer ranges are open: a contact created past the high bound while the pull
        # runs is read by the last one, as one read whole would.
        ranges = [[{"propertyName": "hs_object_id", "operator": "LT", "value": edges[0]}]]
        for below, above in itertools.pairwise(edges):
            ranges.append(
                [
                    {"propertyName": "hs_object_id", "operator": "GTE", "value": below},
                    {"propertyName": "hs_object_id", "operator": "LT", "value": above},
                ]
            )
        ranges.append([{"propertyName": "hs_object_id", "operator": "GTE", "value": edges[-1]}])
        return ranges

    def pull_activities(
        self,
        since: datetime | None,
        sources: Mapping[str, datetime] | None = None,
        *,
        until: datetime | None = None,
    ) -> Iterator[Page[Activity]]:
        """Every activity source the mapping declares, in one pull (`concurrency` of them
        at once).

        Each source reads from its own cursor in `sources` where one is stored, so a
        source refused for a while (a scope granted later) reads what it missed. A first
        pull (no cursor) reaches back `activity_lookback_days`, not all history. With
        `until`, every source reads the window from `since` to `until`.
        """
        lookback = self._config.activity_lookback_days
        floor = None if lookback is None else datetime.now(UTC) - timedelta(days=lookback)
        streams = self._activity_streams(PullContext())
        return pull(streams, since, self._config.overlap_minutes, floor=floor,
                    source_since=sources, until=until,
                    concurrency=self._config.concurrency)  # fmt: skip

    def pull_deletions(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Deletion]]:
        """Archived contacts, read whole at most every `archive_scan_hours`.

        HubSpot's archived list has neither a time filter nor a sort, and search does not
        see archived records: the only way to find new archives is to read the list
        whole. So it is read at most so often, and the cursor is the moment the last whole
        read began (every archive before it was seen), not the newest archive time. A
        bounded pull (`until`) reads the list whole and keeps the archives of its window.
        """
        if until is not None:
            yield from self._archived(since, until)
            return
        began = datetime.now(UTC)
        every = timedelta(hours=self._config.archive_scan_hours)
        if since is not None and began - since < every:
            yield Page([], cursor=since)  # read whole less than `every` ago: nothing to do
            return
        for page, last in with_last(self._archived(since, None)):
            yield Page(page.records, began if last else None, page.errors, page.skipped,
                       page.warnings)  # fmt: skip

    def _archived(self, since: datetime | None, until: datetime | None) -> Iterator[Page[Deletion]]:
        """The archived list read whole; the engine keeps the archives of the window."""

        # The list takes no time filter: the engine keeps the window (`time_filter`).
        def fetch(_start: datetime | None, _until: datetime | None) -> Iterator[list[Any]]:
            def page(after: str | None) -> dict[str, Any]:
                params: dict[str, Any] = {
                    "limit": LIST_PAGE,
                    "archived": True,
                    "properties": ["hs_object_id"],
                }
                if after is not None:
                    params["after"] = after
                return self._call(self._contacts_basic.get_page, what="archived contacts", **params)

            return (response.get("results") or [] for response in paginate(page, after_token))

        def translate(item: Any, crm_id: str) -> Deletion:
            return Deletion(self.crm, crm_id, parse_datetime(item.get("archivedAt"), "archivedAt"))

        stream = Stream("archived", fetch, translate, time=at("archivedAt"), time_filter=True)
        return pull([stream], since, self._config.overlap_minutes, until=until)
