"""The Salesforce org's query and write operations, over its rows.

No HTTP here: operations raise `SalesforceError` (or `soql.SoqlError`) with the status
and errorCode the real API answers with; the routes turn those into responses.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import catalog, soql
from sandbox.clock import DAY_MS, now_ms, parse_instant, salesforce_date, salesforce_iso
from sandbox.ids import sf_id
from sandbox.population import Population
from sandbox.salesforce_errors import SalesforceError, no_such_column, not_writable
from sandbox.salesforce_rows import SalesforceRows, SfPerson, SfTask
from sandbox.salesforce_schema import (
    DATA_PATH,
    LEAD_SOURCES,
    NOT_UPDATEABLE,
    RELATIONSHIPS,
    SETUP_OBJECTS,
    TASK_TYPES,
    OrgOptions,
    org_fields,
)

__all__ = ["PAGE_SIZE", "Org", "QueryResult", "SalesforceError"]

PAGE_SIZE = 2000
MAX_CURSORS = 200


def converted_lead() -> SalesforceError:
    """What Salesforce answers for a write to, or a reference to, a converted lead."""
    return SalesforceError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")


@dataclass
class QueryResult:
    sobject: str
    fields: list[str]
    rows: list[Any]


class Org(SalesforceRows):
    """A Salesforce org rendered from the population's Salesforce share."""

    def __init__(self, population: Population, options: OrgOptions | None = None) -> None:
        # (object, field) -> the value a record that never set the field has (Checkbox).
        self.defaults: dict[tuple[str, str], Any] = {}
        super().__init__(population, options)
        # The fields each object has in this org (Tooling API creates add to them).
        self.schema = org_fields(self.options.profile)
        # Restricted picklists: a write of another value is refused.
        self.picklists = {("Lead", "Status"): {label for label, _, _ in self.statuses}}
        # What describe lists for each picklist (Lead Source takes other values too).
        self.picklist_values: dict[tuple[str, str], set[str]] = {
            **self.picklists,
            ("Lead", "LeadSource"): set(LEAD_SOURCES),
            ("Contact", "LeadSource"): set(LEAD_SOURCES),
        }
        self.cursors: OrderedDict[str, QueryResult] = OrderedDict()
        self._cursor_seq = 0

    # -- schema as the integration user sees it ----------------------------------------------

    def sobject_name(self, name: str) -> str | None:
        """The object's name as the org spells it (names are case-insensitive)."""
        return next((k for k in self.schema if k.casefold() == name.casefold()), None)

    def visible_fields(self, sobject: str) -> dict[str, str]:
        """Name -> type of the fields the user can read, in describe order."""
        readable = self.access.readable
        return {n: t for n, t in self.schema[sobject].items() if readable(sobject, n)}

    def editable(self, sobject: str, name: str) -> bool:
        return name not in NOT_UPDATEABLE and self.access.editable(sobject, name)

    def add_field(self, sobject: str, name: str, ftype: str, default: Any = None) -> None:
        """A new custom field: it exists at once, but the user has no access to it yet."""
        self.schema[sobject][name] = ftype
        if default is not None:
            self.defaults[(sobject, name)] = default
        self.access.restrict(sobject, name)

    def value(self, sobject: str, row: Any, name: str) -> Any:
        found = super().value(sobject, row, name)
        if found is None and self.defaults:
            return self.defaults.get((sobject, name))
        return found

    # -- query ----------------------------------------------------------------------------

    def resolver(self, sobject: str) -> soql.Resolver:
        """Field name (any case, or Relationship.Field) -> (type, getter), over the fields
        the user can read."""
        fields = {k.casefold(): k for k in self.visible_fields(sobject)}
        rels = {k.casefold(): v for k, v in RELATIONSHIPS.get(sobject, {}).items()}

        def resolve(name: str) -> tuple[str, Callable[[Any], Any]]:
            if "." in name:
                rel_name, _, target_field = name.partition(".")
                rel = rels.get(rel_name.casefold())
                if rel is None:
                    raise _no_column(name, sobject, relationship=True)
                target, fk = rel
                t_fields = {k.casefold(): k for k in self.visible_fields(target)}
                canonical = t_fields.get(target_field.casefold())
                if canonical is None:
                    raise _no_column(target_field, target)

                t_field: str = canonical

                def get_rel(row: Any) -> Any:
                    related = self.lookup(target, self.value(sobject, row, fk))
                    return None if related is None else self.value(target, related, t_field)

                return self.schema[target][canonical], get_rel
            canonical = fields.get(name.casefold())
            if canonical is None:
                raise _no_column(name, sobject)
            return self.schema[sobject][canonical], lambda row: self.value(sobject, row, canonical)

        return resolve

    def _scan(self, sobject: str, where: Any) -> list[Any]:
        """Candidate rows in (SystemModstamp, Id) order, narrowed with what the WHERE
        clause pins down: modstamp bounds, Id or WhoId values, handoff-task terms.
        The full predicate still runs on every candidate."""
        bounds = soql.bounds(where, "SystemModstamp")
        lo, hi = bounds if bounds else (-(2**62), 2**62)
        ids = soql.key_values(where, "Id")
        if ids is not None:
            rows = (self.lookup(sobject, str(i)) for i in ids)
            found = {self.value(sobject, r, "Id"): r for r in rows if r is not None}
            return sorted(found.values(), key=self._order_key(sobject))
        if sobject in ("Lead", "Contact"):
            return [self.people[k] for k in self.index[sobject].keys_between(lo, hi)]
        if sobject in ("Task", "Event", "CampaignMember"):
            return self._scan_activities(sobject, where, lo, hi)
        if sobject == "Account":
            return list(self.population.companies)
        if sobject == "User":
            return self.users()
        if sobject == "LeadStatus":
            return list(range(len(self.statuses)))
        if sobject in SETUP_OBJECTS:
            return self.access.rows(sobject)
        return list(range(len(catalog.CAMPAIGNS)))

    def _order_key(self, sobject: str) -> Callable[[Any], tuple[Any, Any]]:
        return lambda r: (self.value(sobject, r, "SystemModstamp"), self.value(sobject, r, "Id"))

    def _scan_activities(self, sobject: str, where: Any, lo: int, hi: int) -> list[Any]:
        # In (SystemModstamp, Id) order: an admin advance completes tasks, moving stamps.
        created = sorted(
            (t for t in self.created_tasks if lo <= t.modified_ms <= hi),
            key=self._order_key("Task"),
        )
        if sobject == "Task" and _handoff_only(where):
            return created  # generated activity Tasks never match a handoff lookup
        positions = {
            "Task": self.task_pos,
            "Event": self.event_pos,
            "CampaignMember": self.member_pos,
        }[sobject]
        log = self.population.salesforce
        view = _TimeView(positions, log.ts)
        rows: list[Any] = list(range(bisect_left(view, lo), bisect_right(view, hi)))
        who_field = {"Task": "WhoId", "Event": "WhoId"}.get(sobject)
        who = soql.key_values(where, who_field) if who_field else None
        if who is not None:
            # The people whose activities name one of these records (a converted lead's
            # activities name its contact).
            people = {
                index
                for w in who
                if (rec := self.lookup("Lead", str(w)) or self.lookup("Contact", str(w)))
                for index in self.by_parent.get(rec.id, ())
            }
            person, pos = log.person, positions
            rows = [r for r in rows if person[pos[r]] in people]
        if sobject == "Task" and created:
            # Merged, not appended: keeps (SystemModstamp, Id) order even when the
            # clock is behind the population's as_of.
            rows = list(heapq.merge(rows, created, key=self._order_key("Task")))
        return rows

    def query(self, text: str, include_deleted: bool) -> QueryResult:
        """Run a SOQL query; rows are kept so that pages can be served from a cursor."""
        q = soql.parse(text)
        sobject = self.sobject_name(q.sobject)
        if sobject is None:
            raise soql.SoqlError(
                "INVALID_TYPE",
                f"sObject type '{q.sobject}' is not supported. "
                "If you are attempting to use a custom object, be sure to "
                "append the '__c' after the entity name.",
            )
        resolve = self.resolver(sobject)
        for name in q.fields:
            resolve(name)  # unknown fields are INVALID_FIELD even if no row matches
        pred = soql.compile_where(q.where, resolve)
        candidates = self._scan(sobject, q.where)
        if "IsDeleted" in self.schema[sobject] and not include_deleted:
            deleted = resolve("IsDeleted")[1]
            rows = [r for r in candidates if not deleted(r) and pred(r)]
        else:
            rows = [r for r in candidates if pred(r)]
        if q.order_by and not _scan_order(q.order_by):
            rows = soql.sort_rows(rows, q.order_by, resolve)
        rows = rows[q.offset :]
        if q.limit is not None:
            rows = rows[: q.limit]
        return QueryResult(sobject, q.fields, rows)

    def open_cursor(self, result: QueryResult) -> str:
        """Keep a result for nextRecordsUrl paging; the oldest cursors expire first."""
        self._cursor_seq += 1
        locator = "01g" + sf_id("Task", self._cursor_seq)[3:15]
        self.cursors[locator] = result
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return locator

    def render(self, sobject: str, row: Any, fields: list[str]) -> dict[str, Any]:
        """One record as the REST API returns it (attributes first, fields in SELECT order)."""
        resolve_fields = {k.casefold(): k for k in self.schema[sobject]}
        rid = self.value(sobject, row, "Id")
        out: dict[str, Any] = {
            "attributes": {"type": sobject, "url": f"{DATA_PATH}/sobjects/{sobject}/{rid}"}
        }
        for name in fields:
            if "." in name:
                rel_name, _, tfield = name.partition(".")
                rel_key, (target, fk) = next(
                    (k, v)
                    for k, v in RELATIONSHIPS[sobject].items()
                    if k.casefold() == rel_name.casefold()
                )
                related = self.lookup(target, self.value(sobject, row, fk))
                if related is None:
                    out[rel_key] = None
                    continue
                nested = out.get(rel_key)
                if nested is None:
                    tid = self.value(target, related, "Id")
                    nested = out[rel_key] = {
                        "attributes": {
                            "type": target,
                            "url": f"{DATA_PATH}/sobjects/{target}/{tid}",
                        }
                    }
                schema = self.schema[target]
                canonical = next(k for k in schema if k.casefold() == tfield.casefold())
                nested[canonical] = _json_value(
                    schema[canonical], self.value(target, related, canonical)
                )
                continue
            canonical = resolve_fields[name.casefold()]
            out[canonical] = _json_value(
                self.schema[sobject][canonical], self.value(sobject, row, canonical)
            )
        return out

    # -- writes ---------------------------------------------------------------------------

    def check_fields(self, sobject: str, values: dict[str, Any], creating: bool) -> dict[str, Any]:
        """Validated, typed field values for a write, or SalesforceError."""
        fields = {k.casefold(): k for k in self.schema[sobject]}
        out: dict[str, Any] = {}
        for name, raw in values.items():
            if name in ("attributes", "id", "Id"):
                continue
            canonical = fields.get(name.casefold())
            if canonical is None or not self.access.readable(sobject, canonical):
                raise no_such_column(name, sobject)
            if not self.editable(sobject, canonical):
                raise not_writable(canonical, creating)
            out[canonical] = self._typed_input(sobject, canonical, raw)
        return out

    def prepare_update(
        self, sobject: str | None, rid: str | None, values: dict[str, Any]
    ) -> Callable[[], None]:
        """Validate one update; return the closure that applies it (for allOrNone)."""
        if not rid:
            raise SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
        guessed = next(
            (o for o in ("Lead", "Contact", "Task") if rid.startswith(sf_id(o, 0)[:3])), None
        )
        sobject = sobject or guessed
        if sobject not in ("Lead", "Contact") or guessed != sobject:
            raise SalesforceError(
                400,
                "MALFORMED_ID",
                f"{sobject or 'record'} ID: id value of incorrect type: {rid}",
                ["Id"],
            )
        rec = self.lookup(sobject, rid)
        if rec is None:
            raise SalesforceError(404, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if rec.deleted:
            raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
        if rec.conversion is not None:
            raise converted_lead()
        typed = self.check_fields(sobject, values, creating=False)

        def apply() -> None:
            if rec.props is None:
                rec.props = {}
            rec.props.update(typed)
            self.touch(rec)

        return apply

    def touch(self, rec: SfPerson) -> None:
        """Stamp a change on a Lead or Contact (SystemModstamp moves in the index)."""
        old = rec.modified_ms
        rec.modified_ms = now_ms()
        self.index[rec.sobject].move(old, rec.modified_ms, rec.id)

    def prepare_create(self, sobject: str, values: dict[str, Any]) -> Callable[[], str]:
        """Validate one create of an object the API creates here; return its closure."""
        if sobject == "Task":
            return self.prepare_task(values)
        if sobject in SETUP_OBJECTS:
            return self.access.prepare_create(sobject, values, self.schema_of)
        raise SalesforceError(
            400, "INVALID_TYPE", f"sObject type '{sobject}' is not creatable in this org"
        )

    def schema_of(self, sobject: str) -> dict[str, str]:
        """The fields of an object named in any case ({} for no such object)."""
        name = self.sobject_name(sobject)
        return {} if name is None else self.schema[name]

    def prepare_task(self, values: dict[str, Any]) -> Callable[[], str]:
        """Validate one Task create; return the closure that creates it (-> new id)."""
        typed = self.check_fields("Task", values, creating=True)
        who = typed.get("WhoId")
        lead = self.lookup("Lead", who)
        if who is not None and lead is None and self.lookup("Contact", who) is None:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"Name ID: id value of incorrect type: {who}",
                ["WhoId"],
            )
        if lead is not None and lead.conversion is not None:
            raise converted_lead()
        typed.setdefault("Status", "Not Started")
        typed.setdefault("Priority", "Normal")
        typed.setdefault("TaskSubtype", "Task")

        def create() -> str:
            stamp = now_ms()
            task = SfTask(
                sf_id("Task", len(self.task_pos) + len(self.created_tasks)), typed, stamp, stamp
            )
            self.created_tasks.append(task)
            self.task_by_id[task.id] = task
            return task.id

        return create

    def convert(
        self,
        lead_id: str,
        date_ms: int | None = None,
        contacts_by_email: dict[str, SfPerson] | None = None,
    ) -> str:
        """Convert a live lead as a user would: into the live Contact with its email, or a
        new one; its activities move to the contact. Returns the contact's id.
        `ConvertedDate` is the day of `date_ms` (default: today). A caller converting many
        leads passes the live Contacts by casefolded email (kept up to date here)."""
        lead = self.lookup("Lead", lead_id)
        if lead is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        if lead.deleted:
            raise SalesforceError(400, "ENTITY_IS_DELETED", "entity is deleted")
        if lead.conversion is not None:
            raise converted_lead()
        email = self.value("Lead", lead, "Email")
        if contacts_by_email is None:
            contact = self._contact_with_email(email)
        else:
            contact = contacts_by_email.get(email.casefold()) if isinstance(email, str) else None
        if contact is None:
            contact = SfPerson("Contact", sf_id("Contact", self.counters["Contact"]), lead.person)
            contact.twin = lead.twin
            # The lead's values on fields the Contact has too carry over.
            shared = self.schema["Contact"].keys() - NOT_UPDATEABLE
            contact.props = {k: v for k, v in (lead.props or {}).items() if k in shared} or None
            contact.created_ms = contact.modified_ms = now_ms()
            self.add_person(contact)
            if contacts_by_email is not None and isinstance(email, str) and email:
                contacts_by_email[email.casefold()] = contact
        day = now_ms() if date_ms is None else date_ms
        self.link_conversion(lead, contact, day // DAY_MS * DAY_MS)
        self.touch(lead)
        self.touch(contact)
        return contact.id

    def contacts_by_email(self) -> dict[str, SfPerson]:
        """Live Contacts by casefolded email (the first of each, as the search finds)."""
        out: dict[str, SfPerson] = {}
        for rec in self.people.values():
            if rec.sobject == "Contact" and not rec.deleted:
                value = self.value("Contact", rec, "Email")
                if isinstance(value, str) and value:
                    out.setdefault(value.casefold(), rec)
        return out

    def _contact_with_email(self, email: Any) -> SfPerson | None:
        if not isinstance(email, str) or not email:
            return None
        wanted = email.casefold()
        for rec in self.people.values():
            if rec.sobject == "Contact" and not rec.deleted:
                value = self.value("Contact", rec, "Email")
                if isinstance(value, str) and value.casefold() == wanted:
                    return rec
        return None

    def _typed_input(self, sobject: str, name: str, raw: Any) -> Any:
        ftype = self.schema[sobject][name]
        if raw is None:
            return None
        try:
            if ftype == "double":
                return float(raw)
            if ftype == "int":
                return int(raw)
            if ftype == "boolean":
                if not isinstance(raw, bool):
                    raise ValueError(raw)
                return raw
            if ftype in ("date", "datetime"):
                ms = parse_instant(str(raw))
                return ms // DAY_MS * DAY_MS if ftype == "date" else ms
        except (TypeError, ValueError) as exc:
            raise SalesforceError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {ftype} from value {raw!r} for field {name}",
                [name],
            ) from exc
        allowed = self.picklists.get((sobject, name))
        if allowed is not None and raw not in allowed:
            raise SalesforceError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{name}: bad value for restricted picklist field: {raw}",
                [name],
            )
        return str(raw)

    def tasks_for(self, who: str) -> list[SfTask]:
        return [t for t in self.created_tasks if t.fields.get("WhoId") == who]


