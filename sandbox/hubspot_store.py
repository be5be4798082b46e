"""The HubSpot portal's state: contacts, tasks, meetings, events, owners.

No HTTP here: operations take and return plain values and raise `HubSpotError` with the
status and category the real API would answer with. The routes turn that into JSON.
"""

from __future__ import annotations

import json
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sandbox import hubspot_events
from sandbox.clock import DataClock, hubspot_iso, now_ms, parse_instant, wall_ms
from sandbox.hubspot_schema import (
    LIFECYCLE_DATE_PROPERTY,
    LIFECYCLE_RANK,
    SCHEMAS,
    PropertyDef,
)
from sandbox.modindex import ModIndex
from sandbox.population import KIND, Person, Population

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
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.context = context or {}
        self.sub_category = sub_category
        self.errors = errors or []


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

    def copy(self) -> HsContact:
        """This contact as it is now, apart from later writes (what the search index holds)."""
        out = HsContact.__new__(HsContact)
        out.id, out.person, out.created_ms = self.id, self.person, self.created_ms
        out.modified_ms, out.archived, out.archived_ms = (
            self.modified_ms,
            self.archived,
            self.archived_ms,
        )
        out.props = None if self.props is None else dict(self.props)
        return out


@dataclass
class HsTask:
    id: int
    props: dict[str, str]
    contact_ids: list[int]
    created_ms: int
    modified_ms: int
    # When it was created by the wall clock: the search lag runs from here.
    written_wall_ms: int = field(default_factory=wall_ms)


@dataclass
class Problem:
    """One reason an input is invalid: `code` as HubSpot names it, and the property
    (`name`) or the part of the input (`part`) it is about."""

    code: str
    message: str
    name: str | None = None
    part: str = "properties"

    def detail(self) -> str:
        """The `{"isValid": false, ...}` item of HubSpot's "Property values were not
        valid" message."""
        return json.dumps(
            {"isValid": False, "message": self.message, "error": self.code, "name": self.name},
            separators=(",", ":"),
        )


def invalid_input(problems: Sequence[tuple[int | None, Problem]]) -> HubSpotError:
    """The 400 VALIDATION_ERROR for a request (or a whole batch) with invalid inputs.

    `problems` pairs each problem with its input's index in a batch (None for a single
    object). The message follows HubSpot's "Property values were not valid: [...]" form
    for property problems and names the offending inputs; `errors` lists every problem.
    """
    props = [p for _, p in problems if p.part == "properties"]
    if props:
        text = "Property values were not valid: [" + ",".join(p.detail() for p in props) + "]"
    else:
        text = problems[0][1].message
    indexes = sorted({i for i, _ in problems if i is not None})
    if indexes:
        text = f"Invalid input at {', '.join(f'inputs[{i}]' for i in indexes)}: {text}"
    errors = []
    for index, p in problems:
        where = p.part + (f".{p.name}" if p.name else "")
        detail: dict[str, Any] = {
            "message": p.message,
            "code": p.code,
            "in": where if index is None else f"inputs[{index}].{where}",
        }
        if p.name:
            detail["context"] = {"propertyName": [p.name]}
        errors.append(detail)
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        text,
        context={"inputs": [str(i) for i in indexes]} if indexes else None,
        errors=errors,
    )


# Rollup properties: a count of a kind of activity, or the time of the latest one.
ROLLUPS = {
    "hs_analytics_num_page_views": "count",
    "hs_analytics_num_visits": "count",
    "hs_analytics_last_visit_timestamp": "last",
    "hs_email_open": "count",
    "hs_email_click": "count",
    "hs_email_last_open_date": "last",
    "hs_email_last_click_date": "last",
}
_ROLLUP_KINDS = {
    KIND["page_view"]: (
        "hs_analytics_num_page_views", "hs_analytics_num_visits",
        "hs_analytics_last_visit_timestamp",
    ),
    KIND["email_open"]: ("hs_email_open", "hs_email_last_open_date"),
    KIND["email_click"]: ("hs_email_click", "hs_email_last_click_date"),
}  # fmt: skip


_DATE_STAGE = {prop: stage for stage, prop in LIFECYCLE_DATE_PROPERTY.items()}


def lifecycle_date(p: Person, stage: str, as_of_ms: int) -> int | None:
    """When the generated person entered `stage` before as_of (None if they did not).

    Subscribers were created as subscribers, everyone else as a lead; the later stages
    carry the dates the population drew. A future SQL date is the hidden outcome, never
    CRM data.
    """
    match stage:
        case "subscriber":
            return p.created_ms if p.stage == "subscriber" else None
        case "lead":
            return None if p.stage == "subscriber" else p.created_ms
        case "marketingqualifiedlead":
            return p.mql_at_ms
        case "salesqualifiedlead":
            return p.sql_at_ms if p.sql_at_ms is not None and p.sql_at_ms < as_of_ms else None
        case "customer":
            return p.customer_at_ms
    return None


