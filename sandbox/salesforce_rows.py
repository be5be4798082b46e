"""The Salesforce org's rows: Leads and Contacts rendered from the population, and the
generated activities read straight from the population's arrays.

Rows are read through per-object getters (`value(row, field)`), so a query never builds
a dict for a row it does not return. A Task row is either an int (a position among
generated tasks) or an `SfTask` created through the API.

Converted leads: the live leads whose person became SQL before the data's as_of (all of
them by default; `converted_share` keeps a seeded share), converted on their SQL day.
Conversion turns a lead into a Contact; here it links the lead to an existing Contact
row, whose person the lead shows (same name, email, company), so that every person
keeps exactly one row of their own. The lead's activities then belong to that Contact
(WhoId), and its campaign memberships name it (ContactId), as conversion does.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import catalog
from sandbox.auth import DEFAULT_SALESFORCE_USERNAME, SALESFORCE_USER_ID, SALESFORCE_USER_NUMBER
from sandbox.clock import DAY_MS
from sandbox.ids import sf_id, sf_number
from sandbox.modindex import ModIndex
from sandbox.population import Owner, Person, Population
from sandbox.salesforce_access import FieldAccess
from sandbox.salesforce_schema import (
    EVENT_KIND,
    LEAD_SOURCES,
    MEMBER_STATUS,
    SETUP_OBJECTS,
    TASK_TYPES,
    OrgOptions,
    lead_status,
    lead_statuses,
    task_fields,
)

INDUSTRY = {
    "COMPUTER_SOFTWARE": "Technology",
    "INFORMATION_TECHNOLOGY_AND_SERVICES": "Consulting",
    "MARKETING_AND_ADVERTISING": "Media",
    "FINANCIAL_SERVICES": "Finance",
    "WHOLESALE": "Wholesale",
    "REAL_ESTATE": "Real Estate",
    "HOSPITAL_HEALTH_CARE": "Healthcare",
    "RETAIL": "Retail",
    "EDUCATION_MANAGEMENT": "Education",
    "LOGISTICS_AND_SUPPLY_CHAIN": "Transportation",
}


@dataclass(frozen=True)
class Conversion:
    """What converting a lead left on it."""

    contact_id: str
    account_id: str | None
    date_ms: int  # ConvertedDate: midnight UTC of the day


class SfPerson:
    """A Lead or a Contact. A converted lead shows its contact's person (`twin`)."""

    __slots__ = (
        "conversion",
        "created_ms",
        "deleted",
        "id",
        "modified_ms",
        "person",
        "props",
        "sobject",
        "twin",
    )

    def __init__(self, sobject: str, rid: str, person: Person) -> None:
        self.sobject, self.id, self.person = sobject, rid, person
        self.props: dict[str, Any] | None = None
        self.created_ms = person.created_ms
        self.modified_ms = person.modified_ms
        self.deleted = person.deleted
        self.twin: Person | None = None
        self.conversion: Conversion | None = None


@dataclass
class SfTask:
    id: str
    fields: dict[str, Any]
    created_ms: int
    modified_ms: int


