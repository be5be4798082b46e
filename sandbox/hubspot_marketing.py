"""The marketing APIs a real portal serves the same activities through: marketing email
events, forms and their submissions, marketing events (webinar participations), custom
behavioural event definitions, and (stock profile) the events API under the
`pe{portalId}_…` names and GUID form ids.

Everything is read from `portal.population.hubspot`, the log the events API serves, so
the sources agree: an email_open activity is an `e_opened_email` event and an OPEN email
event; a webinar registration is an `e_submitted_form` event, a submission of the
webinar form and a REGISTERED participation. Indexes are built on first use.
"""

from __future__ import annotations

import heapq
import json
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import catalog, hubspot_events
from sandbox.clock import DAY_MS, hubspot_iso
from sandbox.hubspot_routes import HubSpotApi, error_body
from sandbox.hubspot_store import CONTACT_ID_BASE, HubSpotPortal
from sandbox.population import KIND

if TYPE_CHECKING:
    from sandbox.state import Sandbox

T = TypeVar("T")

HOUR_MS = 3_600_000
EMAIL_CAMPAIGN_BASE = 310_000_001
MARKETING_EVENT_BASE = 520_000_001
EVENT_DEFINITION_BASE = 1_000_001
# What HubSpot's marketing email tool reports as the sending app.
EMAIL_APP_ID, EMAIL_APP_NAME = 113, "Batch"
EMAIL_EVENT_TYPES = ("SENT", "DELIVERED", "OPEN", "CLICK", "BOUNCE", "STATUSCHANGE")
_ACTIVITY_TYPE = {
    KIND["email_open"]: "OPEN",
    KIND["email_click"]: "CLICK",
    KIND["email_bounce"]: "BOUNCE",
    KIND["email_unsubscribe"]: "STATUSCHANGE",
}
EMAIL_EVENTS_LIMIT = 1000
SUBMISSIONS_LIMIT = 50
_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
_BROWSER = {
    "name": "Safari",
    "family": "Safari",
    "producer": "Apple Inc.",
    "producerUrl": "https://www.apple.com/",
    "type": "Browser",
    "url": "https://en.wikipedia.org/wiki/Safari_(web_browser)",
    "version": ["17.1"],
}
_LOCATION = {"country": "UNITED STATES", "state": "massachusetts", "city": "boston"}
_CUSTOM_EVENT_PROPERTY = {
    "webinar_attended": ("campaign", "Webinar"),
    "social_engagement": ("hs_title", "Title"),
    "support_complaint": ("hs_subject", "Subject"),
}


