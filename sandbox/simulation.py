"""Simulated time: an admin advance moves the data's clock forward N days and lets the
world go on meanwhile, so that the loop between the product and sales can be watched.

During the N days, in this order (README.md, "Simulated time", says which real behaviour
each rule imitates):

1. Sales works the open tasks clients created through the API (HubSpot tasks associated
   with a contact, Salesforce Tasks whose WhoId is a Lead or Contact). The person's hidden
   outcome decides, so the loop agrees with the outcomes API: a person who `became_sql`
   and is not already at SQL or later is accepted a few days after the task was created
   (an API write happens at the data's "now", the current as-of); anyone else is
   rejected. Either way the task is completed.
2. People whose hidden SQL date falls inside the window and who are not yet SQL are
   accepted on that date, without a task (sales found them on their own).
3. Every live person engages at the rate of their own history (their activity count over
   the time since they were created), with kinds drawn from their own past mix. The new
   activities are appended to the population's logs (they are all later than every
   earlier one, so the logs stay sorted and no existing id moves) and served by every API
   that serves the generated ones.

Records the rules change are stamped as a write through the API stamps them (`now_ms`),
so incremental pulls by `lastmodifieddate` / `SystemModstamp` see them; new activities
carry their own time, inside the window. Draws come from `random.Random(f"advance:{seed}:
{step}")`: the same seed and the same calls give the same result.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sandbox import hubspot_events
from sandbox.clock import DAY_MS, hubspot_iso, now_ms
from sandbox.hubspot_schema import LIFECYCLE_RANK
from sandbox.hubspot_store import CONTACT_ID_BASE, HsContact
from sandbox.population import DETAIL_COUNT, KINDS, ActivityLog, Person, poisson
from sandbox.salesforce_rows import SfPerson
from sandbox.salesforce_schema import EVENT_KIND, MEMBER_STATUS, TASK_TYPES

if TYPE_CHECKING:
    from sandbox.state import Sandbox

MAX_DAYS = 365
# Sales works a task within this many days of its creation.
WORK_DAYS = 5
SQL = "salesqualifiedlead"
SQL_RANK = LIFECYCLE_RANK[SQL]
# HubSpot's "Became a Sales Qualified Lead Date" (stamped where the portal has it).
SQL_DATE_PROPERTY = "hs_lifecyclestage_salesqualifiedlead_date"
# What a rep sets on a contact they accept / reject (HubSpot's default lead statuses).
ACCEPTED_STATUSES = ("CONNECTED", "OPEN_DEAL")
REJECTED_STATUS = "UNQUALIFIED"
# Salesforce: the stage field the product's mapping falls back to where Lead Status has
# no value for the stages (`stage.fallback_field`, created by `mqlsync crm-setup`).
STAGE_FIELD = "Lifecycle_Stage__c"
SQL_OR_LATER_STAGE_VALUES = frozenset({"sql", "opportunity", "customer"})
# The Lead Status a rep sets on a lead they disqualify: the configured org's, else stock.
UNQUALIFIED_LEAD_STATUSES = ("Unqualified", "Closed - Not Converted")
SALES_QUALIFIED_LEAD_STATUS = "Sales Qualified"


@dataclass
class AdvanceResult:
    """What one advance did; `as_json` is the admin API's answer."""

    as_of_ms: int
    days: int
    tasks_worked: int = 0
    accepted: int = 0
    rejected: int = 0
    accepted_without_task: int = 0
    activities: int = 0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["as_of_ms"]
        return {"as_of": hubspot_iso(self.as_of_ms), **out}


def check_days(value: Any) -> int:
    """The number of days to advance, or ValueError saying what is accepted."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise ValueError(f"days must be an integer from 1 to {MAX_DAYS}, got {value!r}")
    return value


def advance(sb: Sandbox, days: Any) -> AdvanceResult:
    """Move the sandbox's data clock `days` forward, applying the rules above."""
    return _Advance(sb, check_days(days)).run()


