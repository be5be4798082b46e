"""The HubSpot portal's state: contacts, tasks, meetings, events, owners.

No HTTP here: operations take and return plain values and raise `HubSpotError` with the
status and category the real API would answer with. The routes turn that into JSON.
"""

from __future__ import annotations

import json
import uuid
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

from sandbox import hubspot_events
from sandbox.clock import hubspot_iso, now_ms, parse_instant
from sandbox.hubspot_schema import (
    LIFECYCLE_RANK,
    SCHEMAS,
    PropertyDef,
)
from sandbox.modindex import ModIndex
from sandbox.population import Person, Population

CONTACT_ID_BASE = 100_001
OWNER_ID_BASE = 70_000_001
MEETING_ID_BASE = 90_000_000_001
TASK_ID_BASE = 60_000_000_001
TASK_TO_CONTACT = 204
MEETING_TO_CONTACT = 200


class HubSpotError(Exception):
    """An error the real API answers with `status` and a body of `category`."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
    ):
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.context = context or {}
        self.sub_category = sub_category


class HsContact:
    __slots__ = ("archived", "archived_ms", "created_ms", "id", "modified_ms", "person", "props")

    def __init__(self, cid: int, person: Person) -> None:
        self.id = cid
        self.person = person
        self.props: dict[str, str] | None = None  # written values, over the generated ones
        self.created_ms = person.created_ms
        self.modified_ms = person.modified_ms
        self.archived = person.deleted
        self.archived_ms = person.modified_ms if person.deleted else None


@dataclass
class HsTask:
    id: int
    props: dict[str, str]
    contact_ids: list[int]
    created_ms: int
    modified_ms: int


@dataclass
class HsWrite:
    """What one record of a write resolved to, for the batch endpoints."""

    contact: HsContact | None = None
    error: HubSpotError | None = None


def _typed(prop: PropertyDef | None, raw: Any) -> Any:
    if raw is None or raw == "" or prop is None:
        return None if raw == "" else raw
    if prop.type in ("datetime", "date"):
        return raw if isinstance(raw, int) else parse_instant(str(raw))
    if prop.type == "number" and isinstance(raw, str):
        number = float(raw)
        return int(number) if number.is_integer() else number
    return raw


def as_string(prop: PropertyDef | None, value: Any) -> str | None:
    """A typed value as the API shows it (every property value is a string)."""
    if value is None:
        return None
    if prop is not None and prop.type in ("datetime", "date") and isinstance(value, int):
        return hubspot_iso(value)
    return str(value)


@dataclass
class HubSpotPortal:
    population: Population
    contacts: dict[int, HsContact] = field(default_factory=dict)
    tasks: dict[int, HsTask] = field(default_factory=dict)
    tasks_by_contact: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # This portal's property definitions by object type: a profile or a properties-API
        # create changes them here, never in the module-level defaults.
        self.schema: dict[str, dict[str, PropertyDef]] = {
            kind: dict(props) for kind, props in SCHEMAS.items()
        }
        pop = self.population
        for person in pop.people[: pop.hubspot_count]:
            cid = CONTACT_ID_BASE + person.index
            self.contacts[cid] = HsContact(cid, person)
        self.live = ModIndex[int](
            (c.modified_ms, c.id) for c in self.contacts.values() if not c.archived
        )
        self.live_ids = sorted(c.id for c in self.contacts.values() if not c.archived)
        self.archived_ids = sorted(c.id for c in self.contacts.values() if c.archived)
        log = pop.hubspot
        # Meetings and each event type as arrays of positions in the (time-sorted) log.
        self.meeting_pos = array("i")
        self.event_pos: dict[str, array[int]] = {t: array("i") for t in hubspot_events.EVENT_TYPES}
        self.all_event_pos = array("i")
        for pos, kind in enumerate(log.kind):
            if kind == hubspot_events.MEETING:
                self.meeting_pos.append(pos)
            else:
                etype = hubspot_events.event_type(kind)
                assert etype is not None
                self.event_pos[etype].append(pos)
                self.all_event_pos.append(pos)
        self.meeting_ts = array("q", (log.ts[p] for p in self.meeting_pos))
        self._uuid_ns = uuid.UUID(int=pop.spec.seed % (2**128))

    # -- contacts -----------------------------------------------------------------------

    def contact_value(self, c: HsContact, name: str) -> Any:
        """The typed value of a contact property (epoch ms for datetimes)."""
        if c.props is not None and name in c.props:
            return _typed(self.schema["contacts"].get(name), c.props[name])
        p = c.person
        match name:
            case "hs_object_id":
                return c.id
            case "createdate":
                return c.created_ms
            case "lastmodifieddate":
                return c.modified_ms
            case "email":
                return p.email
            case "firstname":
                return p.first
            case "lastname":
                return p.last
            case "jobtitle":
                return p.title
            case "company":
                return p.company.name
            case "numemployees":
                return p.company.size
            case "industry":
                return p.company.industry
            case "country":
                return p.company.country
            case "lifecyclestage":
                return p.stage
            case "hs_lead_status":
                return p.lead_status
            case "hubspot_owner_id":
                return OWNER_ID_BASE + p.owner
            case "business_license_number":
                return p.business_license
            case "real_estate_license":
                return p.real_estate_license
        return None

    def contact_json(self, c: HsContact, names: list[str]) -> dict[str, Any]:
        props = {
            n: as_string(self.schema["contacts"].get(n), self.contact_value(c, n))
            for n in names
            if n in self.schema["contacts"]
        }
        out: dict[str, Any] = {
            "id": str(c.id),
            "properties": props,
            "createdAt": hubspot_iso(c.created_ms),
            "updatedAt": hubspot_iso(c.modified_ms),
            "archived": c.archived,
        }
        if c.archived and c.archived_ms is not None:
            out["archivedAt"] = hubspot_iso(c.archived_ms)
        return out

    def find_contact(
        self, raw_id: Any, archived: bool = False, id_property: str | None = None
    ) -> HsContact | None:
        if id_property == "email":
            wanted = str(raw_id).casefold()
            for c in self.contacts.values():  # rare path: ids by email
                if c.archived == archived and self.contact_value(c, "email") == wanted:
                    return c
            return None
        try:
            found = self.contacts.get(int(str(raw_id)))
        except ValueError:
            return None
        return found if found is not None and found.archived == archived else None

    def list_page(
        self, after: str | None, limit: int, archived: bool
    ) -> tuple[list[int], str | None]:
        """One page of ids after the cursor (the last id seen), in id order."""
        ids = self.archived_ids if archived else self.live_ids
        start = bisect_right(ids, int(after)) if after else 0
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return page, (str(page[-1]) if more and page else None)

    def modstamp_keys(self, bounds: tuple[int, int] | None) -> list[int]:
        """Ids of live contacts in (lastmodifieddate, id) order, within `bounds`."""
        return self.live.keys() if bounds is None else self.live.keys_between(*bounds)

    def id_keys(self, bounds: tuple[int, int]) -> list[int]:
        """Ids of live contacts with lo <= id <= hi, in id order."""
        ids = self.live_ids
        return ids[bisect_left(ids, bounds[0]) : bisect_right(ids, bounds[1])]

    def search_candidates(self, bounds: tuple[int, int] | None) -> list[HsContact]:
        """Live contacts in (lastmodifieddate, id) order, narrowed to `bounds`."""
        return [self.contacts[k] for k in self.modstamp_keys(bounds)]

    def id_candidates(self, bounds: tuple[int, int]) -> list[HsContact]:
        """Live contacts with lo <= id <= hi, in id order."""
        return [self.contacts[k] for k in self.id_keys(bounds)]

    def check_properties(self, props: dict[str, Any], schema: dict[str, PropertyDef]) -> None:
        """Refuse the whole request (400) for unknown, read-only or invalid values."""
        problems = []
        for name, value in props.items():
            prop = schema.get(name)
            if prop is None:
                problems.append(
                    (name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
            elif prop.read_only:
                problems.append((name, "READ_ONLY_VALUE", f"{name} is a read only property"))
            elif value in (None, ""):
                continue
            elif prop.options and str(value) not in prop.options:
                problems.append(
                    (
                        name,
                        "INVALID_OPTION",
                        f"{value} was not one of the allowed options: {list(prop.options)}",
                    )
                )
            elif prop.type == "number":
                try:
                    float(str(value))
                except ValueError:
                    problems.append((name, "INVALID_FLOAT", f"{value} is not a valid number"))
        if problems:
            detail = ", ".join(
                json.dumps(
                    {"isValid": False, "message": msg, "error": code, "name": name},
                    separators=(",", ":"),
                )
                for name, code, msg in problems
            )
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Property values were not valid: [{detail}]"
            )

    def update_contact(self, c: HsContact, props: dict[str, Any]) -> None:
        """Apply a validated update, refusing a backward lifecycle move as the API does."""
        new_stage = props.get("lifecyclestage")
        if new_stage:
            current = self.contact_value(c, "lifecyclestage")
            if current and LIFECYCLE_RANK.get(str(new_stage), 0) < LIFECYCLE_RANK.get(current, 0):
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f'Property values were not valid: [{{"isValid":false,"message":"{new_stage} '
                    f"is not a valid lifecycle stage transition from {current}; clear "
                    f'lifecyclestage first, then set it","error":"INVALID_OPTION",'
                    f'"name":"lifecyclestage"}}]',
                    context={"id": [str(c.id)]},
                )
        if c.props is None:
            c.props = {}
        for name, value in props.items():
            c.props[name] = "" if value is None else str(value)
        old = c.modified_ms
        c.modified_ms = now_ms()
        self.live.move(old, c.modified_ms, c.id)

    # -- tasks ---------------------------------------------------------------------------

    def create_task(self, props: dict[str, Any], associations: list[dict[str, Any]]) -> HsTask:
        self.check_properties(props, self.schema["tasks"])
        if not props.get("hs_timestamp"):
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Property values were not valid: hs_timestamp is required"
            )
        contact_ids = []
        for assoc in associations or []:
            to_id = str((assoc.get("to") or {}).get("id", ""))
            types = assoc.get("types") or []
            if not any(
                t.get("associationTypeId") == TASK_TO_CONTACT
                and t.get("associationCategory") == "HUBSPOT_DEFINED"
                for t in types
            ):
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f"Invalid association types {types}: a task to contact "
                    f"association is HUBSPOT_DEFINED {TASK_TO_CONTACT}",
                )
            contact = self.find_contact(to_id)
            if contact is None:
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f"Association target contact {to_id} does not exist",
                    context={"ids": [to_id]},
                )
            contact_ids.append(contact.id)
        stamp = now_ms()
        task = HsTask(
            TASK_ID_BASE + len(self.tasks),
            {k: str(v) for k, v in props.items()},
            contact_ids,
            stamp,
            stamp,
        )
        self.tasks[task.id] = task
        for cid in contact_ids:
            self.tasks_by_contact.setdefault(cid, []).append(task.id)
        return task

    def task_value(self, t: HsTask, name: str) -> Any:
        match name:
            case "hs_object_id":
                return t.id
            case "hs_createdate":
                return t.created_ms
            case "hs_lastmodifieddate":
                return t.modified_ms
        return _typed(self.schema["tasks"].get(name), t.props.get(name))

    def task_json(self, t: HsTask, names: list[str], with_assoc: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(t.id),
            "properties": {
                n: as_string(self.schema["tasks"].get(n), self.task_value(t, n))
                for n in names
                if n in self.schema["tasks"]
            },
            "createdAt": hubspot_iso(t.created_ms),
            "updatedAt": hubspot_iso(t.modified_ms),
            "archived": False,
        }
        if with_assoc and t.contact_ids:
            out["associations"] = {
                "contacts": {
                    "results": [{"id": str(c), "type": "task_to_contact"} for c in t.contact_ids]
                }
            }
        return out

    # -- meetings and associations ------------------------------------------------------

    def meeting_candidates(self, bounds: tuple[int, int] | None) -> list[int]:
        """Indexes into `meeting_pos`, in time order, narrowed to `bounds`."""
        if bounds is None:
            return list(range(len(self.meeting_pos)))
        lo = bisect_left(self.meeting_ts, bounds[0])
        hi = bisect_right(self.meeting_ts, bounds[1])
        return list(range(lo, hi))

    def meeting_value(self, m: int, name: str) -> Any:
        pos = self.meeting_pos[m]
        log = self.population.hubspot
        match name:
            case "hs_object_id":
                return MEETING_ID_BASE + m
            case "hs_timestamp" | "hs_meeting_start_time" | "hs_createdate" | "hs_lastmodifieddate":
                return log.ts[pos]
            case "hs_meeting_title":
                return hubspot_events.meeting_title(log.detail[pos])
        return None

    def meeting_json(self, m: int, names: list[str]) -> dict[str, Any]:
        ts = hubspot_iso(self.meeting_ts[m])
        return {
            "id": str(MEETING_ID_BASE + m),
            "properties": {
                n: as_string(self.schema["meetings"].get(n), self.meeting_value(m, n))
                for n in names
                if n in self.schema["meetings"]
            },
            "createdAt": ts,
            "updatedAt": ts,
            "archived": False,
        }

    def meeting_contact(self, meeting_id: str) -> int | None:
        try:
            m = int(meeting_id) - MEETING_ID_BASE
        except ValueError:
            return None
        if not 0 <= m < len(self.meeting_pos):
            return None
        return CONTACT_ID_BASE + self.population.hubspot.person[self.meeting_pos[m]]

    # -- events --------------------------------------------------------------------------

    def event_json(self, pos: int) -> dict[str, Any]:
        log = self.population.hubspot
        kind = log.kind[pos]
        return {
            "objectType": "CONTACT",
            "objectId": str(CONTACT_ID_BASE + log.person[pos]),
            "eventType": hubspot_events.event_type(kind),
            "occurredAt": hubspot_iso(log.ts[pos]),
            "id": str(uuid.uuid5(self._uuid_ns, str(pos))),
            "properties": hubspot_events.event_properties(kind, log.detail[pos]),
        }

    # -- owners --------------------------------------------------------------------------

    def owners_json(self) -> list[dict[str, Any]]:
        stamp = hubspot_iso(self.population.spec.as_of_ms - 400 * 86_400_000)
        return [
            {
                "id": str(OWNER_ID_BASE + o.index),
                "email": o.email,
                "firstName": o.first,
                "lastName": o.last,
                "userId": 9_000_000 + o.index,
                "type": "PERSON",
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
                "teams": [],
            }
            for o in self.population.owners
        ]
