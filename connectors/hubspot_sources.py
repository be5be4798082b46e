"""HubSpot activity sources: one `Stream` per source the mapping declares, by its kind.

Which API carries which engagement depends on the portal (verified against HubSpot's
references; see the mapping file for the default choice of sources):

- `crm_object`: meetings, calls, sales emails and communications are CRM objects on
  every tier: a keyset search on `hs_lastmodifieddate` (`GTE` the window's start, `LT`
  its end), then their contacts through the v4 associations batch read (1,000 objects a
  call).
- `email_events`: marketing email events (`GET /email/public/v1/events`, scope
  `content`), by time (`startTimestamp`/`endTimestamp`, both inclusive), paged by
  `offset`/`hasMore`,
  one request stream per event type the source names. An event names its recipient by
  email only: recipients are resolved to contact ids with a contacts batch read by
  `idProperty: email` (100 a call, the ordinary rate limit rather than search's 5/s),
  cached for the pull. A recipient who is no contact (deleted, or never one) makes the
  event skipped, not an error.
- `form_submissions`: forms from `GET /marketing/v3/forms/`, submissions per form from
  `GET /form-integrations/v1/submissions/forms/{guid}` (scope `forms`), newest first:
  paging stops at the first page that reaches back past the window start. The API has
  no time filter: submissions at or after a bounded window's end are dropped here. The
  submitter is the submission's `email` value, resolved as above.
- `marketing_events`: participations (registered, attended, cancelled, no-show) of each
  marketing event (scope `crm.objects.marketing_events.read`). The breakdown has no
  time filter and no documented order, and attendance may be recorded long after an
  event: every event's breakdown is read whole on every pull (like the archived
  contacts list), and the engine drops participations outside the window.
- `events_api`: one event type of the Events API, which only Enterprise hubs have.
  Custom behavioural events are named `pe{portalId}_{name}` by the portal; the mapping
  names them by their short name, resolved through `GET /events/v3/event-definitions`.
  The window is `occurredAfter` / `occurredBefore`.

A source the portal refuses (403: a scope the app lacks, or an API the tier lacks) is
switched off for the pull with one warning saying what it needs; the others run.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.common import chunks, groups
from connectors.config import HubSpotConfig
from connectors.errors import DailyLimitExceeded, FatalError, RetriableError
from connectors.mapping import ActivitySource, Mapping
from connectors.paging import paginate
from connectors.retry import PartialAnswer, retry_partial
from connectors.streams import Fetch, SourceUnavailable, Stream, at, by_time, by_unit
from connectors.translate import (
    RecordError,
    field_value,
    last_numeric_id,
    parse_datetime,
    properties_of,
    to_activity,
    valid_ids,
)
from scoring.records import Activity

SEARCH_PAGE = 200
EVENTS_PAGE = 1000  # the largest page the events API serves
EMAIL_EVENTS_PAGE = 1000  # the email events API's largest page
FORMS_PAGE = 50
SUBMISSIONS_PAGE = 50  # the form submissions API's largest page
MARKETING_EVENTS_PAGE = 100
PARTICIPATIONS_PAGE = 100  # the breakdown's largest page
DEFINITIONS_PAGE = 100
ASSOCIATIONS_BATCH = 1000
BATCH_READ = 100
# Per-record errors in a 207 answer worth another attempt (as the connector's batch read).
RETRIABLE_CATEGORIES = frozenset(
    {"RATE_LIMITS", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}
)
_CUSTOM_NAME = re.compile(r"^pe\d*_(.+)$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What each kind of source needs, for the warning when the portal refuses it: the
# scope (a 403 MISSING_SCOPES), and the tier where HubSpot documents one.
SCOPES: dict[str, str] = {
    "events_api": "oauth",
    "event_definitions": "behavioral_events.event_definitions.read_write",
    "email_events": "content",
    "form_submissions": "forms",
    "marketing_events": "crm.objects.marketing_events.read",
    "crm_object": "crm.objects.contacts.read (sales emails: or sales-email-read)",
}
TIERS: dict[str, str] = {
    "events_api": "an Enterprise hub (Marketing, Sales, Service, Content or Data Hub Enterprise)",
    "event_definitions": "an Enterprise hub (Marketing, Sales, Service, Content or Data Hub "
    "Enterprise)",
}
_API_NAMES: dict[str, str] = {
    "events_api": "the Events API",
    "event_definitions": "the custom event definitions",
    "email_events": "the marketing email events API",
    "form_submissions": "the forms API",
    "marketing_events": "the marketing events API",
    "crm_object": "the CRM objects",
}


def ms(value: datetime) -> str:
    """Epoch milliseconds, as HubSpot's filters and timestamps take them."""
    return str(int(value.timestamp() * 1000))