class _Advance:
    def __init__(self, sb: Sandbox, days: int) -> None:
        self.portal, self.org, self.pop = sb.portal, sb.org, sb.population
        clock = self.portal.clock
        self.days = days
        self.start = clock.as_of_ms
        self.end = self.start + days * DAY_MS
        step = len(clock.marks)  # 1 for the first advance
        self.rng = random.Random(f"advance:{self.pop.spec.seed}:{step}")
        self.result = AdvanceResult(self.end, days)
        self.decided: set[int] = set()  # people whose task was worked in this advance
        self.accepted: set[int] = set()  # people accepted in this advance
        self.written: set[int] = set()  # HubSpot contacts written in this advance
        labels = {label for label, _, _ in self.org.statuses}
        self.unqualified = next((s for s in UNQUALIFIED_LEAD_STATUSES if s in labels), None)
        self._contacts_by_email: dict[str, SfPerson] | None = None  # built on first use

    def run(self) -> AdvanceResult:
        self.portal.settle_search()  # once: each write below skips it
        self.work_hubspot_tasks()
        self.work_salesforce_tasks()
        self.accept_on_their_own()
        self.engage()
        self.portal.clock.marks.append(self.end)
        return self.result

    # -- 1. sales works the open tasks ------------------------------------------------------

    def _worked_at(self) -> int:
        """When a rep works a task: 1 to WORK_DAYS days after it was created (at the
        window's start, the data's "now" when the API created it), within the window."""
        return self.start + self.rng.randrange(DAY_MS, min(self.days, WORK_DAYS) * DAY_MS + 1)

    def work_hubspot_tasks(self) -> None:
        portal = self.portal
        for task in sorted(portal.tasks.values(), key=lambda t: t.id):
            if task.props.get("hs_task_status") == "COMPLETED":
                continue
            contacts = (portal.contacts.get(cid) for cid in task.contact_ids)
            contact = next((c for c in contacts if c is not None and not c.archived), None)
            if contact is None:
                continue
            self._decide(contact.person, self._worked_at())
            task.props["hs_task_status"] = "COMPLETED"
            task.modified_ms = now_ms()
            self.result.tasks_worked += 1

    def work_salesforce_tasks(self) -> None:
        org = self.org
        for task in org.created_tasks:
            if task.fields.get("Status") == "Completed":
                continue
            who = task.fields.get("WhoId")
            rec = org.lookup("Lead", who) or org.lookup("Contact", who)
            if rec is None or rec.deleted:
                continue
            self._decide(rec.person, self._worked_at())
            task.fields["Status"] = "Completed"
            task.modified_ms = now_ms()
            self.result.tasks_worked += 1

    def _decide(self, person: Person, at: int) -> None:
        """Accept or reject the person a task is about (once per advance)."""
        if person.index in self.decided:
            return
        self.decided.add(person.index)
        if self._is_sql(person):
            return  # already accepted: the task is closed, nothing else changes
        if person.became_sql:
            sql_at = person.sql_at_ms
            if sql_at is not None and self.start < sql_at < at:
                at = sql_at  # they had become SQL before the rep got to the task
            self._accept(person, at)
            self.result.accepted += 1
        else:
            self._reject(person)
            self.result.rejected += 1

    # -- 2. accepted without a task ---------------------------------------------------------

    def accept_on_their_own(self) -> None:
        for person in self.pop.people:
            sql_at = person.sql_at_ms
            if sql_at is None or not self.start < sql_at <= self.end or person.deleted:
                continue
            if self._is_sql(person):
                continue
            self._accept(person, sql_at)
            self.result.accepted_without_task += 1

    # -- acceptance and rejection in each CRM -----------------------------------------------

    def _in_hubspot(self, person: Person) -> bool:
        return person.index < self.pop.hubspot_count

    def _contact(self, person: Person) -> HsContact:
        return self.portal.contacts[CONTACT_ID_BASE + person.index]

    def _record(self, person: Person) -> SfPerson:
        """The person's own Salesforce row (their Lead, converted or not, or Contact)."""
        return self.org.people[self.org.who[person.index]]

    def _is_sql(self, person: Person) -> bool:
        """Already at SQL or later: by the hidden journey, or as the CRM shows them."""
        if person.index in self.accepted or person.stage in ("salesqualifiedlead", "customer"):
            return True
        if person.sql_at_ms is not None and person.sql_at_ms <= self.start:
            return True
        if self._in_hubspot(person):
            stage = self.portal.contact_value(self._contact(person), "lifecyclestage")
            return LIFECYCLE_RANK.get(str(stage or ""), 0) >= SQL_RANK
        rec = self._record(person)
        if rec.sobject != "Lead":
            return False
        if rec.conversion is not None:
            return True
        org = self.org
        stage = org.value("Lead", rec, STAGE_FIELD) if STAGE_FIELD in org.schema["Lead"] else None
        return (
            org.value("Lead", rec, "Status") == SALES_QUALIFIED_LEAD_STATUS
            or str(stage or "").casefold() in SQL_OR_LATER_STAGE_VALUES
        )

    def _accept(self, person: Person, at: int) -> None:
        self.accepted.add(person.index)
        if person.sql_at_ms is None or person.sql_at_ms > at:
            person.sql_at_ms = at
        if self._in_hubspot(person):
            contact = self._contact(person)
            props = {"hs_lead_status": self.rng.choice(ACCEPTED_STATUSES)}
            stage = self.portal.contact_value(contact, "lifecyclestage")
            if LIFECYCLE_RANK.get(str(stage or ""), 0) < SQL_RANK:
                props["lifecyclestage"] = SQL
            schema = self.portal.schema["contacts"]
            if (
                SQL_DATE_PROPERTY in schema
                and self.portal.contact_value(contact, SQL_DATE_PROPERTY) is None
            ):
                props[SQL_DATE_PROPERTY] = str(at)  # the first entry into the stage
            self._write_contact(contact, props)
            return
        org, rec = self.org, self._record(person)
        if rec.sobject == "Lead" and rec.conversion is None:
            if STAGE_FIELD in org.schema["Lead"]:
                rec.props = {**(rec.props or {}), STAGE_FIELD: "sql"}
            if self._contacts_by_email is None:
                self._contacts_by_email = org.contacts_by_email()
            # Stamps the lead and its contact.
            org.convert(rec.id, date_ms=at, contacts_by_email=self._contacts_by_email)
        elif rec.sobject == "Contact" and STAGE_FIELD in org.schema["Contact"]:
            rec.props = {**(rec.props or {}), STAGE_FIELD: "sql"}
            org.touch(rec)

    def _reject(self, person: Person) -> None:
        if self._in_hubspot(person):
            self._write_contact(self._contact(person), {"hs_lead_status": REJECTED_STATUS})
            return
        rec = self._record(person)
        if rec.sobject == "Lead" and rec.conversion is None and self.unqualified is not None:
            rec.props = {**(rec.props or {}), "Status": self.unqualified}
            self.org.touch(rec)
        # A Contact has no lead status (the mapping reads no stage from it): the task alone
        # records the rejection.

    def _write_contact(self, contact: HsContact, props: dict[str, str]) -> None:
        with self.portal.writing(contact, settle=False):
            contact.props = {**(contact.props or {}), **props}
        self.written.add(contact.id)

    # -- 3. people keep engaging ------------------------------------------------------------

    def engage(self) -> None:
        pop = self.pop
        split = pop.hubspot_count
        hubspot_first = self._append(pop.hubspot, pop.people[:split])
        salesforce_first = self._append(pop.salesforce, pop.people[split:])
        self._index_hubspot(hubspot_first)
        self._index_salesforce(salesforce_first)

    def _append(self, log: ActivityLog, people: list[Person]) -> int:
        """Draw the window's activities of `people` into `log`; the first new position."""
        first = len(log)
        base = people[0].index if people else 0
        n_kinds = len(KINDS)
        mixes = [[0] * n_kinds for _ in people]
        pricing_views = [0] * len(people)
        for who, kind, detail in zip(log.person, log.kind, log.detail, strict=True):
            mixes[who - base][kind] += 1
            if kind == 0 and detail == 0:  # the pricing page
                pricing_views[who - base] += 1
        rng, start, span = self.rng, self.start, self.end - self.start
        kinds_range = range(n_kinds)
        drawn: list[tuple[int, int, int, int]] = []
        for i, person in enumerate(people):
            mix = mixes[i]
            total = sum(mix)
            if person.deleted or not total:
                continue
            age = max(DAY_MS, start - person.created_ms)
            n = poisson(rng, total * span / age)
            if not n:
                continue
            pricing = pricing_views[i] / mix[0] if mix[0] else 0.0
            for k in rng.choices(kinds_range, weights=mix, k=n):
                ts = start + 1 + rng.randrange(span)
                if k == 0:
                    d = (
                        0
                        if rng.random() < pricing
                        else 1 + int(rng.random() * (DETAIL_COUNT[0] - 1))
                    )
                else:
                    d = int(rng.random() * DETAIL_COUNT[k])
                drawn.append((ts, person.index, k, d))
        drawn.sort(key=lambda a: a[0])  # stable: generation order breaks ties
        log.ts.extend(a[0] for a in drawn)
        log.person.extend(a[1] for a in drawn)
        log.kind.extend(a[2] for a in drawn)
        log.detail.extend(a[3] for a in drawn)
        self.result.activities += len(drawn)
        return first

    def _index_hubspot(self, first: int) -> None:
        """Serve the new activities (events, meetings) and stamp their contacts: their
        calculated properties (page views, opens, last visit, ...) changed."""
        portal, log = self.portal, self.pop.hubspot
        touched: set[int] = set()
        for pos in range(first, len(log)):
            kind = log.kind[pos]
            if kind == hubspot_events.MEETING:
                portal.meeting_pos.append(pos)
                portal.meeting_ts.append(log.ts[pos])
            else:
                etype = hubspot_events.event_type(kind)
                assert etype is not None
                portal.event_pos[etype].append(pos)
                portal.all_event_pos.append(pos)
            touched.add(CONTACT_ID_BASE + log.person[pos])
        portal._rollups = None  # recounted from the log on the next read
        for cid in sorted(touched - self.written):
            with portal.writing(portal.contacts[cid], settle=False):
                pass

    def _index_salesforce(self, first: int) -> None:
        """Serve the new activities as Task, Event and CampaignMember rows. Generated Task
        rows are numbered after the Tasks created through the API so far."""
        org, log = self.org, self.pop.salesforce
        tasks, share = [], org.options.all_day_share
        for pos in range(first, len(log)):
            kind = log.kind[pos]
            if kind in TASK_TYPES:
                tasks.append(pos)
            elif kind == EVENT_KIND:
                org.event_pos.append(pos)
                org.all_day.append(self.rng.random() < share)
            elif kind in MEMBER_STATUS:
                org.member_pos.append(pos)
        if tasks:
            row = len(org.task_pos)
            org.task_batches = (*org.task_batches, (row, row + len(org.created_tasks)))
            org.task_pos.extend(tasks)