_GENERATED_TASK_TYPES = {t.casefold() for t in TASK_TYPES.values()}


def _handoff_only(where: Any) -> bool:
    """True if the WHERE clause can only match Tasks created through the API: it pins
    Handoff_Key__c, or a Type no generated activity has (e.g. 'MQL Handoff')."""
    for c in soql.conjuncts(where):
        if not isinstance(c, soql.Cond) or c.op not in ("=", "IN", "LIKE"):
            continue
        values = c.value if c.op == "IN" else [c.value]
        if c.field.casefold() == "handoff_key__c" and None not in values:
            return True
        if (
            c.field.casefold() == "type"
            and c.op != "LIKE"
            and all(
                isinstance(v, str) and v.casefold() not in _GENERATED_TASK_TYPES for v in values
            )
        ):
            return True
    return False


def _scan_order(order_by: list[tuple[str, bool, bool]]) -> bool:
    """True if ORDER BY asks for the order scans already produce: (SystemModstamp, Id)
    ascending. Skipping that sort keeps an incremental page cheap at 100,000 rows."""
    names = [(name.casefold(), desc) for name, desc, _ in order_by]
    return names in ([("systemmodstamp", False)], [("systemmodstamp", False), ("id", False)])


class _TimeView:
    """Times of a position array, indexable for bisect without copying."""

    def __init__(self, positions: array[int], ts: array[int]) -> None:
        self.positions, self.ts = positions, ts

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> int:
        return self.ts[self.positions[i]]


def _no_column(name: str, sobject: str, relationship: bool = False) -> soql.SoqlError:
    if relationship:
        return soql.SoqlError(
            "INVALID_FIELD",
            f"Didn't understand relationship '{name.split('.')[0]}' "
            f"in field path. If you are attempting to use a custom "
            f"relationship, be sure to append the '__r' after the custom "
            f"relationship name.",
        )
    return soql.SoqlError(
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{sobject}'. If "
        "you are attempting to use a custom field, be sure to append the "
        "'__c' after the custom field name. Please reference your WSDL or "
        "the describe call for the appropriate names.",
    )


def _json_value(ftype: str, value: Any) -> Any:
    if value is None:
        return None
    if ftype == "datetime":
        return salesforce_iso(value)
    if ftype == "date":
        return salesforce_date(value)
    return value