def _count_rollups(pop: Population) -> dict[int, dict[str, int]]:
    """Per person: page views, sessions (one per day with a view), opens, clicks and the
    time of the latest of each, from the portal's activity log (sorted by time)."""
    out: dict[int, dict[str, int]] = {}
    days: set[tuple[int, int]] = set()
    log = pop.hubspot
    for person, kind, ts in zip(log.person, log.kind, log.ts, strict=True):
        names = _ROLLUP_KINDS.get(kind)
        if names is None:
            continue
        counts = out.setdefault(person, {})
        for name in names:
            if ROLLUPS[name] == "last":
                counts[name] = ts
            elif name == "hs_analytics_num_visits":
                if (person, ts // 86_400_000) not in days:
                    days.add((person, ts // 86_400_000))
                    counts[name] = counts.get(name, 0) + 1
            else:
                counts[name] = counts.get(name, 0) + 1
    return out


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
    # Owners deactivated in the portal (admin API): they can no longer own records.
    inactive_owners: set[int] = field(default_factory=set)
    # Seconds between a write and the moment search sees it, read at each search (the
    # gate points it at the limits, which can change at run time).
    search_lag: Callable[[], float] = field(default=lambda: 0.0)

    def __post_init__(self) -> None:
        self._rollups: dict[int, dict[str, int]] | None = None
        # The data's "now", which admin advances move (sandbox.simulation).
        self.clock = DataClock(self.population.spec.as_of_ms)
        # Contacts written within the search lag, as the search index still holds them,
        # and when each was last written.
        self._indexed: dict[int, HsContact] = {}
        self._written_ms: dict[int, int] = {}
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
        if name in ROLLUPS:
            return self._rollup(p.index, name)
        if name in _DATE_STAGE:
            return lifecycle_date(p, _DATE_STAGE[name], self.population.spec.as_of_ms)
        return None

    def _rollup(self, person: int, name: str) -> int | None:
        """A contact's activity rollup, counted once per portal from the activity log."""
        if self._rollups is None:
            self._rollups = _count_rollups(self.population)
        counts = self._rollups.get(person)
        if counts is None:
            return 0 if ROLLUPS[name] == "count" else None
        return counts.get(name, 0 if ROLLUPS[name] == "count" else None)

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
        """Live contacts in (lastmodifieddate, id) order, narrowed to `bounds`, as the
        search index holds them."""
        return [self.searchable(k) for k in self.modstamp_keys(bounds)]

    def id_candidates(self, bounds: tuple[int, int]) -> list[HsContact]:
        """Live contacts with lo <= id <= hi, in id order, as the search index holds them."""
        return [self.searchable(k) for k in self.id_keys(bounds)]

    # -- the search index lags writes ----------------------------------------------------

    def _lag_ms(self) -> int:
        return max(0, int(self.search_lag() * 1000))

    def settle_search(self) -> None:
        """Let the search index catch up with the writes older than the lag.

        HubSpot's search is eventually consistent: a write shows in search results a few
        seconds later, while reads by id see it at once. Until then search matches and
        renders the contact as it was before the write (`searchable`).
        """
        if not self._written_ms:
            return
        cutoff = wall_ms() - self._lag_ms()
        for cid, written in list(self._written_ms.items()):
            if written <= cutoff:
                before = self._indexed.pop(cid)
                del self._written_ms[cid]
                self.live.move(before.modified_ms, self.contacts[cid].modified_ms, cid)

    def searchable(self, cid: int) -> HsContact:
        """The contact as search sees it (its state before writes still within the lag)."""
        return self._indexed.get(cid) or self.contacts[cid]

    @contextmanager
    def writing(self, c: HsContact, settle: bool = True) -> Iterator[None]:
        """Wrap a change of `c`'s values: stamps `lastmodifieddate`, and keeps the previous
        state for search until the lag has passed. A bulk writer settles the search index
        once and passes `settle=False`."""
        if settle:
            self.settle_search()
        lagged = self._lag_ms() > 0 or c.id in self._indexed
        if lagged and c.id not in self._indexed:
            self._indexed[c.id] = c.copy()
        yield
        old = c.modified_ms
        c.modified_ms = now_ms()
        if lagged:
            self._written_ms[c.id] = wall_ms()  # the lag runs from when it was written
        else:
            self.live.move(old, c.modified_ms, c.id)

    def task_indexed(self, t: HsTask) -> bool:
        """True once search sees the task (tasks are only created through the API)."""
        return t.written_wall_ms <= wall_ms() - self._lag_ms()

    def owner_ids(self) -> set[int]:
        """Ids of the portal's active owners (the values `hubspot_owner_id` accepts)."""
        return {
            OWNER_ID_BASE + o.index
            for o in self.population.owners
            if OWNER_ID_BASE + o.index not in self.inactive_owners
        }

    def property_problems(
        self, props: dict[str, Any], schema: dict[str, PropertyDef]
    ) -> list[Problem]:
        """Why these values cannot be written: unknown or read-only properties, values
        outside an enumeration's options, non-numbers, owners that are not active."""
        problems = []
        for name, value in props.items():
            prop = schema.get(name)
            if prop is None:
                problems.append(
                    Problem("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name)
                )
            elif prop.read_only:
                problems.append(Problem("READ_ONLY_VALUE", f"{name} is a read only property", name))
            elif value in (None, ""):
                continue
            elif name == "hubspot_owner_id":
                if not str(value).isdigit() or int(str(value)) not in self.owner_ids():
                    problems.append(
                        Problem("INVALID_OWNER_ID", f"{value} is not a valid owner id", name)
                    )
            elif prop.options and str(value) not in prop.options:
                problems.append(
                    Problem(
                        "INVALID_OPTION",
                        f"{value} was not one of the allowed options: {list(prop.options)}",
                        name,
                    )
                )
            elif prop.type == "number":
                try:
                    float(str(value))
                except ValueError:
                    problems.append(
                        Problem("INVALID_FLOAT", f"{value} is not a valid number", name)
                    )
        return problems

    def check_properties(self, props: dict[str, Any], schema: dict[str, PropertyDef]) -> None:
        """Refuse the whole request (400) for unknown, read-only or invalid values."""
        problems = self.property_problems(props, schema)
        if problems:
            raise invalid_input([(None, p) for p in problems])

    def update_contact(self, c: HsContact, props: dict[str, Any]) -> None:
        """Apply a validated update. A backward lifecycle move is ignored, as HubSpot does
        (it answers 200 and keeps the stage): clear the stage first, then set it. A stage
        set stamps its "Became a ... Date" with the write's time, unless it has one."""
        new_stage = props.get("lifecyclestage")
        if new_stage:
            current = self.contact_value(c, "lifecyclestage")
            if current and LIFECYCLE_RANK.get(str(new_stage), 0) < LIFECYCLE_RANK.get(current, 0):
                props = {k: v for k, v in props.items() if k != "lifecyclestage"}
                new_stage = None
        if not props:
            return
        date_prop = LIFECYCLE_DATE_PROPERTY.get(str(new_stage)) if new_stage else None
        if date_prop is not None and self.contact_value(c, date_prop) is not None:
            date_prop = None  # the first entry into a stage is what it records
        with self.writing(c):
            if c.props is None:
                c.props = {}
            for name, value in props.items():
                c.props[name] = "" if value is None else str(value)
        if date_prop is not None:
            c.props[date_prop] = str(c.modified_ms)  # the write's own stamp

    # -- tasks ---------------------------------------------------------------------------

    def task_problems(
        self, props: dict[str, Any], associations: list[dict[str, Any]]
    ) -> tuple[list[Problem], list[int]]:
        """(why this task input is invalid, the contact ids it associates to)."""
        problems = self.property_problems(props, self.schema["tasks"])
        if not props.get("hs_timestamp"):
            problems.append(
                Problem("REQUIRED_PROPERTY", "hs_timestamp is required", "hs_timestamp")
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
                problems.append(
                    Problem(
                        "INVALID_ASSOCIATION_TYPE",
                        f"Invalid association types {types}: a task to contact "
                        f"association is HUBSPOT_DEFINED {TASK_TO_CONTACT}",
                        part="associations",
                    )
                )
                continue
            contact = self.find_contact(to_id)
            if contact is None:
                # Archived and merged-away contacts are not association targets either.
                problems.append(
                    Problem(
                        "INVALID_ASSOCIATION",
                        f"Association target contact {to_id} does not exist",
                        part="associations",
                    )
                )
                continue
            contact_ids.append(contact.id)
        return problems, contact_ids

    def create_task(self, props: dict[str, Any], associations: list[dict[str, Any]]) -> HsTask:
        """Validate and create one task (400 VALIDATION_ERROR when invalid)."""
        problems, contact_ids = self.task_problems(props, associations)
        if problems:
            raise invalid_input([(None, p) for p in problems])
        return self.add_task(props, contact_ids)

    def add_task(self, props: dict[str, Any], contact_ids: list[int]) -> HsTask:
        """Store a validated task associated to `contact_ids`."""
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

    def owners_json(self, archived: bool = False) -> list[dict[str, Any]]:
        """Active owners, or with `archived` the deactivated ones (as the owners API)."""
        stamp = hubspot_iso(self.population.spec.as_of_ms - 400 * 86_400_000)
        out = []
        for o in self.population.owners:
            oid = OWNER_ID_BASE + o.index
            if (oid in self.inactive_owners) != archived:
                continue
            out.append(
                {
                    "id": str(oid),
                    "email": o.email,
                    "firstName": o.first,
                    "lastName": o.last,
                    "userId": 9_000_000 + o.index,
                    "type": "PERSON",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "archived": archived,
                    "teams": [],
                }
            )
        return out
