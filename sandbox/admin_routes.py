"""The admin API under `/_sandbox/`: counters, faults, limits, sessions, and reads of
the stored state and the hidden outcomes, for tests and benchmarks (see README.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.clock import hubspot_iso, salesforce_iso
from sandbox.faults import rules_from_json
from sandbox.hubspot_schema import CONTACT_PROPERTIES
from sandbox.hubspot_store import CONTACT_ID_BASE, MEETING_ID_BASE, OWNER_ID_BASE, as_string
from sandbox.ids import sf_id
from sandbox.limits import Limits
from sandbox.salesforce_errors import SalesforceError
from sandbox.simulation import advance
from sandbox.state import Sandbox


class _Verbatim:
    """A planted value the portal serves as typed, bypassing its number parsing."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _servable(values: dict[str, Any]) -> str | None:
    """Why these values could not be served in a JSON response (None when they can)."""
    try:
        json.dumps(values, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:
        return f"values must be finite and encodable as UTF-8 JSON: {exc}"
    return None


def _hubspot_problem(name: str, value: Any) -> str | None:
    prop = CONTACT_PROPERTIES.get(name)
    if prop is None:
        return "no such property"
    if prop.type in ("datetime", "date"):
        # The portal computes with these (search filters, cursors): they stay valid instants.
        return "datetime properties cannot be planted"
    if value is not None and not isinstance(value, str):
        return "HubSpot serves every property value as a string"
    return None


def _salesforce_problem(schema: dict[str, str], sobject: str, name: str) -> str | None:
    ftype = schema.get(name)
    if ftype is None:
        return f"no such field on {sobject}"
    if ftype in ("id", "date", "datetime") or name == "IsDeleted":
        # The org computes with these (ids, SystemModstamp order): they stay valid.
        return "id, date and datetime fields cannot be planted"
    return None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


class AdminApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def routes(self) -> list[Route]:
        a = "/_sandbox"
        return [
            Route(a + "/health", self.health, methods=["GET"]),
            Route(a + "/info", self.info, methods=["GET"]),
            Route(a + "/stats", self.stats, methods=["GET"]),
            Route(a + "/reset", self.reset, methods=["POST"]),
            Route(a + "/faults", self.get_faults, methods=["GET"]),
            Route(a + "/faults", self.set_faults, methods=["PUT", "POST"]),
            Route(a + "/faults", self.clear_faults, methods=["DELETE"]),
            Route(a + "/limits", self.get_limits, methods=["GET"]),
            Route(a + "/limits", self.set_limits, methods=["PUT", "POST"]),
            Route(a + "/latency", self.get_latency, methods=["GET"]),
            Route(a + "/latency", self.set_latency, methods=["PUT", "POST"]),
            Route(a + "/latency/waits", self.latency_waits, methods=["GET"]),
            Route(a + "/sessions/expire", self.expire_sessions, methods=["POST"]),
            Route(a + "/hubspot/contacts/{contact_id}", self.hubspot_contact, methods=["GET"]),
            Route(
                a + "/hubspot/contacts/{contact_id}/properties",
                self.plant_hubspot_properties,
                methods=["POST"],
            ),
            Route(a + "/hubspot/tasks", self.hubspot_tasks, methods=["GET"]),
            Route(a + "/hubspot/owners/{owner_id}", self.set_hubspot_owner, methods=["PUT"]),
            Route(a + "/salesforce/records/{record_id}", self.salesforce_record, methods=["GET"]),
            Route(
                a + "/salesforce/records/{record_id}/fields",
                self.plant_salesforce_fields,
                methods=["POST"],
            ),
            Route(a + "/salesforce/tasks", self.salesforce_tasks, methods=["GET"]),
            Route(a + "/salesforce/convert", self.convert_lead, methods=["POST"]),
            Route(a + "/expected/{crm}", self.expected, methods=["GET"]),
            Route(a + "/outcomes", self.outcomes, methods=["GET"]),
            Route(a + "/advance", self.advance, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def info(self, request: Request) -> Response:
        sb = self.sb
        creds = sb.credentials
        return JSONResponse(
            {
                "base_url": sb.base_url,
                "ca_file": sb.ca_file,
                "hubspot_base_url": sb.base_url,
                "salesforce_instance_url": sb.base_url,
                "salesforce_rest_base": sb.base_url + "/services/data/v59.0",
                "hubspot_token": creds.hubspot_token,
                "salesforce_session_id": creds.salesforce_session_id,
                "salesforce_client_id": creds.salesforce_client_id,
                "salesforce_client_secret": creds.salesforce_client_secret,
                "salesforce_username": creds.salesforce_username,
                "salesforce_jwt_key_file": sb.jwt_key_file,
                "profile": sb.profile,
                "spec": asdict(sb.spec),
                "build_seconds": round(sb.build_seconds, 3),
                # The data's "now": the spec's as_of, moved by POST /_sandbox/advance.
                "as_of": hubspot_iso(sb.portal.clock.as_of_ms),
                "counts": {
                    "people": len(sb.population.people),
                    "hubspot_contacts": len(sb.portal.contacts),
                    "salesforce_people": len(sb.org.people),
                    "hubspot_activities": len(sb.population.hubspot),
                    "salesforce_activities": len(sb.population.salesforce),
                },
            }
        )

    async def stats(self, request: Request) -> Response:
        return JSONResponse({**self.sb.stats.as_json(), "limits": self.sb.limiter.describe()})

    async def reset(self, request: Request) -> Response:
        """Zero the counters and the rate-limit windows, forget the recorded latency
        waits (the data stays as it is)."""
        self.sb.stats.reset()
        self.sb.limiter.reset()
        self.sb.latency.forget()
        return JSONResponse({"ok": True})

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.sb.faults.describe())

    async def set_faults(self, request: Request) -> Response:
        try:
            body = await _body(request)
            rules = rules_from_json(body.get("rules") or [])
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        self.sb.faults.set(rules, body.get("seed"))
        return JSONResponse(self.sb.faults.describe())

    async def clear_faults(self, request: Request) -> Response:
        self.sb.faults.set([])
        return JSONResponse(self.sb.faults.describe())

    async def get_limits(self, request: Request) -> Response:
        return JSONResponse(self.sb.limiter.describe())

    async def set_limits(self, request: Request) -> Response:
        try:
            body = await _body(request)
            current = asdict(self.sb.limiter.limits)
            current.update(body)
            self.sb.limiter.limits = Limits(**current)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        self.sb.limiter.reset()
        return JSONResponse(self.sb.limiter.describe())

    async def get_latency(self, request: Request) -> Response:
        return JSONResponse(self.sb.latency.describe())

    async def set_latency(self, request: Request) -> Response:
        """Switch the latency profile on or off, or change its settings: body with any of
        `enabled`, `scale`, `sigma`, `seed`, `medians_ms` ({family: ms}, merged)."""
        try:
            self.sb.latency.configure(**await _body(request))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.sb.latency.describe())

    async def latency_waits(self, request: Request) -> Response:
        """The recorded waits, oldest first: `?family=` keeps one family's."""
        family = request.query_params.get("family")
        waits = [w.as_json() for w in self.sb.latency.waits if family in (None, w.family)]
        return JSONResponse({"waits": waits, "peak_waiting": self.sb.latency.peak_waiting})

    async def expire_sessions(self, request: Request) -> Response:
        self.sb.credentials.expire_salesforce_sessions()
        return JSONResponse({"ok": True})

    async def hubspot_contact(self, request: Request) -> Response:
        portal = self.sb.portal
        try:
            contact = portal.contacts.get(int(request.path_params["contact_id"]))
        except ValueError:
            contact = None
        if contact is None:
            return JSONResponse({"error": "no such contact"}, status_code=404)
        props = {
            n: as_string(p, portal.contact_value(contact, n)) for n, p in CONTACT_PROPERTIES.items()
        }
        tasks = [
            portal.task_json(portal.tasks[t], list(portal.tasks[t].props))
            for t in portal.tasks_by_contact.get(contact.id, [])
        ]
        return JSONResponse(
            {
                "id": str(contact.id),
                "archived": contact.archived,
                "properties": props,
                "tasks": tasks,
            }
        )

    async def plant_hubspot_properties(self, request: Request) -> Response:
        """Store raw property values as a user or an import would, without the API's
        validation: the way bad data (`numemployees` "1e400", a 100 kB job title) gets in."""
        portal = self.sb.portal
        try:
            contact = portal.contacts.get(int(request.path_params["contact_id"]))
            values = (await _body(request)).get("properties")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if contact is None:
            return JSONResponse({"error": "no such contact"}, status_code=404)
        if not isinstance(values, dict):
            return JSONResponse({"error": 'body: {"properties": {name: value}}'}, 400)
        problems = [
            f"{name}: {why}"
            for name, value in values.items()
            if (why := _hubspot_problem(name, value))
        ]
        problems += filter(None, [_servable(values)])
        if problems:
            return JSONResponse({"error": "; ".join(problems)}, status_code=400)
        with portal.writing(contact):
            if contact.props is None:
                contact.props = {}
            props: dict[str, Any] = contact.props
            for name, value in values.items():
                number = CONTACT_PROPERTIES[name].type == "number" and value not in (None, "")
                props[name] = _Verbatim(value) if number else ("" if value is None else value)
        return JSONResponse({"id": str(contact.id), "planted": sorted(values)})

    async def set_hubspot_owner(self, request: Request) -> Response:
        """Deactivate or reactivate an owner: body `{"active": false}`."""
        portal = self.sb.portal
        try:
            owner_id = int(request.path_params["owner_id"])
            active = (await _body(request)).get("active")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        known = {OWNER_ID_BASE + o.index for o in portal.population.owners}
        if owner_id not in known:
            return JSONResponse({"error": "no such owner"}, status_code=404)
        if not isinstance(active, bool):
            return JSONResponse({"error": 'body: {"active": true | false}'}, status_code=400)
        if active:
            portal.inactive_owners.discard(owner_id)
        else:
            portal.inactive_owners.add(owner_id)
        return JSONResponse({"id": str(owner_id), "active": active})

    async def hubspot_tasks(self, request: Request) -> Response:
        portal = self.sb.portal
        return JSONResponse([portal.task_json(t, list(t.props)) for t in portal.tasks.values()])

    async def salesforce_record(self, request: Request) -> Response:
        org = self.sb.org
        rid = request.path_params["record_id"]
        for sobject in ("Lead", "Contact", "Task"):
            row = org.lookup(sobject, rid)
            if row is not None:
                record = org.render(sobject, row, list(org.schema[sobject]))
                task_fields = list(org.schema["Task"])
                tasks = [org.render("Task", t, task_fields) for t in org.tasks_for(rid)]
                return JSONResponse({"sobject": sobject, "fields": record, "tasks": tasks})
        return JSONResponse({"error": "no such record"}, status_code=404)

    async def plant_salesforce_fields(self, request: Request) -> Response:
        """Store raw field values on a Lead or Contact without the API's type checks,
        served as they are (JSON numbers, strings, booleans, lists)."""
        org = self.sb.org
        rid = request.path_params["record_id"]
        rec = next((r for o in ("Lead", "Contact") if (r := org.lookup(o, rid)) is not None), None)
        if rec is None:
            return JSONResponse({"error": "no such Lead or Contact"}, status_code=404)
        try:
            values = (await _body(request)).get("fields")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if not isinstance(values, dict):
            return JSONResponse({"error": 'body: {"fields": {name: value}}'}, 400)
        schema = org.schema[rec.sobject]
        problems = [
            f"{name}: {why}"
            for name in values
            if (why := _salesforce_problem(schema, rec.sobject, name))
        ]
        problems += filter(None, [_servable(values)])
        if problems:
            return JSONResponse({"error": "; ".join(problems)}, status_code=400)
        if rec.props is None:
            rec.props = {}
        rec.props.update(values)
        org.touch(rec)
        return JSONResponse({"id": rid, "planted": sorted(values)})

    async def salesforce_tasks(self, request: Request) -> Response:
        org = self.sb.org
        fields = list(org.schema["Task"])
        return JSONResponse([org.render("Task", t, fields) for t in org.created_tasks])

    async def convert_lead(self, request: Request) -> Response:
        """Convert a live lead as a user would in the UI: `{"lead_id": "00Q..."}` ->
        `{"contact_id": "003..."}`."""
        try:
            lead_id = (await _body(request)).get("lead_id")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if not isinstance(lead_id, str):
            return JSONResponse({"error": 'body: {"lead_id": "00Q..."}'}, status_code=400)
        try:
            contact_id = self.sb.org.convert(lead_id)
        except SalesforceError as exc:
            return JSONResponse(
                {"error": exc.message, "errorCode": exc.code}, status_code=exc.status
            )
        return JSONResponse({"lead_id": lead_id, "contact_id": contact_id})

    async def expected(self, request: Request) -> Response:
        """Every id a complete read should find, so tests can compare sets."""
        crm = request.path_params["crm"]
        if crm == "hubspot":
            portal = self.sb.portal
            return JSONResponse(
                {
                    "contacts": [str(i) for i in portal.live_ids],
                    "archived_contacts": [str(i) for i in portal.archived_ids],
                    "events": {
                        t: [portal.event_json(p)["id"] for p in pos]
                        for t, pos in portal.event_pos.items()
                    },
                    "meetings": [str(MEETING_ID_BASE + m) for m in range(len(portal.meeting_pos))],
                    "tasks": [str(t) for t in portal.tasks],
                }
            )
        if crm == "salesforce":
            org = self.sb.org
            people = list(org.people.values())
            live_leads = [p for p in people if p.sobject == "Lead" and not p.deleted]
            converted = [p.id for p in live_leads if p.conversion is not None]
            return JSONResponse(
                {
                    # Converted leads come last: a test taking the first leads to write
                    # to gets ones that can be written.
                    "leads": [p.id for p in live_leads if p.conversion is None] + converted,
                    "converted_leads": converted,
                    "contacts": [p.id for p in people if p.sobject == "Contact" and not p.deleted],
                    "deleted": [p.id for p in people if p.deleted],
                    "tasks": [
                        org.value("Task", i, "Id")
                        for i in range(len(org.task_pos))
                        if not org.value("Task", i, "IsDeleted")
                    ]
                    + [t.id for t in org.created_tasks],
                    "events": [
                        sf_id("Event", i)
                        for i in range(len(org.event_pos))
                        if not org.value("Event", i, "IsDeleted")
                    ],
                    "campaign_members": [
                        sf_id("CampaignMember", i)
                        for i in range(len(org.member_pos))
                        if not org.value("CampaignMember", i, "IsDeleted")
                    ],
                }
            )
        return JSONResponse({"error": "crm is hubspot or salesforce"}, status_code=404)

    async def outcomes(self, request: Request) -> Response:
        """The hidden outcome per person: did they become SQL (by as_of + 90 days), when
        (before as_of for those already at SQL or customer), when they became MQL (before
        as_of), with what propensity. Times in the person's CRM's datetime format."""
        sb = self.sb
        crm = request.query_params.get("crm")
        hs_count = sb.population.hubspot_count
        out = []
        for p in sb.population.people:
            in_hubspot = p.index < hs_count
            if crm and crm != ("hubspot" if in_hubspot else "salesforce"):
                continue
            iso = hubspot_iso if in_hubspot else salesforce_iso
            out.append(
                {
                    "crm": "hubspot" if in_hubspot else "salesforce",
                    "id": str(CONTACT_ID_BASE + p.index) if in_hubspot else sb.org.who[p.index],
                    "persona": p.persona,
                    "became_sql": p.became_sql,
                    "sql_at": None if p.sql_at_ms is None else iso(p.sql_at_ms),
                    "mql_at": None if p.mql_at_ms is None else iso(p.mql_at_ms),
                    "propensity": round(p.propensity, 6),
                }
            )
        return JSONResponse(out)

    async def advance(self, request: Request) -> Response:
        """Move the data's clock: body `{"days": N}` (1..365); see sandbox.simulation."""
        try:
            body = await _body(request)
            result = advance(self.sb, body.get("days"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result.as_json())