class SalesforceRows:
    """Rows of every object the org serves, and how to read a field of each."""

    # Task rows an admin advance generated (sandbox.simulation), numbered after the Tasks
    # created through the API by then, so that ids stay unique: (first row, its number)
    # per advance. Rows before the first are numbered as they are.
    task_batches: tuple[tuple[int, int], ...] = ()

    def __init__(self, population: Population, options: OrgOptions | None = None) -> None:
        self.population = population
        self.options = options or OrgOptions()
        spec = population.spec
        self.statuses = lead_statuses(self.options.profile)
        self.converted_status = next(label for label, conv, _ in self.statuses if conv)
        self.people: dict[str, SfPerson] = {}
        self.who: dict[int, str] = {}  # person index -> their own Lead/Contact id
        # person index -> the WhoId of their activities (their contact once converted)
        self.parent: dict[int, str] = {}
        self.by_parent: dict[str, list[int]] = {}  # WhoId -> person indexes
        self.index = {"Lead": ModIndex[str](), "Contact": ModIndex[str]()}
        self.counters = {"Lead": 0, "Contact": 0}
        for person in population.salesforce_people:
            # A deterministic share of people are Leads, the rest Contacts at Accounts.
            sobject = (
                "Lead" if (person.index * 2654435761) % 1000 < spec.lead_share * 1000 else "Contact"
            )
            self.add_person(SfPerson(sobject, sf_id(sobject, self.counters[sobject]), person))
        log = population.salesforce
        self.task_pos, self.event_pos, self.member_pos = array("i"), array("i"), array("i")
        for pos, kind in enumerate(log.kind):
            if kind in TASK_TYPES:
                self.task_pos.append(pos)
            elif kind == EVENT_KIND:
                self.event_pos.append(pos)
            elif kind in MEMBER_STATUS:
                self.member_pos.append(pos)
        rng = random.Random(f"all-day-events:{spec.seed}")
        share = self.options.all_day_share
        self.all_day = bytearray(rng.random() < share for _ in range(len(self.event_pos)))
        self.created_tasks: list[SfTask] = []
        self.task_by_id: dict[str, SfTask] = {}
        self.setup_ms = spec.as_of_ms - 500 * DAY_MS  # when "the org was set up"
        self.access = FieldAccess(SALESFORCE_USER_ID, self.options.hidden_fields, self._is_user)
        self._values: dict[str, Callable[[Any, str], Any]] = {
            "Lead": self._person_value,
            "Contact": self._person_value,
            "Account": self._account_value,
            "User": self._user_value,
            "LeadStatus": self._status_value,
            "Campaign": self._campaign_value,
            "Task": self._task_value,
            "Event": self._event_value,
            "CampaignMember": self._member_value,
            **{obj: _setup_value for obj in SETUP_OBJECTS},
        }
        self._convert_seeded()

    # -- people and conversion --------------------------------------------------------------

    def task_number(self, row: int) -> int:
        """The number in a generated Task row's id (see `task_batches`)."""
        for first, number in reversed(self.task_batches):
            if row >= first:
                return number + row - first
        return row

    def task_row(self, number: int) -> int | None:
        """The generated Task row whose id has this number, or None."""
        ends = [first for first, _ in self.task_batches[1:]] + [len(self.task_pos)]
        if not self.task_batches:
            return number if 0 <= number < len(self.task_pos) else None
        if 0 <= number < self.task_batches[0][0]:
            return number
        for (first, start), end in zip(self.task_batches, ends, strict=True):
            if start <= number < start + end - first:
                return first + number - start
        return None

    def add_person(self, rec: SfPerson) -> None:
        """A new Lead or Contact row (the person's own row if they have none yet)."""
        self.counters[rec.sobject] += 1
        self.people[rec.id] = rec
        index = rec.person.index
        if index not in self.who:
            self.who[index] = self.parent[index] = rec.id
            self.by_parent.setdefault(rec.id, []).append(index)
        self.index[rec.sobject].add(rec.modified_ms, rec.id)

    def _convert_seeded(self) -> None:
        """Convert the live leads whose person became SQL before as_of (a seeded
        `converted_share` of them), each on its SQL day into a live Contact of its own.

        Sales converts a lead when it accepts it, so the conversions are the history a
        backtest learns from: who converted follows the buying episodes the future does.
        """
        share = self.options.converted_share
        as_of = self.population.spec.as_of_ms
        rng = random.Random(f"converted-leads:{self.population.spec.seed}")
        pool = [r for r in self.people.values() if r.sobject == "Contact" and not r.deleted]
        for rec in list(self.people.values()):
            sql_at = rec.person.sql_at_ms
            if rec.sobject != "Lead" or rec.deleted or sql_at is None or sql_at >= as_of:
                continue
            if rng.random() >= share or not pool:
                continue
            contact = pool.pop(rng.randrange(len(pool)))
            rec.twin = contact.person
            self.link_conversion(rec, contact, sql_at // DAY_MS * DAY_MS)

    def link_conversion(self, lead: SfPerson, contact: SfPerson, date_ms: int) -> None:
        """Mark `lead` converted into `contact`: its activities move to the contact."""
        lead.conversion = Conversion(
            contact.id, self.value("Contact", contact, "AccountId"), date_ms
        )
        index = lead.person.index
        old = self.parent[index]
        self.by_parent[old].remove(index)
        self.by_parent.setdefault(contact.id, []).append(index)
        self.parent[index] = contact.id

    def _is_user(self, user_id: str) -> bool:
        return self.lookup("User", user_id) is not None

    # -- row access -----------------------------------------------------------------------

    def _person_value(self, rec: SfPerson, name: str) -> Any:
        conversion = rec.conversion
        if conversion is not None and name in _CONVERSION_FIELDS:
            # Set by conversion, never by a write.
            return {
                "Status": self.converted_status,
                "IsConverted": True,
                "ConvertedContactId": conversion.contact_id,
                "ConvertedAccountId": conversion.account_id,
                "ConvertedDate": conversion.date_ms,
            }[name]
        if rec.props is not None and name in rec.props:
            return rec.props[name]
        p = rec.twin or rec.person
        match name:
            case "Id":
                return rec.id
            case "Email":
                return p.email
            case "FirstName":
                return p.first
            case "LastName":
                return p.last
            case "Title":
                return p.title
            case "Company":
                return p.company.name
            case "NumberOfEmployees":
                return p.company.size
            case "Industry":
                return INDUSTRY.get(p.company.industry)
            case "Country" | "MailingCountry":
                return p.company.country
            case "AccountId":
                return sf_id("Account", p.company.index)
            case "Status":
                return lead_status(p.stage, p.lead_status, self.options.profile)
            case "OwnerId":
                return sf_id("User", p.owner)
            case "IsConverted":
                return False
            case "LeadSource":
                return _lead_source(p)
            case "CreatedDate":
                return rec.created_ms
            case "LastModifiedDate" | "SystemModstamp":
                return rec.modified_ms
            case "IsDeleted":
                return rec.deleted
            case "Business_License__c":
                return p.business_license
            case "Real_Estate_License__c":
                return p.real_estate_license
        return None

    def _account_value(self, company: Any, name: str) -> Any:
        match name:
            case "Id":
                return sf_id("Account", company.index)
            case "Name":
                return company.name
            case "NumberOfEmployees":
                return company.size
            case "Industry":
                return INDUSTRY.get(company.industry)
            case "BillingCountry":
                return company.country
            case "CreatedDate" | "LastModifiedDate" | "SystemModstamp":
                return self.setup_ms
            case "IsDeleted":
                return False
        return None

    def _user_value(self, owner: Owner, name: str) -> Any:
        return {
            "Id": sf_id("User", owner.index),
            "Name": f"{owner.first} {owner.last}",
            "FirstName": owner.first,
            "LastName": owner.last,
            "Email": owner.email,
            "Username": owner.email,
            "IsActive": True,
            "SystemModstamp": self.setup_ms,
        }.get(name)

    def _status_value(self, i: int, name: str) -> Any:
        label, converted, default = self.statuses[i]
        return {
            "Id": sf_id("LeadStatus", i),
            "MasterLabel": label,
            "ApiName": label,
            "SortOrder": i + 1,
            "IsConverted": converted,
            "IsDefault": default,
            "SystemModstamp": self.setup_ms,
        }.get(name)

    def _campaign_value(self, i: int, name: str) -> Any:
        cname, ctype = catalog.CAMPAIGNS[i]
        return {
            "Id": sf_id("Campaign", i),
            "Name": cname,
            "Type": ctype,
            "IsActive": True,
            "CreatedDate": self.setup_ms,
            "LastModifiedDate": self.setup_ms,
            "SystemModstamp": self.setup_ms,
            "IsDeleted": False,
        }.get(name)

    def _activity_common(self, pos: int, name: str) -> Any:
        log = self.population.salesforce
        person = self.population.people[log.person[pos]]
        match name:
            case "WhoId":
                return self.parent[person.index]
            case "OwnerId":
                return sf_id("User", person.owner)
            case "CreatedDate" | "LastModifiedDate" | "SystemModstamp":
                return log.ts[pos]
            case "IsDeleted":
                return person.deleted
        return None

    def _task_value(self, row: int | SfTask, name: str) -> Any:
        if isinstance(row, SfTask):
            match name:
                case "Id":
                    return row.id
                case "CreatedDate":
                    return row.created_ms
                case "LastModifiedDate" | "SystemModstamp":
                    return row.modified_ms
                case "IsDeleted":
                    return False
            return row.fields.get(name)
        pos = self.task_pos[row]
        log = self.population.salesforce
        kind = log.kind[pos]
        match name:
            case "Id":
                return sf_id("Task", self.task_number(row))
            case "Type":
                return TASK_TYPES[kind]
            case "ActivityDate":
                return log.ts[pos] // DAY_MS * DAY_MS
            case "Status":
                return "Completed"
            case "Priority":
                return "Normal"
            case "Description":
                return None
        if name in (
            "WhoId",
            "OwnerId",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
            "IsDeleted",
        ):
            return self._activity_common(pos, name)
        return task_fields(kind, log.detail[pos]).get(name)

    def _event_value(self, row: int, name: str) -> Any:
        pos = self.event_pos[row]
        log = self.population.salesforce
        ts = log.ts[pos]
        # An all-day event has a date, no time: ActivityDateTime is empty, the day is in
        # ActivityDate and it lasts the whole day.
        all_day = bool(self.all_day[row])
        match name:
            case "Id":
                return sf_id("Event", row)
            case "Subject":
                return catalog.MEETING_TITLES[log.detail[pos]]
            case "Type":
                return "Meeting"
            case "IsAllDayEvent":
                return all_day
            case "ActivityDateTime":
                return None if all_day else ts
            case "ActivityDate":
                return ts // DAY_MS * DAY_MS
            case "StartDateTime":
                return ts // DAY_MS * DAY_MS if all_day else ts
            case "DurationInMinutes":
                return 1440 if all_day else _MEETING_MINUTES[log.detail[pos]]
        return self._activity_common(pos, name)

    def _member_value(self, row: int, name: str) -> Any:
        pos = self.member_pos[row]
        log = self.population.salesforce
        kind = log.kind[pos]
        person = log.person[pos]
        match name:
            case "Id":
                return sf_id("CampaignMember", row)
            case "CampaignId":
                return sf_id("Campaign", log.detail[pos])  # webinars lead the campaign list
            case "LeadId":
                # A converted lead's membership keeps the lead and gains the contact.
                own = self.who[person]
                return own if own.startswith("00Q") else None
            case "ContactId":
                parent = self.parent[person]
                return parent if parent.startswith("003") else None
            case "Status":
                return MEMBER_STATUS[kind]
            case "HasResponded":
                return True
            case "FirstRespondedDate":
                return log.ts[pos] // DAY_MS * DAY_MS
        return self._activity_common(pos, name)

    def value(self, sobject: str, row: Any, name: str) -> Any:
        return self._values[sobject](row, name)

    def lookup(self, sobject: str, rid: str | None) -> Any:
        """The row with this id (deleted included), or None."""
        if not rid:
            return None
        if sobject in SETUP_OBJECTS:
            return self.access.lookup(sobject, rid)
        if sobject in ("Lead", "Contact"):
            rec = self.people.get(rid) or self.people.get(_to18(sobject, rid) or "")
            return rec if rec is not None and rec.sobject == sobject else None
        if sobject == "Task" and rid in self.task_by_id:
            return self.task_by_id[rid]
        n = sf_number(sobject, rid)
        if n is None:
            return None
        if sobject == "User" and n == INTEGRATION_USER.index:
            return INTEGRATION_USER
        if sobject == "Task":
            return self.task_row(n)
        sizes = {
            "Account": len(self.population.companies),
            "User": len(self.population.owners),
            "LeadStatus": len(self.statuses),
            "Campaign": len(catalog.CAMPAIGNS),
            "Task": len(self.task_pos),
            "Event": len(self.event_pos),
            "CampaignMember": len(self.member_pos),
        }
        if not 0 <= n < sizes[sobject]:
            return None
        if sobject == "Account":
            return self.population.companies[n]
        if sobject == "User":
            return self.population.owners[n]
        return n

    def users(self) -> list[Owner]:
        """Every User row: the owners, then the integration user."""
        return [*self.population.owners, INTEGRATION_USER]


def _to18(sobject: str, rid: str) -> str | None:
    n = sf_number(sobject, rid)
    return None if n is None else sf_id(sobject, n)


# The user sessions act as: a User of the org like the owners (its username is its email).
INTEGRATION_USER = Owner(SALESFORCE_USER_NUMBER, "Integration", "User", DEFAULT_SALESFORCE_USERNAME)
_CONVERSION_FIELDS = frozenset(
    {"Status", "IsConverted", "ConvertedContactId", "ConvertedAccountId", "ConvertedDate"}
)
# How long each kind of meeting (catalog.MEETING_TITLES) takes.
_MEETING_MINUTES = (30, 45, 60)


def _setup_value(row: dict[str, Any], name: str) -> Any:
    return row.get(name)


def _lead_source(person: Person) -> str:
    """Where a person came from: mostly the web, as inbound leads do (stable per person)."""
    bucket = (person.index * 2246822519) % 100
    cut = (60, 70, 85, 95)  # Web, Phone Inquiry, Partner Referral, Purchased List, Other
    return LEAD_SOURCES[sum(bucket >= c for c in cut)]
