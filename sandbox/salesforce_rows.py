"""The Salesforce org's rows: Leads and Contacts rendered from the population, and the
generated activities read straight from the population's arrays.

Rows are read through per-object getters (`value(row, field)`), so a query never builds
a dict for a row it does not return. A Task row is either an int (a position among
generated tasks) or an `SfTask` created through the API.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import catalog
from sandbox.clock import DAY_MS
from sandbox.ids import sf_id, sf_number
from sandbox.modindex import ModIndex
from sandbox.population import Person, Population
from sandbox.salesforce_schema import (
    EVENT_KIND,
    LEAD_STATUSES,
    MEMBER_STATUS,
    TASK_TYPES,
    lead_status,
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


class SfPerson:
    """A Lead or a Contact."""

    __slots__ = ("created_ms", "deleted", "id", "modified_ms", "person", "props", "sobject")

    def __init__(self, sobject: str, rid: str, person: Person) -> None:
        self.sobject, self.id, self.person = sobject, rid, person
        self.props: dict[str, Any] | None = None
        self.created_ms = person.created_ms
        self.modified_ms = person.modified_ms
        self.deleted = person.deleted


@dataclass
class SfTask:
    id: str
    fields: dict[str, Any]
    created_ms: int
    modified_ms: int


class SalesforceRows:
    """Rows of every object the org serves, and how to read a field of each."""

    def __init__(self, population: Population) -> None:
        self.population = population
        spec = population.spec
        self.people: dict[str, SfPerson] = {}
        self.who: dict[int, str] = {}  # person index -> Lead/Contact id
        self.index = {"Lead": ModIndex[str](), "Contact": ModIndex[str]()}
        counters = {"Lead": 0, "Contact": 0}
        for person in population.salesforce_people:
            # A deterministic share of people are Leads, the rest Contacts at Accounts.
            sobject = (
                "Lead" if (person.index * 2654435761) % 1000 < spec.lead_share * 1000 else "Contact"
            )
            rid = sf_id(sobject, counters[sobject])
            counters[sobject] += 1
            rec = SfPerson(sobject, rid, person)
            self.people[rid] = rec
            self.who[person.index] = rid
            self.index[sobject].add(rec.modified_ms, rid)
        log = population.salesforce
        self.task_pos, self.event_pos, self.member_pos = array("i"), array("i"), array("i")
        for pos, kind in enumerate(log.kind):
            if kind in TASK_TYPES:
                self.task_pos.append(pos)
            elif kind == EVENT_KIND:
                self.event_pos.append(pos)
            elif kind in MEMBER_STATUS:
                self.member_pos.append(pos)
        self.created_tasks: list[SfTask] = []
        self.task_by_id: dict[str, SfTask] = {}
        self.setup_ms = spec.as_of_ms - 500 * DAY_MS  # when "the org was set up"
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
        }

    # -- row access -----------------------------------------------------------------------

    def _person_value(self, rec: SfPerson, name: str) -> Any:
        if rec.props is not None and name in rec.props:
            return rec.props[name]
        p = rec.person
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
                return lead_status(p.stage, p.lead_status)
            case "OwnerId":
                return sf_id("User", p.owner)
            case "IsConverted":
                return p.stage == "customer"
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

    def _user_value(self, owner: Any, name: str) -> Any:
        return {
            "Id": sf_id("User", owner.index),
            "Name": f"{owner.first} {owner.last}",
            "FirstName": owner.first,
            "LastName": owner.last,
            "Email": owner.email,
            "IsActive": True,
            "SystemModstamp": self.setup_ms,
        }.get(name)

    def _status_value(self, i: int, name: str) -> Any:
        label, converted, default = LEAD_STATUSES[i]
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
                return self.who[person.index]
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
                return sf_id("Task", row)
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
        match name:
            case "Id":
                return sf_id("Event", row)
            case "Subject":
                return catalog.MEETING_TITLES[log.detail[pos]]
            case "Type":
                return "Meeting"
            case "ActivityDateTime" | "StartDateTime":
                return log.ts[pos]
        return self._activity_common(pos, name)

    def _member_value(self, row: int, name: str) -> Any:
        pos = self.member_pos[row]
        log = self.population.salesforce
        kind = log.kind[pos]
        who = self.who[log.person[pos]]
        match name:
            case "Id":
                return sf_id("CampaignMember", row)
            case "CampaignId":
                return sf_id("Campaign", log.detail[pos])  # webinars lead the campaign list
            case "LeadId":
                return who if who.startswith("00Q") else None
            case "ContactId":
                return who if who.startswith("003") else None
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
        if sobject in ("Lead", "Contact"):
            rec = self.people.get(rid) or self.people.get(_to18(sobject, rid) or "")
            return rec if rec is not None and rec.sobject == sobject else None
        if sobject == "Task" and rid in self.task_by_id:
            return self.task_by_id[rid]
        n = sf_number(sobject, rid)
        if n is None:
            return None
        sizes = {
            "Account": len(self.population.companies),
            "User": len(self.population.owners),
            "LeadStatus": len(LEAD_STATUSES),
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


def _to18(sobject: str, rid: str) -> str | None:
    n = sf_number(sobject, rid)
    return None if n is None else sf_id(sobject, n)
