"""Sales engagements as CRM objects: calls, (sales) emails and communications, with
their v4 associations to contacts, served on every tier like meetings.

The population has no kinds for them, so they are derived from it, deterministically
and modestly: a call that books each meeting (two days before) and one after each demo
request (four hours after); the sales email each email reply answers (a day before) and
the reply itself; a LinkedIn message a rep sends after each LinkedIn comment (an hour
after). So the contacts who engage the most also get the most sales touches.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import catalog, hubspot_search
from sandbox.clock import DAY_MS, hubspot_iso, now_ms
from sandbox.hubspot_routes import (
    association_json,
    batch_response,
    error_body,
    missing_error,
    prop_names,
)
from sandbox.hubspot_schema import DEFAULT_PROPERTIES, OBJECT_METADATA, PropertyDef
from sandbox.hubspot_store import CONTACT_ID_BASE, OWNER_ID_BASE, HubSpotPortal, as_string
from sandbox.population import KIND

HOUR_MS = 3_600_000
# HubSpot-defined association type ids (engagement → contact).
TO_CONTACT = {"calls": 194, "emails": 198, "communications": 81}
ID_BASE = {"calls": 91_000_000_001, "emails": 92_000_000_001, "communications": 93_000_000_001}
# HubSpot's default "Connected" call disposition.
CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"


def _common() -> tuple[PropertyDef, ...]:
    return (
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date"),
        PropertyDef("hubspot_owner_id", "Activity assigned to", "enumeration", "select"),
        *OBJECT_METADATA,
    )


ENGAGEMENT_SCHEMAS: dict[str, dict[str, PropertyDef]] = {
    "calls": {
        p.name: p
        for p in (
            *_common(),
            PropertyDef("hs_call_title", "Call title", "string", "text"),
            PropertyDef("hs_call_body", "Call notes", "string", "html"),
            PropertyDef(
                "hs_call_direction",
                "Call direction",
                "enumeration",
                "select",
                ("INBOUND", "OUTBOUND"),
            ),
            PropertyDef(
                "hs_call_status",
                "Call status",
                "enumeration",
                "select",
                (
                    "BUSY",
                    "CALLING_CRM_USER",
                    "CANCELED",
                    "COMPLETED",
                    "CONNECTING",
                    "FAILED",
                    "IN_PROGRESS",
                    "NO_ANSWER",
                    "QUEUED",
                    "RINGING",
                ),
            ),
            PropertyDef("hs_call_duration", "Call duration", "number", "number"),
            PropertyDef("hs_call_disposition", "Call outcome", "string", "text"),
        )
    },
    "emails": {
        p.name: p
        for p in (
            *_common(),
            PropertyDef("hs_email_subject", "Email subject", "string", "text"),
            PropertyDef("hs_email_text", "Email body", "string", "textarea"),
            PropertyDef(
                "hs_email_direction",
                "Email direction",
                "enumeration",
                "select",
                ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
            ),
            PropertyDef(
                "hs_email_status",
                "Email send status",
                "enumeration",
                "select",
                ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
            ),
        )
    },
    "communications": {
        p.name: p
        for p in (
            *_common(),
            PropertyDef(
                "hs_communication_channel_type",
                "Channel type",
                "enumeration",
                "select",
                (
                    "SMS",
                    "WHATS_APP",
                    "LINKEDIN_MESSAGE",
                    "PHYSICAL_MAIL",
                    "CUSTOM_CHANNEL_CONVERSATION",
                ),
            ),
            PropertyDef(
                "hs_communication_logged_from", "Logged from", "enumeration", "select", ("CRM",)
            ),
            PropertyDef("hs_communication_body", "Body", "string", "textarea"),
        )
    },
}


class Engagement(NamedTuple):
    ts: int
    person: int
    variant: int  # calls: 0 booking, 1 demo follow-up; emails: 0 sent, 1 reply
    detail: int


@dataclass
class EngagementLog:
    """One object type's records, in time (= id) order."""

    records: list[Engagement]
    ts: list[int]


def derive(portal: HubSpotPortal) -> dict[str, EngagementLog]:
    """Every engagement record, from the portal's activity log."""
    log = portal.population.hubspot
    # Each record stays inside the as-of window of its activity (never after the data's
    # "now" then, nor before an admin advance's start): so the records of an advance sort
    # after the earlier ones, and their ids (positions) never change.
    clamp = portal.clock.clamp
    out: dict[str, list[Engagement]] = {k: [] for k in TO_CONTACT}
    meeting, demo = KIND["meeting_booked"], KIND["demo_request"]
    reply, social = KIND["email_reply"], KIND["social_engagement"]
    for pos, kind in enumerate(log.kind):
        ts, person, detail = log.ts[pos], log.person[pos], log.detail[pos]
        if kind == meeting:
            out["calls"].append(Engagement(clamp(ts - 2 * DAY_MS, ts), person, 0, detail))
        elif kind == demo:
            out["calls"].append(Engagement(clamp(ts + 4 * HOUR_MS, ts), person, 1, detail))
        elif kind == reply:
            out["emails"].append(Engagement(clamp(ts - DAY_MS, ts), person, 0, detail))
            out["emails"].append(Engagement(ts, person, 1, detail))
        elif kind == social and detail == 0:  # a LinkedIn comment
            out["communications"].append(Engagement(clamp(ts + HOUR_MS, ts), person, 0, detail))
    logs = {}
    for name, records in out.items():
        records.sort()
        logs[name] = EngagementLog(records, [r.ts for r in records])
    return logs


