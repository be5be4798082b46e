"""HubSpot pulls: contacts, activities and archived contacts, as pages of canonical records.

Contacts come from the search API ordered by `hs_object_id` and paged by key
(`hs_object_id > last id`) rather than by offset, so the 10,000-result cap of a single
search never applies and no record is skipped or read twice. Activities come from the
events API (one stream per event type the mapping names) and from meetings with their
v4 contact associations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from connectors.common import chunks, groups, window_start
from connectors.config import HubSpotConfig
from connectors.mapping import Mapping
from connectors.paging import Page, RecordIssue, SeenIds, paginate, with_last
from connectors.protocol import Deletion
from connectors.translate import (
    RecordError,
    issue_id,
    last_numeric_id,
    parse_datetime,
    properties_of,
    record_id,
    to_activity,
    to_contact,
    valid_ids,
)
from scoring.records import Activity, Contact, Crm

SEARCH_PAGE = 200
LIST_PAGE = 100
EVENTS_PAGE = 1000  # the largest page the events API serves
ASSOCIATIONS_BATCH = 1000
MEETINGS = "meetings"


def _ms(value: datetime) -> str:
    return str(int(value.timestamp() * 1000))


class HubSpotPulls:
    """The read side of `HubSpotConnector`: what it pulls, over the connector's `_call`."""

    crm: Crm
    _config: HubSpotConfig
    _mapping: Mapping
    _contacts_search: Any
    _contacts_basic: Any
    _meetings_search: Any
    _associations: Any
    _events: Any

    def _call(
        self,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        idempotent: bool = True,
        what: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        raise NotImplementedError

    # --- pulls -------------------------------------------------------------------------

    def _keyset_search(
        self,
        search: Callable[..., Any],
        filters: list[dict[str, Any]],
        properties: list[str],
        what: str,
    ) -> Iterator[dict[str, Any]]:
        """Search responses ordered by hs_object_id, each next page keyed by the last id."""

        def fetch(last_id: int | None) -> dict[str, Any]:
            keyed = list(filters)
            if last_id is not None:
                keyed.append(
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}
                )
            body = {
                "filterGroups": [{"filters": keyed}] if keyed else [],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": properties,
                "limit": SEARCH_PAGE,
            }
            return self._call(search, body, search=True, what=what)

        def next_id(response: dict[str, Any]) -> int | None:
            results = response.get("results") or []
            if not results or not (response.get("paging") or {}).get("next"):
                return None
            return last_numeric_id(results)

        return paginate(fetch, next_id)

    def pull_contacts(self, since: datetime | None) -> Iterator[Page[Contact]]:
        """Contacts modified at or after `since` minus the overlap, by keyset search."""
        source = self._mapping.contacts[0]
        updated = source.fields.get("updated_at", "lastmodifieddate")
        start = window_start(since, self._config.overlap_minutes)
        filters = (
            []
            if start is None
            else [{"propertyName": updated, "operator": "GTE", "value": _ms(start)}]
        )
        properties = source.crm_fields((self._mapping.stage.field,))
        seen = SeenIds()
        high = since
        # An edit made during the pull to an id already passed is not in it: the cursor
        # may not pass the moment the pull began (the overlap window re-reads from there).
        began = datetime.now(UTC)
        responses = self._keyset_search(
            self._contacts_search.do_search, filters, properties, "contacts search"
        )
        for response, last in with_last(responses):
            records: list[Contact] = []
            errors: list[RecordIssue] = []
            for item in response.get("results") or []:
                try:
                    crm_id = record_id(item, "id")
                    if not seen.first_time(crm_id):
                        continue
                    contact = to_contact(self._mapping, source, crm_id, properties_of(item))
                except RecordError as exc:
                    errors.append(RecordIssue(issue_id(item, "id"), str(exc)))
                    continue
                records.append(contact)
                if contact.updated_at and (high is None or contact.updated_at > high):
                    high = contact.updated_at
            # Keyset order is by id, not time: only the finished pull may move the cursor.
            cursor = min(high, began) if last and high is not None else None
            yield Page(records, cursor=cursor, errors=errors)

    def pull_activities(self, since: datetime | None) -> Iterator[Page[Activity]]:
        """Events of every type since the window start (one stream), then meetings."""
        start = window_start(since, self._config.overlap_minutes)
        seen = SeenIds()
        high: list[datetime | None] = [since]
        streams: list[Iterator[Page[Activity]]] = [self._event_pages(start, seen, high)]
        if MEETINGS in self._mapping.activity_sources:
            streams.append(self._meeting_pages(start, seen, high))
        pages = (page for stream in streams for page in stream)
        for page, last in with_last(pages):
            yield Page(
                page.records,
                cursor=high[0] if last else None,
                errors=page.errors,
                skipped=page.skipped,
            )

    def _event_pages(
        self, start: datetime | None, seen: SeenIds, high: list[datetime | None]
    ) -> Iterator[Page[Activity]]:
        # One stream without an eventType filter: types the mapping does not name still
        # arrive and become `other`, and a dozen small streams would cost a dozen requests.
        def fetch(after: str | None) -> dict[str, Any]:
            params: dict[str, Any] = {
                "object_type": "contact",
                "limit": EVENTS_PAGE,
                "sort": ["occurredAt"],
            }
            if start is not None:
                params["occurred_after"] = start
            if after is not None:
                params["after"] = after
            return self._call(self._events.get_page, what="events", **params)

        def next_after(response: dict[str, Any]) -> str | None:
            return ((response.get("paging") or {}).get("next") or {}).get("after")

        for response in paginate(fetch, next_after):
            records: list[Activity] = []
            errors: list[RecordIssue] = []
            skipped = 0
            for event in response.get("results") or []:
                try:
                    crm_id = record_id(event, "id")
                    if not seen.first_time(crm_id):
                        continue
                    activity = to_activity(
                        self._mapping,
                        str(event.get("eventType")),
                        crm_id,
                        event.get("objectId"),
                        event.get("occurredAt"),
                        properties_of(event),
                    )
                except RecordError as exc:
                    errors.append(RecordIssue(issue_id(event, "id"), str(exc)))
                    continue
                if activity is None:
                    skipped += 1
                    continue
                records.append(activity)
                if high[0] is None or activity.occurred_at > high[0]:
                    high[0] = activity.occurred_at
            yield Page(records, cursor=None, errors=errors, skipped=skipped)

    def _meeting_pages(
        self, start: datetime | None, seen: SeenIds, high: list[datetime | None]
    ) -> Iterator[Page[Activity]]:
        decl = self._mapping.activity_sources[MEETINGS]
        filters = (
            []
            if start is None
            else [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": _ms(start)}]
        )
        properties = list(
            dict.fromkeys([*self._mapping.activity_fields(MEETINGS), "hs_lastmodifieddate"])
        )
        responses = self._keyset_search(
            self._meetings_search.do_search, filters, properties, "meetings search"
        )
        # Associations are read 1,000 meetings a call: five search pages share one read.
        for group in groups(responses, ASSOCIATIONS_BATCH // SEARCH_PAGE):
            meetings = [m for response in group for m in response.get("results") or []]
            contacts = self._meeting_contacts(valid_ids(meetings, "id"))
            records: list[Activity] = []
            errors: list[RecordIssue] = []
            for meeting in meetings:
                try:
                    meeting_id = record_id(meeting, "id")
                    props = properties_of(meeting)
                    modified = parse_datetime(
                        props.get("hs_lastmodifieddate"), "hs_lastmodifieddate"
                    )
                except RecordError as exc:
                    errors.append(RecordIssue(issue_id(meeting, "id"), str(exc)))
                    continue
                for contact_id in contacts.get(meeting_id, [None]):
                    crm_id = (
                        meeting_id
                        if len(contacts.get(meeting_id, [])) <= 1
                        else f"{meeting_id}:{contact_id}"
                    )
                    if not seen.first_time(crm_id):
                        continue
                    try:
                        activity = to_activity(
                            self._mapping,
                            MEETINGS,
                            crm_id,
                            contact_id,
                            props.get(decl.occurred_at or "hs_timestamp"),
                            props,
                        )
                    except RecordError as exc:
                        errors.append(RecordIssue(crm_id, str(exc)))
                        continue
                    if activity is not None:
                        records.append(activity)
                if modified and (high[0] is None or modified > high[0]):
                    high[0] = modified
            yield Page(records, cursor=None, errors=errors)

    def _meeting_contacts(self, meeting_ids: list[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for batch in chunks(meeting_ids, ASSOCIATIONS_BATCH):
            body = {"inputs": [{"id": i} for i in batch]}
            response = self._call(
                self._associations.get_page,
                "meetings",
                "contacts",
                body,
                what="meeting associations",
            )
            for item in response.get("results") or []:
                source = str((item.get("from") or {}).get("id"))
                result[source] = [str(t["toObjectId"]) for t in item.get("to") or []]
        return result

    def pull_deletions(self, since: datetime | None) -> Iterator[Page[Deletion]]:
        """Archived contacts whose archive time is within the window (the list has no filter)."""
        start = window_start(since, self._config.overlap_minutes)

        def fetch(after: str | None) -> dict[str, Any]:
            params: dict[str, Any] = {
                "limit": LIST_PAGE,
                "archived": True,
                "properties": ["hs_object_id"],
            }
            if after is not None:
                params["after"] = after
            return self._call(self._contacts_basic.get_page, what="archived contacts", **params)

        def next_after(response: dict[str, Any]) -> str | None:
            return ((response.get("paging") or {}).get("next") or {}).get("after")

        high = since
        for response, last in with_last(paginate(fetch, next_after)):
            records: list[Deletion] = []
            errors: list[RecordIssue] = []
            for item in response.get("results") or []:
                try:
                    crm_id = record_id(item, "id")
                    archived_at = parse_datetime(item.get("archivedAt"), "archivedAt")
                except RecordError as exc:
                    errors.append(RecordIssue(issue_id(item, "id"), str(exc)))
                    continue
                if start is not None and archived_at is not None and archived_at < start:
                    continue
                records.append(Deletion(self.crm, crm_id, archived_at))
                if archived_at and (high is None or archived_at > high):
                    high = archived_at
            yield Page(records, cursor=high if last else None, errors=errors)