def form_guid(seed: int, slug: str) -> str:
    """The stable GUID of a form (the portal's seed and the form's configured id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.invalid/{seed}/forms/{slug}"))


def _offset(value: str | None) -> int:
    number = int(value or 0)
    if number < 0:
        raise ValueError("negative offset")
    return number


def _list_page(
    request: Request,
    items: Sequence[T],
    render: Callable[[T], dict[str, Any]],
    default_limit: int,
    *,
    total: bool = False,
) -> Response:
    """A page of a v3 list: `after` is an offset, `limit` at most 100."""
    q = request.query_params
    try:
        limit = min(int(q.get("limit") or default_limit), 100)
        start = _offset(q.get("after"))
    except ValueError as exc:
        return error_body(400, "VALIDATION_ERROR", f"Invalid parameter: {exc}")
    body: dict[str, Any] = {"total": len(items)} if total else {}
    body["results"] = [render(item) for item in items[start : start + limit]]
    if start + limit < len(items):
        body["paging"] = {"next": {"after": str(start + limit)}}
    return JSONResponse(body)


def _backwards(
    times: list[int], positions: list[int], etype: str, start: int, end: int
) -> Iterator[tuple[int, str, int]]:
    for i in range(end - 1, start - 1, -1):
        yield times[i], etype, positions[i]


# How long after a webinar its attendance reaches HubSpot (a webinar tool's sync): a
# participation's createdAt trails its occurredAt by this much.
ATTENDANCE_REPORTED_AFTER_MS = 2 * DAY_MS


class MarketingApi:
    """Route handlers for the marketing sources of one sandbox's portal."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.portal: HubSpotPortal = sandbox.portal
        pop = self.portal.population
        self.seed = pop.spec.seed
        self._ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.invalid/{self.seed}/email")
        self.forms = {slug: form_guid(self.seed, slug) for slug in hubspot_events.FORM_TITLES}
        self.form_slugs = {guid: slug for slug, guid in self.forms.items()}
        self._email: dict[str, tuple[list[int], list[int]]] | None = None
        self._submissions: dict[str, list[int]] | None = None
        self._participations: dict[int, list[tuple[int, str]]] | None = None
        self._indexed_size = 0  # the activity log's length the indexes were built from
        self._events = HubSpotApi(self.portal)

    @property
    def stock(self) -> bool:
        return self.sandbox.profile == "stock"

    def routes(self) -> list[Route]:
        routes = [
            Route("/email/public/v1/events", self.email_events, methods=["GET"]),
            Route("/marketing/v3/forms", self.list_forms, methods=["GET"]),
            Route("/marketing/v3/forms/", self.list_forms, methods=["GET"]),
            Route("/marketing/v3/forms/{form_id}", self.get_form, methods=["GET"]),
            Route(
                "/form-integrations/v1/submissions/forms/{form_guid}",
                self.submissions,
                methods=["GET"],
            ),
            Route("/marketing/marketing-events/v3", self.marketing_events, methods=["GET"]),
            Route("/marketing/marketing-events/v3/", self.marketing_events, methods=["GET"]),
            Route(
                "/marketing/v3/marketing-events/participations/contacts/{contact}/breakdown",
                self.contact_participations,
                methods=["GET"],
            ),
            Route(
                "/marketing/v3/marketing-events/participations/{event_id}/breakdown",
                self.participations,
                methods=["GET"],
            ),
            Route(
                "/marketing/v3/marketing-events/participations/{event_id}",
                self.counters,
                methods=["GET"],
            ),
            Route("/events/v3/event-definitions", self.event_definitions, methods=["GET"]),
            Route("/events/v3/event-definitions/", self.event_definitions, methods=["GET"]),
            Route(
                "/events/v3/event-definitions/{event_name}", self.event_definition, methods=["GET"]
            ),
        ]
        if self.stock:
            routes += [
                Route("/events/v3/events", self.stock_events, methods=["GET"]),
                Route("/events/v3/events/", self.stock_events, methods=["GET"]),
            ]
        return routes

    # -- names ---------------------------------------------------------------------------

    def custom_event_type(self, short: str) -> str:
        """The eventType of a custom event: `pe{portalId}_{name}` on a stock portal."""
        return f"pe{self.sandbox.portal_id}_{short}" if self.stock else f"pe_{short}"

    def form_id(self, slug: str) -> str:
        """A form's id as the events API reports it (`hs_form_id`)."""
        return self.forms[slug] if self.stock else slug

    def _email_of(self, person: int) -> str:
        contact = self.portal.contacts[CONTACT_ID_BASE + person]
        return str(self.portal.contact_value(contact, "email") or "")

    # -- marketing email events ----------------------------------------------------------

    def _drop_stale(self) -> None:
        """Forget the indexes once an admin advance has added activities to the log."""
        size = len(self.portal.population.hubspot)
        if size != self._indexed_size:
            self._email = self._submissions = self._participations = None
            self._indexed_size = size

    @property
    def email_index(self) -> dict[str, tuple[list[int], list[int]]]:
        """Per type: (times ascending, log positions). SENT and DELIVERED precede each
        tracked activity (sent 1-25 h before it, delivered 4 s after the send)."""
        self._drop_stale()
        if self._email is None:
            log = self.portal.population.hubspot
            by_type: dict[str, list[tuple[int, int]]] = {t: [] for t in EMAIL_EVENT_TYPES}
            for pos, kind in enumerate(log.kind):
                etype = _ACTIVITY_TYPE.get(kind)
                if etype is None:
                    continue
                by_type[etype].append((log.ts[pos], pos))
                sent = self._sent_at(pos)
                by_type["SENT"].append((sent, pos))
                if etype != "BOUNCE":
                    by_type["DELIVERED"].append((sent + 4_000, pos))
            self._email = {}
            for etype, items in by_type.items():
                items.sort()
                self._email[etype] = ([t for t, _ in items], [p for _, p in items])
        return self._email

    def _sent_at(self, pos: int) -> int:
        return (
            int(self.portal.population.hubspot.ts[pos]) - HOUR_MS - (pos * 7_919) % (24 * HOUR_MS)
        )

    def _event_id(self, etype: str, pos: int) -> str:
        return str(uuid.uuid5(self._ns, f"{etype}:{pos}"))

    def email_event_json(self, etype: str, pos: int, created: int) -> dict[str, Any]:
        log = self.portal.population.hubspot
        kind, detail = log.kind[pos], log.detail[pos]
        recipient = self._email_of(log.person[pos])
        out: dict[str, Any] = {
            "id": self._event_id(etype, pos),
            "created": created,
            "type": etype,
            "recipient": recipient,
            "portalId": self.sandbox.portal_id,
            "appId": EMAIL_APP_ID,
            "appName": EMAIL_APP_NAME,
            "emailCampaignId": EMAIL_CAMPAIGN_BASE + detail,
        }
        if etype != "SENT":
            out["sentBy"] = {"id": self._event_id("SENT", pos), "created": self._sent_at(pos)}
        if etype == "SENT":
            out.update(
                subject=catalog.EMAILS[detail][0],
                **{"from": "Example Marketing <marketing@example.com>"},
                replyTo=["marketing@example.com"],
                cc=[],
                bcc=[],
            )
        elif etype == "DELIVERED":
            out.update(response="250 2.0.0 OK", smtpId=f"<{out['id']}@mail.example.com>")
        elif etype in ("OPEN", "CLICK"):
            out.update(
                userAgent=_UA,
                browser=_BROWSER,
                location=_LOCATION,
                filteredEvent=False,
            )
            if etype == "OPEN":
                out["duration"] = 2_000 + (pos * 131) % 30_000
            else:
                out["url"] = hubspot_events.event_properties(kind, detail)["hs_url"]
                out["referer"] = ""
        elif etype == "BOUNCE":
            out.update(
                category="UNKNOWN_USER",
                response="550 5.1.1 The email account that you tried to reach does not exist",
                status="5.1.1",
            )
        elif etype == "STATUSCHANGE":
            out.update(
                source="SOURCE_RECIPIENT",
                requestedBy=recipient,
                portalSubscriptionStatus="UNSUBSCRIBED",
                subscriptions=[{"id": 1_000_001 + detail, "status": "UNSUBSCRIBED"}],
                bounced=False,
            )
        return out

    async def email_events(self, request: Request) -> Response:
        q = request.query_params
        etype = q.get("eventType")
        if etype is not None and etype not in EMAIL_EVENT_TYPES:
            # Documented types this portal never produces (DROPPED, DEFERRED, ...) are empty.
            return JSONResponse({"events": [], "hasMore": False, "offset": "0"})
        try:
            lo = int(q["startTimestamp"]) if q.get("startTimestamp") else None
            hi = int(q["endTimestamp"]) if q.get("endTimestamp") else None
            limit = int(q.get("limit") or EMAIL_EVENTS_LIMIT)
            offset = _offset(q.get("offset"))
            campaign = int(q["campaignId"]) if q.get("campaignId") else None
        except ValueError as exc:
            return error_body(400, "VALIDATION_ERROR", f"Invalid parameter: {exc}")
        if not 1 <= limit <= EMAIL_EVENTS_LIMIT:
            return error_body(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {EMAIL_EVENTS_LIMIT}"
            )
        recipient = (q.get("recipient") or "").casefold() or None
        selected = self._email_window([etype] if etype else list(EMAIL_EVENT_TYPES), lo, hi)
        log = self.portal.population.hubspot
        if campaign is not None:
            selected = [e for e in selected if EMAIL_CAMPAIGN_BASE + log.detail[e[2]] == campaign]
        if recipient is not None:
            selected = [e for e in selected if self._email_of(log.person[e[2]]) == recipient]
        page = selected[offset : offset + limit]
        more = offset + limit < len(selected)
        return JSONResponse(
            {
                "events": [self.email_event_json(t, p, ts) for ts, t, p in page],
                "hasMore": more,
                "offset": str(offset + len(page)),
            }
        )

    def _email_window(
        self, types: list[str], lo: int | None, hi: int | None
    ) -> list[tuple[int, str, int]]:
        """(created, type, position) in the window, newest first."""
        streams: list[Iterator[tuple[int, str, int]]] = []
        for etype in types:
            times, positions = self.email_index[etype]
            start = bisect_left(times, lo) if lo is not None else 0
            end = bisect_right(times, hi) if hi is not None else len(times)
            streams.append(_backwards(times, positions, etype, start, end))
        return list(heapq.merge(*streams, key=lambda e: (e[0], e[2]), reverse=True))

    # -- forms and submissions -----------------------------------------------------------

    def form_json(self, slug: str) -> dict[str, Any]:
        stamp = hubspot_iso(self.portal.population.spec.as_of_ms - 400 * DAY_MS)

        def text(name: str, label: str) -> dict[str, Any]:
            return {
                "objectTypeId": "0-1",
                "name": name,
                "label": label,
                "required": False,
                "hidden": False,
                "fieldType": "single_line_text",
                "dependentFields": [],
            }

        email = {
            "objectTypeId": "0-1",
            "name": "email",
            "label": "Email",
            "required": True,
            "hidden": False,
            "fieldType": "email",
            "dependentFields": [],
            "validation": {"blockedEmailDomains": [], "useDefaultBlockList": False},
        }
        return {
            "id": self.forms[slug],
            "name": hubspot_events.FORM_TITLES[slug],
            "formType": "hubspot",
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "fieldGroups": [
                {"groupType": "default_group", "richTextType": "text", "fields": [email]},
                {
                    "groupType": "default_group",
                    "richTextType": "text",
                    "fields": [
                        text("firstname", "First name"),
                        text("lastname", "Last name"),
                        text("company", "Company name"),
                    ],
                },
            ],
            "configuration": {
                "language": "en",
                "cloneable": True,
                "postSubmitAction": {"type": "thank_you", "value": "Thanks!"},
                "editable": True,
                "archivable": True,
                "recaptchaEnabled": False,
                "notifyContactOwner": False,
                "notifyRecipients": [],
                "createNewContactForNewEmail": False,
                "prePopulateKnownValues": True,
                "allowLinkToResetKnownValues": False,
                "lifecycleStages": [],
            },
            "displayOptions": {
                "renderRawHtml": False,
                "theme": "default_style",
                "submitButtonText": "Submit",
                "style": {
                    "fontFamily": "arial, helvetica, sans-serif",
                    "backgroundWidth": "100%",
                    "labelTextColor": "#33475b",
                    "labelTextSize": "14px",
                    "helpTextColor": "#7C98B6",
                    "helpTextSize": "11px",
                    "legalConsentTextColor": "#33475b",
                    "legalConsentTextSize": "14px",
                    "submitColor": "#ff7a59",
                    "submitAlignment": "left",
                    "submitFontColor": "#ffffff",
                    "submitSize": "12px",
                },
            },
            "legalConsentOptions": {"type": "none"},
        }

    async def list_forms(self, request: Request) -> Response:
        if request.query_params.get("archived", "").lower() == "true":
            return JSONResponse({"results": []})
        # `formTypes` filters by type (hubspot when absent, `all` for every type). This
        # portal's forms are all HubSpot forms: the list document (forms.json) describes
        # its results as HubSpotFormDefinition only, so no other type is served here.
        wanted = set(request.query_params.getlist("formTypes")) or {"hubspot"}
        slugs = list(self.forms) if wanted & {"all", "hubspot"} else []
        return _list_page(request, slugs, self.form_json, 20)

    async def get_form(self, request: Request) -> Response:
        slug = self.form_slugs.get(request.path_params["form_id"])
        if slug is None:
            return error_body(404, "OBJECT_NOT_FOUND", "Form not found")
        return JSONResponse(self.form_json(slug))

    @property
    def submission_index(self) -> dict[str, list[int]]:
        """Per form: log positions of its submissions, oldest first."""
        self._drop_stale()
        if self._submissions is None:
            log = self.portal.population.hubspot
            index: dict[str, list[int]] = {s: [] for s in self.forms}
            for pos, kind in enumerate(log.kind):
                slug = hubspot_events.form_slug(kind, log.detail[pos])
                if slug is not None:
                    index[slug].append(pos)
            self._submissions = index
        return self._submissions

    def submission_json(self, slug: str, pos: int) -> dict[str, Any]:
        log = self.portal.population.hubspot
        contact = self.portal.contacts[CONTACT_ID_BASE + log.person[pos]]
        values = []
        for name in ("email", "firstname", "lastname", "company"):
            value = self.portal.contact_value(contact, name)
            if value is not None:
                values.append({"name": name, "value": str(value)})
        return {
            "conversionId": str(uuid.uuid5(self._ns, f"submission:{pos}")),
            "submittedAt": int(log.ts[pos]),
            "values": values,
            "pageUrl": f"https://www.example.com/forms/{slug}",
        }

    async def submissions(self, request: Request) -> Response:
        slug = self.form_slugs.get(request.path_params["form_guid"])
        if slug is None:
            return error_body(404, "OBJECT_NOT_FOUND", "Form not found")
        q = request.query_params
        try:
            limit = int(q.get("limit") or 20)
            start = _offset(q.get("after"))
        except ValueError as exc:
            return error_body(400, "VALIDATION_ERROR", f"Invalid parameter: {exc}")
        if not 1 <= limit <= SUBMISSIONS_LIMIT:
            return error_body(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {SUBMISSIONS_LIMIT}"
            )
        positions = self.submission_index[slug]
        newest_first = positions[::-1]
        page = newest_first[start : start + limit]
        body: dict[str, Any] = {"results": [self.submission_json(slug, p) for p in page]}
        if start + limit < len(newest_first):
            after = str(start + limit)
            link = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?after={after}"
            body["paging"] = {"next": {"after": after, "link": link}}
        return JSONResponse(body)

    # -- marketing events (webinars) -----------------------------------------------------

    @property
    def participation_index(self) -> dict[int, list[tuple[int, str]]]:
        """Per webinar: (log position, attendance state), newest first."""
        self._drop_stale()
        if self._participations is None:
            log = self.portal.population.hubspot
            states = {
                KIND["webinar_registered"]: "REGISTERED",
                KIND["webinar_attended"]: "ATTENDED",
            }
            index: dict[int, list[tuple[int, str]]] = {i: [] for i in range(len(catalog.WEBINARS))}
            for pos, kind in enumerate(log.kind):
                state = states.get(kind)
                if state is not None:
                    index[log.detail[pos]].append((pos, state))
            self._participations = {k: v[::-1] for k, v in index.items()}
        return self._participations

    def _event_index(self, raw: str) -> int | None:
        try:
            index = int(raw) - MARKETING_EVENT_BASE
        except ValueError:
            return None
        return index if 0 <= index < len(catalog.WEBINARS) else None

    def _counts(self, index: int) -> dict[str, int]:
        rows = self.participation_index[index]
        registered = sum(1 for _, s in rows if s == "REGISTERED")
        attended = sum(1 for _, s in rows if s == "ATTENDED")
        return {
            "registered": registered,
            "attended": attended,
            "cancelled": 0,
            "noShows": max(0, registered - attended),
        }

    def marketing_event_json(self, index: int) -> dict[str, Any]:
        as_of = self.portal.population.spec.as_of_ms
        start = as_of - (30 + 60 * index) * DAY_MS
        counts = self._counts(index)
        return {
            "objectId": str(MARKETING_EVENT_BASE + index),
            "eventName": catalog.WEBINARS[index],
            "eventType": "WEBINAR",
            "eventOrganizer": "Example Inc.",
            "eventDescription": catalog.WEBINARS[index],
            "eventUrl": f"https://www.example.com/webinars/{index + 1}",
            "externalEventId": f"webinar-{index + 1}",
            "appInfo": {"id": "4000001", "name": "Example Webinars"},
            "startDateTime": hubspot_iso(start),
            "endDateTime": hubspot_iso(start + HOUR_MS),
            "eventCancelled": False,
            "eventCompleted": True,
            "registrants": counts["registered"],
            "attendees": counts["attended"],
            "cancellations": counts["cancelled"],
            "noShows": counts["noShows"],
            "customProperties": [],
            "createdAt": hubspot_iso(start - 30 * DAY_MS),
            # Participations keep coming in: last updated at the data's "now".
            "updatedAt": hubspot_iso(self.portal.clock.as_of_ms),
        }

    async def marketing_events(self, request: Request) -> Response:
        indexes = range(len(catalog.WEBINARS))
        return _list_page(request, indexes, self.marketing_event_json, 10)

    async def counters(self, request: Request) -> Response:
        index = self._event_index(request.path_params["event_id"])
        if index is None:
            return error_body(404, "OBJECT_NOT_FOUND", "Marketing event not found")
        return JSONResponse(self._counts(index))

    def participation_json(self, index: int, pos: int, state: str) -> dict[str, Any]:
        log = self.portal.population.hubspot
        person = log.person[pos]
        contact = self.portal.contacts[CONTACT_ID_BASE + person]
        ts = int(log.ts[pos])
        props: dict[str, Any] = {"attendanceState": state, "occurredAt": ts}
        if state == "ATTENDED":
            seconds = 900 + (pos * 37) % 2_700
            props["attendanceDurationSeconds"] = seconds
            props["attendancePercentage"] = str(round(100 * seconds / 3_600))
        contact_json = {"contactId": str(CONTACT_ID_BASE + person), "email": self._email_of(person)}
        for key, name in (("firstname", "firstname"), ("lastname", "lastname")):
            value = self.portal.contact_value(contact, name)
            if value is not None:
                contact_json[key] = str(value)
        return {
            "id": str(uuid.uuid5(self._ns, f"participation:{pos}")),
            # Attendance comes from the webinar tool after the event: recorded later.
            "createdAt": hubspot_iso(
                ts + (ATTENDANCE_REPORTED_AFTER_MS if state == "ATTENDED" else 0)
            ),
            "properties": props,
            "associations": {
                "contact": contact_json,
                "marketingEvent": {
                    "marketingEventId": str(MARKETING_EVENT_BASE + index),
                    "name": catalog.WEBINARS[index],
                    "externalEventId": f"webinar-{index + 1}",
                    "externalAccountId": "4000001",
                },
            },
        }

    def _breakdown(self, request: Request, rows: list[tuple[int, int, str]]) -> Response:
        state = request.query_params.get("state")
        if state:
            rows = [r for r in rows if r[2] == state.upper()]
        return _list_page(request, rows, lambda r: self.participation_json(*r), 10, total=True)

    def _contact_filter(self, identifier: str) -> int | None:
        """The population index of a contact named by id or email, or None."""
        contact = self.portal.find_contact(
            identifier, id_property="email" if "@" in identifier else None
        )
        return None if contact is None else contact.person.index

    async def participations(self, request: Request) -> Response:
        index = self._event_index(request.path_params["event_id"])
        if index is None:
            return error_body(404, "OBJECT_NOT_FOUND", "Marketing event not found")
        rows = [(index, p, s) for p, s in self.participation_index[index]]
        wanted = request.query_params.get("contactIdentifier")
        if wanted:
            person = self._contact_filter(wanted)
            log = self.portal.population.hubspot
            rows = [r for r in rows if log.person[r[1]] == person]
        return self._breakdown(request, rows)

    async def contact_participations(self, request: Request) -> Response:
        person = self._contact_filter(request.path_params["contact"])
        log = self.portal.population.hubspot
        rows = [
            (i, p, s)
            for i, items in self.participation_index.items()
            for p, s in items
            if person is not None and log.person[p] == person
        ]
        rows.sort(key=lambda r: -int(log.ts[r[1]]))
        return self._breakdown(request, rows)

    # -- custom behavioural event definitions --------------------------------------------

    def definition_json(self, n: int, short: str, with_properties: bool) -> dict[str, Any]:
        stamp = hubspot_iso(self.portal.population.spec.as_of_ms - 400 * DAY_MS)
        label = short.replace("_", " ").capitalize()
        prop_name, prop_label = _CUSTOM_EVENT_PROPERTY[short]
        properties = []
        if with_properties:
            properties = [
                {
                    "name": prop_name,
                    "label": prop_label,
                    "type": "string",
                    "fieldType": "text",
                    "groupName": "event_properties",
                    "description": "",
                    "options": [],
                }
            ]
        return {
            "id": str(EVENT_DEFINITION_BASE + n),
            "name": short,
            "fullyQualifiedName": self.custom_event_type(short),
            "labels": {"singular": label, "plural": label + "s"},
            "description": f"{label} (sent by the product's integrations)",
            "archived": False,
            "associations": [],
            "objectTypeId": "0-1",
            "primaryObject": "CONTACT",
            "trackingType": "MANUAL",
            "properties": properties,
            "createdAt": stamp,
            "updatedAt": stamp,
        }

    def _definitions(self) -> list[str]:
        names = (hubspot_events.custom_event_name(k) for k in hubspot_events.CUSTOM_EVENT_KINDS)
        return [n for n in names if n is not None]

    async def event_definitions(self, request: Request) -> Response:
        q = request.query_params
        with_props = q.get("includeProperties", "").lower() == "true"
        search = (q.get("searchString") or "").lower()
        items = [
            (n, short)
            for n, short in enumerate(self._definitions())
            if search in short or search in short.replace("_", " ")
        ]
        if q.get("sortOrder", "").upper() == "DESC":
            items.reverse()

        def render(item: tuple[int, str]) -> dict[str, Any]:
            return self.definition_json(*item, with_props)

        return _list_page(request, items, render, 100, total=True)

    async def event_definition(self, request: Request) -> Response:
        wanted = request.path_params["event_name"]
        for n, short in enumerate(self._definitions()):
            if wanted in (short, self.custom_event_type(short)):
                return JSONResponse(self.definition_json(n, short, True))
        return error_body(404, "OBJECT_NOT_FOUND", f"Event definition {wanted} not found")

    # -- the events API on a stock portal ------------------------------------------------

    async def stock_events(self, request: Request) -> Response:
        """Today's events API with the stock names: `pe{portalId}_…` and GUID form ids."""
        prefix = f"pe{self.sandbox.portal_id}_"
        query = []
        for key, value in request.query_params.multi_items():
            if key == "eventType" and value.startswith("pe"):
                if not value.startswith(prefix):
                    return error_body(400, "VALIDATION_ERROR", f"Unknown eventType {value}")
                value = "pe_" + value[len(prefix) :]
            query.append((key, value))
        scope = dict(request.scope)
        scope["query_string"] = urlencode(query).encode()
        inner = await self._events.events(Request(scope, request.receive))
        if inner.status_code != 200:
            return inner
        body = json.loads(bytes(inner.body))
        for event in body.get("results", []):
            etype = event.get("eventType", "")
            if etype.startswith("pe_"):
                event["eventType"] = prefix + etype[3:]
            form = event.get("properties", {}).get("hs_form_id")
            if form in self.forms:
                event["properties"]["hs_form_id"] = self.forms[form]
        return JSONResponse(body)