class EngagementsApi:
    """Search and contact associations of calls, emails and communications."""

    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal
        self._logs: dict[str, EngagementLog] | None = None
        self._logs_size = 0  # the activity log's length they were derived from

    @property
    def logs(self) -> dict[str, EngagementLog]:
        size = len(self.portal.population.hubspot)
        # Built on first use (most runs never ask), again once an advance added activities.
        if self._logs is None or self._logs_size != size:
            self._logs, self._logs_size = derive(self.portal), size
        return self._logs

    def routes(self) -> list[Route]:
        routes = []
        for name in TO_CONTACT:
            routes.append(
                Route(f"/crm/v3/objects/{name}/search", self._search(name), methods=["POST"])
            )
            routes.append(
                Route(
                    f"/crm/v4/associations/{name}/contacts/batch/read",
                    self._associations(name),
                    methods=["POST"],
                )
            )
        return routes

    # -- values --------------------------------------------------------------------------

    def value(self, object_type: str, index: int, name: str) -> Any:
        rec = self.logs[object_type].records[index]
        person = self.portal.population.people[rec.person]
        match name:
            case "hs_object_id":
                return ID_BASE[object_type] + index
            case "hs_timestamp" | "hs_createdate" | "hs_lastmodifieddate":
                return rec.ts
            case "hubspot_owner_id":
                return OWNER_ID_BASE + person.owner
        if object_type == "calls":
            title = "Booking call" if rec.variant == 0 else "Demo follow-up call"
            match name:
                case "hs_call_title":
                    return f"{title} with {person.first} {person.last}"
                case "hs_call_body":
                    return (
                        f"<p>Booked: {catalog.MEETING_TITLES[rec.detail]}</p>"
                        if rec.variant == 0
                        else "<p>Followed up on the demo request</p>"
                    )
                case "hs_call_direction":
                    return "OUTBOUND"
                case "hs_call_status":
                    return "COMPLETED"
                case "hs_call_duration":
                    return 60_000 * (3 + (index * 7) % 25)
                case "hs_call_disposition":
                    return CONNECTED
        elif object_type == "emails":
            subject = catalog.EMAILS[rec.detail][0]
            match name:
                case "hs_email_subject":
                    return subject if rec.variant == 0 else f"Re: {subject}"
                case "hs_email_text":
                    return (
                        f"Hi {person.first}, following up on {subject.lower()}."
                        if rec.variant == 0
                        else "Thanks, interested. Can we talk next week?"
                    )
                case "hs_email_direction":
                    return "EMAIL" if rec.variant == 0 else "INCOMING_EMAIL"
                case "hs_email_status":
                    return "SENT"
        else:
            match name:
                case "hs_communication_channel_type":
                    return "LINKEDIN_MESSAGE"
                case "hs_communication_logged_from":
                    return "CRM"
                case "hs_communication_body":
                    return f"Hi {person.first}, thanks for the comment on our post."
        return None

    def record_json(self, object_type: str, index: int, names: list[str]) -> dict[str, Any]:
        schema = self.portal.schema[object_type]
        stamp = hubspot_iso(self.logs[object_type].ts[index])
        return {
            "id": str(ID_BASE[object_type] + index),
            "properties": {
                n: as_string(schema.get(n), self.value(object_type, index, n))
                for n in names
                if n in schema
            },
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }

    # -- routes --------------------------------------------------------------------------

    def _search(self, object_type: str) -> Any:
        async def search(request: Request) -> Response:
            body = await _json(request)
            if body is None:
                return error_body(400, "VALIDATION_ERROR", "Invalid input JSON")
            groups = body.get("filterGroups") or []

            def get(index: int, name: str) -> Any:
                return self.value(object_type, index, name)

            try:
                pred = hubspot_search.compile_groups(
                    groups, self.portal.schema[object_type], get, indexed="hs_lastmodifieddate"
                )
                offset, size = hubspot_search.page_window(body.get("after"), body.get("limit"))
            except hubspot_search.SearchError as exc:
                return error_body(400, "VALIDATION_ERROR", str(exc))
            ts = self.logs[object_type].ts
            bounds = hubspot_search.bounded(groups, "hs_lastmodifieddate")
            lo, hi = (
                (bisect_left(ts, bounds[0]), bisect_right(ts, bounds[1]))
                if bounds
                else (0, len(ts))
            )
            matches = [i for i in range(lo, hi) if pred(i)]
            matches = hubspot_search.sort_records(
                matches, body.get("sorts") or [], get, "hs_lastmodifieddate"
            )
            names = prop_names(body.get("properties"), DEFAULT_PROPERTIES)
            page = matches[offset : offset + size]
            out: dict[str, Any] = {
                "total": len(matches),
                "results": [self.record_json(object_type, i, names) for i in page],
            }
            if offset + size < len(matches):
                out["paging"] = {"next": {"after": str(offset + size)}}
            return JSONResponse(out)

        return search

    def _associations(self, object_type: str) -> Any:
        async def associations(request: Request) -> Response:
            started = now_ms()
            body = await _json(request)
            inputs = body.get("inputs") if body is not None else None
            if not isinstance(inputs, list) or len(inputs) > 1000:
                return error_body(400, "VALIDATION_ERROR", "inputs is required (at most 1000 ids)")
            records = self.logs[object_type].records
            results, missing = [], []
            for item in inputs:
                ident = str(item.get("id")) if isinstance(item, dict) else str(item)
                try:
                    index = int(ident) - ID_BASE[object_type]
                except ValueError:
                    index = -1
                if not 0 <= index < len(records):
                    missing.append(ident)
                    continue
                contact = CONTACT_ID_BASE + records[index].person
                results.append(association_json(ident, contact, TO_CONTACT[object_type]))
            errors = []
            if missing:
                message = f"No associations found for some {object_type}"
                errors.append(missing_error(message, missing))
            return batch_response(results, errors, started)

        return associations


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