def after_token(response: dict[str, Any]) -> str | None:
    """The v3 paging token: `paging.next.after`."""
    return ((response.get("paging") or {}).get("next") or {}).get("after")


def ms_ceiling(value: datetime) -> int:
    """The first whole epoch millisecond at or after `value`: HubSpot keeps times to the
    millisecond, so a record is before `value` exactly when it is before this one."""
    return -((EPOCH - value) // timedelta(milliseconds=1))


def window_filter(
    prop: str, start: datetime | None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Search filters `start <= prop < until`; none for an open side."""
    filters = (
        [] if start is None else [{"propertyName": prop, "operator": "GTE", "value": ms(start)}]
    )
    if until is not None:
        filters.append({"propertyName": prop, "operator": "LT", "value": str(ms_ceiling(until))})
    return filters


@dataclass
class PullContext:
    """What one activities pull learns once and reuses: refusals, names, contact ids.

    Sources pulled at once share it from their threads: each entry is set whole, and an
    email looked up twice at the same time costs a request, not a wrong answer. The
    definitions are read under `definitions_lock`, once for every custom event source.
    """

    refused: dict[str, str] = field(default_factory=dict)  # API → its warning
    definitions: dict[str, str] | None = None  # custom event short name → full name
    # A submission without an email has no contact: "" is known to be nobody.
    contact_by_email: dict[str, str | None] = field(default_factory=lambda: {"": None})
    definitions_lock: threading.Lock = field(default_factory=threading.Lock)


class HubSpotSources:
    """Activity sources of `HubSpotConnector`, over the connector's `_call`."""

    _config: HubSpotConfig
    _mapping: Mapping
    _contacts_basic: Any
    _contacts_batch: Any
    _associations: Any
    _events: Any

    if TYPE_CHECKING:
        # `HubSpotConnector` sends every request (throttled, retried, its token refreshed);
        # the sources and pulls only name it.
        def _call(
            self,
            method: Callable[..., Any],
            *args: Any,
            search: bool = False,
            idempotent: bool = True,
            what: str,
            **kwargs: Any,
        ) -> dict[str, Any]: ...

        def _call_answer(
            self,
            method: Callable[..., Any],
            *args: Any,
            search: bool = False,
            idempotent: bool = True,
            what: str,
            **kwargs: Any,
        ) -> tuple[dict[str, Any], float | None]: ...

    def _keyset_search(
        self,
        search: Callable[..., Any],
        filters: list[dict[str, Any]],
        properties: list[str],
        what: str,
    ) -> Iterator[dict[str, Any]]:
        """Search responses ordered by hs_object_id, each next page keyed by the last id.

        Paging by key rather than by offset: the 10,000-result cap of one search never
        applies, and no record is skipped or read twice.
        """

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

    # --- one request to a path the typed APIs do not cover -----------------------------

    def _request(
        self,
        verb: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        search: bool = False,
        what: str,
    ) -> dict[str, Any]:
        """A request through the client's own ApiClient (its TLS, token and pool).

        hubspot-api-client has no typed API for the email events and form submissions
        APIs, and `HubSpot.api_request` goes through `requests` without the client's CA
        file or a timeout; the ApiClient's `call_api` keeps both. The contacts API's
        client is the one the connector refreshes on a 401.
        """
        client = self._contacts_basic.api_client

        def send(**options: Any) -> Any:
            return client.call_api(
                path,
                verb,
                query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["oauth2"],
                **options,
            )

        return self._call(send, search=search, what=what)

    # --- the streams -------------------------------------------------------------------

    def _activity_streams(self, ctx: PullContext) -> list[Stream[Activity]]:
        """One stream per declared source, in the mapping's order."""
        build = {
            "events_api": self._events_api_stream,
            "email_events": self._email_events_stream,
            "form_submissions": self._form_submissions_stream,
            "marketing_events": self._marketing_events_stream,
            "crm_object": self._crm_object_stream,
        }
        streams: list[Stream[Activity]] = []
        for name, decl in self._mapping.activity_sources.items():
            if decl.kind is not None:
                stream = build[decl.kind](name, decl, ctx)
                streams.append(_guarded(stream, decl.kind, ctx, self._names_of(decl.kind)))
        return streams

    def _names_of(self, kind: str) -> list[str]:
        return list(self._mapping.sources_of(kind))

    def _translate(self, name: str, time_field: str) -> Callable[[Any, str], Activity | None]:
        """Rows of `{record, contact}` to activities; a row without a contact is skipped."""

        def translate(row: Any, crm_id: str) -> Activity | None:
            if row["contact"] is None and row.get("by_email"):
                return None
            record = row["record"]
            return to_activity(
                self._mapping,
                name,
                crm_id,
                row["contact"],
                field_value(record, time_field),
                record,
            )

        return translate

    # events API ------------------------------------------------------------------------

    def _events_api_stream(
        self, name: str, decl: ActivitySource, ctx: PullContext
    ) -> Stream[Activity]:
        wanted = decl.event or name

        def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[Any]]:
            full = wanted if wanted.startswith("e_") else self._full_event_name(wanted, ctx)

            def page(after: str | None) -> dict[str, Any]:
                params: dict[str, Any] = {
                    "object_type": "contact",
                    "event_type": full,
                    "limit": EVENTS_PAGE,
                    "sort": ["occurredAt"],
                }
                if start is not None:
                    # A millisecond early: HubSpot does not say whether `occurredAfter`
                    # includes an event at that instant; the window does (see below).
                    params["occurred_after"] = start - timedelta(milliseconds=1)
                if until is not None:
                    params["occurred_before"] = until
                if after is not None:
                    params["after"] = after
                return self._call(self._events.get_page, what=f"events {wanted}", **params)

            for response in paginate(page, after_token):
                results = response.get("results") or []
                yield [_event_row(e) for e in results if _occurred_within(e, start, until)]

        return Stream(
            name,
            fetch,
            self._translate(name, "occurredAt"),
            time=at("record", "occurredAt"),
            split=by_time(fetch),
        )

    def _full_event_name(self, short: str, ctx: PullContext) -> str:
        """`pe{portalId}_{short}` for a custom event named by its short name."""
        if _CUSTOM_NAME.match(short):
            return short
        with ctx.definitions_lock:
            definitions = self._definitions(ctx)
        full = definitions.get(short)
        if full is None:
            raise SourceUnavailable(
                f"HubSpot custom event {short!r} is not defined in the portal "
                f"(GET /events/v3/event-definitions knows {sorted(definitions)}): "
                "its source is off for this run"
            )
        return full

    def _definitions(self, ctx: PullContext) -> dict[str, str]:
        """The portal's custom event names, read once a pull; a refusal is remembered."""
        if "event_definitions" in ctx.refused:
            raise SourceUnavailable(ctx.refused["event_definitions"])
        if ctx.definitions is None:
            try:
                ctx.definitions = self._event_definitions()
            except FatalError as exc:
                if not (_refusal(exc) and exc.code == "MISSING_SCOPES"):
                    raise  # below Enterprise: the tier, as the Events API answers
                custom = [
                    n
                    for n, d in self._mapping.sources_of("events_api").items()
                    if not (d.event or n).startswith("e_")
                ]
                warning = _warning("event_definitions", custom, exc)
                ctx.refused["event_definitions"] = warning
                raise SourceUnavailable(warning) from exc
        return ctx.definitions

    def _event_definitions(self) -> dict[str, str]:
        names: dict[str, str] = {}

        def page(after: str | None) -> dict[str, Any]:
            query = {"limit": DEFINITIONS_PAGE, "after": after}
            return self._request(
                "GET", "/events/v3/event-definitions", query=query, what="event definitions"
            )

        for response in paginate(page, after_token):
            for item in response.get("results") or []:
                short, full = item.get("name"), item.get("fullyQualifiedName")
                if isinstance(short, str) and isinstance(full, str):
                    names[short] = full
        return names

    # marketing email events ------------------------------------------------------------

    def _email_events_stream(
        self, name: str, decl: ActivitySource, ctx: PullContext
    ) -> Stream[Activity]:
        def pages(start: datetime | None, until: datetime | None) -> Iterator[list[dict[str, Any]]]:
            # A closed window: events arriving during the pull do not shift the offsets.
            last_ms = _last_ms_before(until, datetime.now(UTC))
            types: list[str | None] = [*decl.event_types] or [None]
            for event_type in types:

                def page(offset: str | None, event_type: str | None = event_type) -> dict[str, Any]:
                    query = {
                        "startTimestamp": ms(start) if start is not None else None,
                        "endTimestamp": str(last_ms),
                        "eventType": event_type,
                        "limit": EMAIL_EVENTS_PAGE,
                        "offset": offset,
                    }
                    return self._request(
                        "GET",
                        "/email/public/v1/events",
                        query=query,
                        what=f"email events {event_type or ''}".strip(),
                    )

                for response in paginate(page, _email_offset):
                    events = [e for e in response.get("events") or [] if isinstance(e, dict)]
                    yield [
                        # An email event is identified by its id and its creation time.
                        {"id": _email_event_id(e), "record": e, "email": e.get("recipient")}
                        for e in events
                    ]

        def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[dict[str, Any]]]:
            return self._with_contacts(pages(start, until), ctx)

        return Stream(
            name,
            fetch,
            self._translate(name, "created"),
            time=at("record", "created"),
            split=by_time(fetch),
        )

    def _with_contacts(
        self, pages: Iterable[list[dict[str, Any]]], ctx: PullContext
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows whose `email` is resolved to `contact` (None: no such contact).

        Emails are read 100 a call with `idProperty: email` (the ordinary rate limit, not
        search's 5/s) and cached for the pull; a page waits until a full batch of unknown
        emails has gathered, so that page boundaries do not cost half-empty reads.
        """
        held: list[list[dict[str, Any]]] = []
        pending: dict[str, None] = {}  # unknown emails, in arrival order

        def ready(rows: list[dict[str, Any]]) -> bool:
            return all(_email_key(r["email"]) in ctx.contact_by_email for r in rows)

        def filled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for row in rows:
                row["contact"] = ctx.contact_by_email.get(_email_key(row["email"]))
                row["by_email"] = True
            return rows

        for rows in pages:
            held.append(rows)
            for row in rows:
                key = _email_key(row["email"])
                if key not in ctx.contact_by_email:
                    pending[key] = None
            while len(pending) >= BATCH_READ:
                batch = list(pending)[:BATCH_READ]
                self._read_emails(batch, ctx)
                for key in batch:
                    del pending[key]
            while held and ready(held[0]):
                yield filled(held.pop(0))
        for rest in chunks(list(pending), BATCH_READ):
            self._read_emails(list(rest), ctx)
        for rows in held:
            yield filled(rows)

    def _read_emails(self, emails: list[str], ctx: PullContext) -> None:
        """One contacts batch read by email (again for emails a 207 marks retriable);
        emails with no contact are cached as None."""

        def read(pending: dict[str, None], attempt: int) -> PartialAnswer[str, None, str]:
            body = {
                "idProperty": "email",
                "inputs": [{"id": e} for e in pending],
                "properties": ["email"],
                "propertiesWithHistory": [],
            }
            response, retry_after = self._call_answer(
                self._contacts_batch.read, body, what="contacts batch read by email"
            )
            for item in response.get("results") or []:
                email = _email_key(properties_of(item).get("email"))
                if item.get("id") is not None:
                    ctx.contact_by_email[email] = str(item["id"])
            retry = {
                _email_key(i): str(error.get("message"))
                for error in response.get("errors") or []
                if error.get("category") in RETRIABLE_CATEGORIES
                for i in (error.get("context") or {}).get("ids") or []
            }
            settled = [e for e in pending if e not in retry]
            for email in settled:
                ctx.contact_by_email.setdefault(email, None)
            return PartialAnswer(
                settled=dict.fromkeys(settled), retriable=retry, retry_after=retry_after
            )

        result = retry_partial(
            read,
            dict.fromkeys(emails),
            self._config.retry,
            what="contacts batch read by email",
        )
        if result.failing:
            raise RetriableError(
                f"contacts batch read by email: {len(result.failing)} emails still failing"
            )

    # form submissions ------------------------------------------------------------------

    def _form_submissions_stream(
        self, name: str, decl: ActivitySource, ctx: PullContext
    ) -> Stream[Activity]:
        def rows(
            forms: Iterable[dict[str, Any]], start: datetime | None, until: datetime | None
        ) -> Iterator[list[dict[str, Any]]]:
            for form in forms:
                guid, form_name = str(form.get("id")), form.get("name")
                for submissions in self._submissions(guid, start, until):
                    yield [
                        {
                            "id": s.get("conversionId"),
                            "record": _flat_submission(s, guid, form_name),
                            "email": _submitted_email(s),
                        }
                        for s in submissions
                    ]

        def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[dict[str, Any]]]:
            return self._with_contacts(rows(self._forms(), start, until), ctx)

        def one_form(form: dict[str, Any]) -> Fetch:
            return lambda start, until: self._with_contacts(rows([form], start, until), ctx)

        return Stream(
            name,
            fetch,
            self._translate(name, "submittedAt"),
            time=at("record", "submittedAt"),
            time_filter=True,
            split=by_unit(self._forms, one_form),
        )

    def _forms(self) -> Iterator[dict[str, Any]]:
        def page(after: str | None) -> dict[str, Any]:
            # Every type: pop-ups (`flow`) and external forms HubSpot captures are listed
            # only when asked for, and they are where many leads come in.
            query = {"limit": FORMS_PAGE, "after": after, "formTypes": "all"}
            return self._request("GET", "/marketing/v3/forms/", query=query, what="forms")

        for response in paginate(page, after_token):
            yield from (f for f in response.get("results") or [] if isinstance(f, dict))

    def _submissions(
        self, guid: str, start: datetime | None, until: datetime | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of one form's submissions, newest first, until the window start.

        The API takes no time filter: submissions at or after the window's end are left
        out here, before their submitters are looked up (the engine would drop them too).
        """

        def page(after: str | None) -> dict[str, Any]:
            query = {"limit": SUBMISSIONS_PAGE, "after": after}
            try:
                return self._request(
                    "GET",
                    f"/form-integrations/v1/submissions/forms/{guid}",
                    query=query,
                    what="form submissions",
                )
            except FatalError as exc:
                if exc.status == 404:  # deleted since it was listed
                    return {"results": []}
                raise

        floor = int(ms(start)) if start is not None else None
        end = ms_ceiling(until) if until is not None else None

        def older(submission: dict[str, Any]) -> bool:
            at_ms = submission.get("submittedAt")
            return floor is not None and isinstance(at_ms, int) and at_ms < floor

        def newer(submission: dict[str, Any]) -> bool:
            at_ms = submission.get("submittedAt")
            return end is not None and isinstance(at_ms, int) and at_ms >= end

        for response in paginate(page, after_token):
            results = [s for s in response.get("results") or [] if isinstance(s, dict)]
            # Older ones are left out here, before their submitters are looked up.
            yield [s for s in results if not older(s) and not newer(s)]
            if any(older(s) for s in results):
                return

    # marketing events ------------------------------------------------------------------

    def _marketing_events_stream(
        self, name: str, decl: ActivitySource, ctx: PullContext
    ) -> Stream[Activity]:
        # The breakdown takes no time filter: the engine keeps the window (`time_filter`).
        def rows(events: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
            for event in events:
                event_id = str(event.get("objectId"))

                def page(after: str | None, event_id: str = event_id) -> dict[str, Any]:
                    query = {"limit": PARTICIPATIONS_PAGE, "after": after}
                    return self._request(
                        "GET",
                        f"/marketing/v3/marketing-events/participations/{event_id}/breakdown",
                        query=query,
                        what="marketing event participations",
                    )

                for response in paginate(page, after_token):
                    yield [
                        _participation_row(p, event)
                        for p in response.get("results") or []
                        if isinstance(p, dict)
                    ]

        def fetch(_start: datetime | None, _until: datetime | None) -> Iterator[list[Any]]:
            return rows(self._marketing_events())

        def one_event(event: dict[str, Any]) -> Fetch:
            return lambda _start, _until: rows([event])

        # Filtered and cursored by when HubSpot recorded a participation, not when it
        # happened: a webinar tool reports attendance hours or days after the event.
        return Stream(
            name,
            fetch,
            self._translate(name, "occurredAt"),
            time=at("record", "recordedAt"),
            time_filter=True,
            split=by_unit(self._marketing_events, one_event),
        )

    def _marketing_events(self) -> Iterator[dict[str, Any]]:
        def page(after: str | None) -> dict[str, Any]:
            query = {"limit": MARKETING_EVENTS_PAGE, "after": after}
            return self._request(
                "GET", "/marketing/marketing-events/v3", query=query, what="marketing events"
            )

        for response in paginate(page, after_token):
            yield from (e for e in response.get("results") or [] if isinstance(e, dict))

    # CRM engagement objects ------------------------------------------------------------

    def _crm_object_stream(
        self, name: str, decl: ActivitySource, ctx: PullContext
    ) -> Stream[Activity]:
        obj = decl.object or name
        occurred = (decl.time_fields or ["hs_timestamp"])[0]
        properties = list(
            dict.fromkeys([*self._mapping.activity_fields(name), occurred, "hs_lastmodifieddate"])
        )

        def search(body: Any, **options: Any) -> Any:
            client = self._contacts_basic.api_client
            return client.call_api(
                f"/crm/v3/objects/{obj}/search",
                "POST",
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["oauth2"],
                **options,
            )

        def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[Any]]:
            responses = self._keyset_search(
                search,
                window_filter("hs_lastmodifieddate", start, until),
                properties,
                f"{obj} search",
            )
            # Associations are read 1,000 objects a call: five search pages share one read.
            for group in groups(responses, ASSOCIATIONS_BATCH // SEARCH_PAGE):
                found = [o for response in group for o in response.get("results") or []]
                contacts = self._contacts_of(obj, valid_ids(found, "id"))
                yield list(per_contact(found, contacts))

        def translate(row: Any, crm_id: str) -> Activity | None:
            props = properties_of(row["object"])
            return to_activity(
                self._mapping, name, crm_id, row["contact"], props.get(occurred), props
            )

        return Stream(
            name,
            fetch,
            translate,
            time=at("object", "properties", "hs_lastmodifieddate"),
            split=by_time(fetch),
        )

    def _contacts_of(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Contact ids associated with each object, through v4 batch reads."""
        result: dict[str, list[str]] = {}
        for batch in chunks(ids, ASSOCIATIONS_BATCH):
            body = {"inputs": [{"id": i} for i in batch]}
            response = self._call(
                self._associations.get_page,
                object_type,
                "contacts",
                body,
                what=f"{object_type} associations",
            )
            for item in response.get("results") or []:
                source = str((item.get("from") or {}).get("id"))
                result[source] = [str(t["toObjectId"]) for t in item.get("to") or []]
        return result


# --- refusals ----------------------------------------------------------------------------


def _refusal(exc: FatalError) -> bool:
    # The daily limit is a 403 on Salesforce and a 429 here: it stops the run, never a source.
    return exc.status == 403 and not isinstance(exc, DailyLimitExceeded)


def _warning(api: str, sources: list[str], exc: FatalError) -> str:
    answer = f"HTTP 403 {exc.code}" if exc.code else "HTTP 403"
    if exc.code == "MISSING_SCOPES" or api not in TIERS:
        needs = f"grant the app the {SCOPES[api]} scope"
        if exc.code != "MISSING_SCOPES":
            needs += ", or check that the portal's subscription includes it"
    else:
        needs = f"it needs {TIERS[api]}"
    # Each source keeps its own cursor: once allowed, the next sync reads what it missed.
    return (
        f"HubSpot refused {_API_NAMES[api]} ({answer}): activity source(s) "
        f"{', '.join(sources)} off for this run; {needs} (the sync after that reads what "
        "it missed)"
    )


def _guarded(
    stream: Stream[Activity], kind: str, ctx: PullContext, sources: list[str]
) -> Stream[Activity]:
    """The stream with a refusal turned into `SourceUnavailable`, remembered for the pull
    so the other sources of the same API do not ask again."""

    def guard(inner: Fetch) -> Fetch:
        def fetch(start: datetime | None, until: datetime | None) -> Iterator[Any]:
            if kind in ctx.refused:
                raise SourceUnavailable(ctx.refused[kind])
            try:
                yield from inner(start, until)
            except FatalError as exc:
                if not _refusal(exc):
                    raise
                ctx.refused[kind] = warning = _warning(kind, sources, exc)
                raise SourceUnavailable(warning) from exc

        return fetch

    split = stream.split

    def parts(start: datetime | None, until: datetime | None, count: int) -> list[Fetch]:
        # Each part of a split stream is guarded as the whole is. A split that asks the
        # API (to list forms, to find bounds) may be refused too: then no parts, and the
        # whole read, guarded, says the source is off.
        assert split is not None
        if kind in ctx.refused:
            return []
        try:
            return [guard(f) for f in split(start, until, count)]
        except FatalError as exc:
            if not _refusal(exc):
                raise
            ctx.refused[kind] = _warning(kind, sources, exc)
            return []

    return replace(stream, fetch=guard(stream.fetch), split=None if split is None else parts)


# --- records as rules see them -------------------------------------------------------------


def _occurred_within(event: Any, start: datetime | None, until: datetime | None) -> bool:
    """False for an event before the window's start or at or after its end. HubSpot does
    not say whether the events API's `occurredAfter` and `occurredBefore` include an
    event at that instant; the window includes its start and not its end, so that slices
    of a window meet without a gap or an overlap."""
    if (start is None and until is None) or not isinstance(event, dict):
        return True
    try:
        when = parse_datetime(event.get("occurredAt"), "occurredAt")
    except RecordError:
        return True  # the engine reports it, with the event's id
    if when is None:
        return True
    return (start is None or when >= start) and (until is None or when < until)


def _event_row(event: Any) -> dict[str, Any]:
    """An Events API event as rules see it: its properties, `event` (the short name of a
    custom event, else the type) and `event_type` (the portal's full name)."""
    if not isinstance(event, dict):
        return {"id": None, "record": {}, "contact": None}
    full = str(event.get("eventType") or "")
    custom = _CUSTOM_NAME.match(full)
    props = event.get("properties")
    record = {
        **(props if isinstance(props, dict) else {}),
        "event": custom.group(1) if custom else full,
        "event_type": full,
        "occurredAt": event.get("occurredAt"),
    }
    return {"id": event.get("id"), "record": record, "contact": event.get("objectId")}


def _last_ms_before(until: datetime | None, now: datetime) -> int:
    """The email events API's `endTimestamp` (inclusive): the last millisecond before
    the window's end, or now for an open window."""
    if until is None:
        return int(ms(now))
    return min(ms_ceiling(until) - 1, int(ms(now)))


def _email_offset(response: dict[str, Any]) -> str | None:
    if not response.get("hasMore"):
        return None
    offset = response.get("offset")
    return str(offset) if offset not in (None, "") else None


def _email_event_id(event: dict[str, Any]) -> Any:
    raw, created = event.get("id"), event.get("created")
    if raw in (None, "") or created in (None, ""):
        return raw
    return f"{created}:{raw}"


def _email_key(email: Any) -> str:
    """An email as the cache and HubSpot's lookup compare it ("" for none)."""
    text = str(email or "").strip().casefold()
    return text if "@" in text else ""


def _submitted_email(submission: dict[str, Any]) -> str | None:
    for value in submission.get("values") or []:
        if isinstance(value, dict) and value.get("name") == "email" and value.get("value"):
            return str(value["value"]).strip()
    return None


def _flat_submission(submission: dict[str, Any], guid: str, name: Any) -> dict[str, Any]:
    values = {
        str(v.get("name")): v.get("value")
        for v in submission.get("values") or []
        if isinstance(v, dict)
    }
    return {
        "form": (guid, name),
        "form_id": guid,
        "form_name": name,
        "page_url": submission.get("pageUrl"),
        "values": values,
        "submittedAt": submission.get("submittedAt"),
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _participation_row(item: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    props = _object(item.get("properties"))
    assoc = _object(item.get("associations"))
    contact = _object(assoc.get("contact"))
    marketing = _object(assoc.get("marketingEvent"))
    record = {
        "state": props.get("attendanceState"),
        "occurredAt": props.get("occurredAt"),
        "recordedAt": item.get("createdAt") or props.get("occurredAt"),
        "duration_seconds": props.get("attendanceDurationSeconds"),
        "attendance_percentage": props.get("attendancePercentage"),
        "event_id": marketing.get("marketingEventId") or event.get("objectId"),
        "event_name": marketing.get("name") or event.get("eventName"),
        "event_type": event.get("eventType"),
        "external_event_id": marketing.get("externalEventId") or event.get("externalEventId"),
    }
    return {"id": item.get("id"), "record": record, "contact": contact.get("contactId")}


def per_contact(
    objects: list[dict[str, Any]], contacts: dict[str, list[str]]
) -> Iterator[dict[str, Any]]:
    """One row per (object, associated contact): an activity belongs to one contact.

    The row's id is the object's id, or `object:contact` when it has several contacts;
    an object with none still makes a row (reported: no contact id).
    """
    for obj in objects:
        raw_id = obj.get("id") if isinstance(obj, dict) else None
        linked: list[str | None] = [*contacts.get(str(raw_id), [])]
        for contact_id in linked or [None]:
            row_id = raw_id if len(linked) <= 1 else f"{raw_id}:{contact_id}"
            yield {"id": row_id, "object": obj, "contact": contact_id}


__all__ = [
    "HubSpotSources",
    "PullContext",
    "after_token",
    "ms",
    "ms_ceiling",
    "per_contact",
    "window_filter",
]
