"""A sync's worth of connector work against a sandbox: a full pull, a write-back, the state
it leaves in the sandbox, and the fewest requests the page and batch sizes allow.

Shared by the connector benchmark (bench/connectors.py) and the connector acceptance
tests (tests/connectors), which may import from bench/; it drives the product's
connectors, which the sandbox itself may not import."""

from __future__ import annotations

import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors import hubspot as hubspot_writes
from connectors import hubspot_pulls as hubspot
from connectors import hubspot_sources, salesforce
from connectors.protocol import CrmConnector, Deletion
from scoring.records import Activity, Contact, Crm, LifecycleStage
from scoring.writes import HandoffTask, Priority, PropertyUpdate, StageChange, WriteOutcome

STAGE_CHANGES = 5
TASKS = 5
DUE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WRITE_BACK_FIELDS = {
    "hubspot": ["mqlsync_score", "mqlsync_grade", "mqlsync_model_version", "lifecyclestage"],
    "salesforce": ["MQL_Score__c", "Score_Grade__c", "Score_Model_Version__c"],
}


@dataclass
class Pulled:
    """Everything one full pull returned, with the cursors and any per-record issues."""

    contacts: list[Contact] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    cursors: dict[str, datetime | None] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def pull(
    connector: CrmConnector,
    since: dict[str, datetime | None] | None = None,
    *,
    at_once: bool = False,
) -> Pulled:
    """Drain the three streams from `since` (per stream; None: everything). With
    `at_once`, as the sync flow pulls them: contacts and activities side by side, then
    deletions (`flows.tasks.PULL_ORDER`); what each returns is the same either way."""
    since = since or {}
    streams: dict[str, Any] = {
        "contacts": connector.pull_contacts,
        "activities": connector.pull_activities,
        "deletions": connector.pull_deletions,
    }

    def drain(name: str) -> Pulled:
        part = Pulled()
        part.cursors[name] = since.get(name)
        sink: list[Any] = getattr(part, name)
        for page in streams[name](since.get(name)):
            sink.extend(page.records)
            part.issues += [f"{e.crm_id}: {e.message}" for e in page.errors]
            part.skipped += page.skipped
            part.warnings += page.warnings
            if page.cursor is not None:
                part.cursors[name] = page.cursor
        return part

    if at_once:
        from flows.tasks import PULL_ORDER  # Prefect's import, only for a flow's order

        groups = PULL_ORDER
    else:
        groups = tuple((name,) for name in streams)
    parts: dict[str, Pulled] = {}
    for group in groups:
        with ThreadPoolExecutor(len(group)) as pool:
            parts.update(zip(group, pool.map(drain, group), strict=True))
    out = Pulled()
    for name in streams:  # in the streams' order, however they ran
        part = parts[name]
        getattr(out, name).extend(getattr(part, name))
        out.cursors.update(part.cursors)
        out.issues += part.issues
        out.skipped += part.skipped
        out.warnings += part.warnings
    return out


# Events API types the default HubSpot mapping reads (the configured portal's names).
HUBSPOT_EVENT_TYPES = ("e_visited_page", "pe_social_engagement", "pe_support_complaint")
EMAIL_TYPES = ("OPEN", "CLICK", "BOUNCE", "STATUSCHANGE")
ENGAGEMENTS = ("calls", "emails", "communications")
# Registrations come from participations: the default mapping skips this form.
SKIPPED_FORM = "webinar-registration"


@dataclass
class HubSpotActivities:
    """What the default mapping must read from a sandbox portal, from its own data."""

    ids: set[str]
    skipped: int  # the skipped form, and email events / submissions of archived contacts
    events: dict[str, int]  # per Events API type
    email_events: dict[str, int]  # per email event type
    emails: int  # distinct recipients and submitters to look up
    submissions: dict[str, int]  # per form
    participations: dict[int, int]  # per marketing event
    objects: dict[str, int]  # meetings, calls, emails, communications


def hubspot_activities(handle: Any, expected: dict[str, Any]) -> HubSpotActivities:
    """The activities of the sandbox's portal the default mapping reads, from its own state.

    The admin API lists the Events API's and the meetings' ids; the other sources'
    ids are derived the way the sandbox renders them (its marketing and engagement
    modules), so that the comparison is with the portal's data, not with a second read.
    """
    from sandbox.hubspot_engagements import ID_BASE, EngagementsApi
    from sandbox.hubspot_marketing import MarketingApi
    from sandbox.hubspot_store import CONTACT_ID_BASE

    sb = handle.sandbox
    portal = sb.portal
    log = portal.population.hubspot
    marketing = MarketingApi(sb)
    engagements = EngagementsApi(portal)

    def live(pos: int) -> bool:
        return not portal.contacts[CONTACT_ID_BASE + log.person[pos]].archived

    ids = {i for t in HUBSPOT_EVENT_TYPES for i in expected["events"][t]}
    ids |= set(expected["meetings"])
    skipped = 0
    emails: set[str] = set()
    email_events: dict[str, int] = {}
    for etype in EMAIL_TYPES:
        times, positions = marketing.email_index[etype]
        email_events[etype] = len(positions)
        for created, pos in zip(times, positions, strict=True):
            emails.add(marketing._email_of(log.person[pos]))
            if live(pos):
                ids.add(f"{created}:{marketing._event_id(etype, pos)}")
            else:
                skipped += 1
    submissions: dict[str, int] = {}
    for slug, positions in marketing.submission_index.items():
        submissions[slug] = len(positions)
        for pos in positions:
            emails.add(marketing._email_of(log.person[pos]))
            if slug == SKIPPED_FORM or not live(pos):
                skipped += 1
            else:
                ids.add(str(uuid.uuid5(marketing._ns, f"submission:{pos}")))
    participations: dict[int, int] = {}
    for index, rows in marketing.participation_index.items():
        participations[index] = len(rows)
        ids |= {str(uuid.uuid5(marketing._ns, f"participation:{pos}")) for pos, _ in rows}
    objects = {"meetings": len(expected["meetings"])}
    for name in ENGAGEMENTS:
        objects[name] = len(engagements.logs[name].records)
        ids |= {str(ID_BASE[name] + i) for i in range(objects[name])}
    return HubSpotActivities(
        ids=ids,
        skipped=skipped,
        events={t: len(expected["events"][t]) for t in HUBSPOT_EVENT_TYPES},
        email_events=email_events,
        emails=len(emails),
        submissions=submissions,
        participations=participations,
        objects=objects,
    )


def expected_ids(
    crm: str, expected: dict[str, Any], activities: HubSpotActivities | None = None
) -> dict[str, set[str]]:
    """The ids a complete pull must return, per stream (HubSpot: with `hubspot_activities`)."""
    if crm == "hubspot":
        if activities is None:
            raise TypeError("HubSpot needs activities=hubspot_activities(handle, expected)")
        return {
            "contacts": set(expected["contacts"]),
            "activities": activities.ids,
            "deletions": set(expected["archived_contacts"]),
        }
    converted = set(expected["converted_leads"])
    return {
        # A converted lead is the Contact it became: it leaves as a deletion.
        "contacts": set(expected["leads"]) - converted | set(expected["contacts"]),
        "activities": set(expected["tasks"])
        | set(expected["events"])
        | set(expected["campaign_members"]),
        "deletions": set(expected["deleted"]) | converted,
    }


def pulled_ids(pulled: Pulled) -> dict[str, list[str]]:
    """Ids per stream as returned (a list, so doubles show)."""
    return {
        "contacts": [c.crm_id for c in pulled.contacts],
        "activities": [a.crm_id for a in pulled.activities],
        "deletions": [d.crm_id for d in pulled.deletions],
    }


@dataclass
class Writes:
    """What `write_back` sent, to compute the minimum from."""

    updates: int
    stage_changes: int
    backward: int
    tasks: int
    outcomes: list[WriteOutcome]


def _score(crm_id: str) -> int:
    # Deterministic per contact, so a faulted run must write exactly the clean run's values.
    return sum(map(ord, crm_id)) % 100


def write_back(connector: CrmConnector, contacts: list[Contact]) -> Writes:
    """Score every contact, move a few to MQL (one back to lead), create a few tasks."""
    crm = connector.crm
    ordered = sorted(contacts, key=lambda c: c.crm_id)
    updates = [
        PropertyUpdate(
            crm=crm,
            crm_id=c.crm_id,
            values={
                "score": _score(c.crm_id),
                "grade": "ABCD"[_score(c.crm_id) % 4],
                "model_version": "acceptance-1",
            },
        )
        for c in ordered
    ]
    outcomes = connector.update_properties(updates)
    movable = [
        c
        for c in ordered
        if c.lifecycle_stage in (LifecycleStage.LEAD, LifecycleStage.SUBSCRIBER)
        and (crm is Crm.HUBSPOT or c.crm_id.startswith("00Q"))
    ][:STAGE_CHANGES]
    to_mql = [
        StageChange(
            crm=crm,
            crm_id=c.crm_id,
            from_stage=c.lifecycle_stage,
            to_stage=LifecycleStage.MQL,
            lead_status="mql",
        )
        for c in movable
    ]
    outcomes += connector.change_stages(to_mql)
    recycle = [
        StageChange(
            crm=crm,
            crm_id=c.crm_id,
            from_stage=LifecycleStage.MQL,
            to_stage=LifecycleStage.LEAD,
            lead_status="recycled",
        )
        for c in movable[:1]
    ]
    if movable:  # an incremental run may have no one left to move
        outcomes += connector.change_stages(recycle)
    tasks = [
        HandoffTask(
            crm=crm,
            key=f"{crm.value}:{c.crm_id}:acceptance",
            contact_id=c.crm_id,
            owner_id=c.owner_id,
            subject="New MQL",
            body="Fit A; pricing page twice",
            due_at=DUE + timedelta(days=i),
            priority=Priority.HIGH,
        )
        for i, c in enumerate(movable[:TASKS])
    ]
    outcomes += connector.create_tasks(tasks)
    return Writes(len(updates), len(to_mql) + len(recycle), len(recycle), len(tasks), outcomes)


def written_state(handle: Any, crm: str, ids: list[str]) -> dict[str, Any]:
    """What the CRM now holds for the written fields and tasks (ids and times left out)."""
    fields = WRITE_BACK_FIELDS[crm]
    contacts: dict[str, Any] = {}
    if crm == "hubspot":
        api = handle.hubspot_client().crm.contacts.basic_api
        after = None
        while True:
            page = api.get_page(limit=100, after=after, properties=[*fields, "hs_lead_status"])
            for item in page.results:
                contacts[item.id] = {k: item.properties.get(k) for k in [*fields, "hs_lead_status"]}
            if page.paging is None or page.paging.next is None:
                break
            after = page.paging.next.after
        tasks = [_hubspot_task(t) for t in handle.admin.hubspot_tasks()]
    else:
        # A fresh session: a run under `expired` faults has really expired the first one.
        sf = handle.salesforce_client(session_id=handle.new_salesforce_session())
        for obj, extra in (("Lead", ["Status"]), ("Contact", [])):
            soql = f"SELECT Id, {', '.join([*fields, *extra])} FROM {obj}"
            for row in sf.query_all_iter(soql):
                contacts[row["Id"]] = {k: row.get(k) for k in [*fields, *extra]}
        tasks = [_salesforce_task(t) for t in handle.admin.salesforce_tasks()]
    return {
        "contacts": {i: contacts.get(i) for i in ids},
        "tasks": sorted(tasks, key=repr),
    }


_TASK_VOLATILE = {"Id", "attributes", "CreatedDate", "LastModifiedDate", "SystemModstamp"}


def _hubspot_task(task: dict[str, Any]) -> dict[str, Any]:
    contacts = (task.get("associations") or {}).get("contacts") or {}
    return {
        **task["properties"],
        "contacts": sorted(a["id"] for a in contacts.get("results") or []),
    }


def _salesforce_task(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in _TASK_VOLATILE}


def record_counts(crm: str, expected: dict[str, Any]) -> dict[str, int]:
    """Records per stream and object, from the admin API's expected ids (HubSpot's
    activities: `hubspot_activities`)."""
    if crm == "hubspot":
        return {
            "contacts": len(expected["contacts"]),
            "archived": len(expected["archived_contacts"]),
        }
    deleted = expected["deleted"]
    converted = len(expected["converted_leads"])
    return {
        "Lead": len(expected["leads"]) - converted,
        "converted_Lead": converted,
        "Contact": len(expected["contacts"]),
        "Task": len(expected["tasks"]),
        "Event": len(expected["events"]),
        "CampaignMember": len(expected["campaign_members"]),
        "deleted_Lead": sum(1 for i in deleted if i.startswith("00Q")),
        "deleted_Contact": sum(1 for i in deleted if i.startswith("003")),
    }


def _pages(n: int, size: int) -> int:
    return max(1, math.ceil(n / size))


def hubspot_activity_requests(a: HubSpotActivities) -> int:
    """The fewest requests a full pull of the default mapping's activity sources costs.

    Every request stream costs one request even when empty; the custom events cost one
    read of the event definitions; each recipient or submitter is looked up once, 100 a
    call; forms and marketing events are listed once.
    """
    src = hubspot_sources
    total = sum(_pages(n, src.EVENTS_PAGE) for n in a.events.values()) + 1
    total += sum(_pages(n, src.EMAIL_EVENTS_PAGE) for n in a.email_events.values())
    total += math.ceil(a.emails / src.BATCH_READ)
    total += 1 + sum(_pages(n, src.SUBMISSIONS_PAGE) for n in a.submissions.values())
    total += 1 + sum(_pages(n, src.PARTICIPATIONS_PAGE) for n in a.participations.values())
    total += sum(
        _pages(n, src.SEARCH_PAGE) + math.ceil(n / src.ASSOCIATIONS_BATCH)
        for n in a.objects.values()
    )
    return total


def minimum_requests(
    crm: str,
    counts: dict[str, int],
    writes: Writes | None,
    activities: HubSpotActivities | None = None,
) -> int:
    """The fewest requests the page and batch sizes allow for a full pull (+ write-back).

    Counts: `contacts`, `archived` (HubSpot, with `activities`) or `Lead`, `Contact`,
    `Task`, `Event`, `CampaignMember`, `deleted_Lead`, `deleted_Contact`,
    `converted_Lead` (Salesforce).
    Every stream costs at least one request even when empty. A write-back also costs the
    mapping check that must precede any write: one schema read per object it names.
    """
    pages = _pages
    if crm == "hubspot":
        if activities is None:
            raise TypeError("HubSpot needs activities=hubspot_activities(handle, expected)")
        total = (
            pages(counts["contacts"], hubspot.SEARCH_PAGE)
            + hubspot_activity_requests(activities)
            + pages(counts["archived"], hubspot.LIST_PAGE)
        )
        if writes is not None:
            batch = hubspot_writes.BATCH_SIZE
            total += 2  # contacts and tasks property lists
            total += math.ceil(writes.updates / batch)
            # The MQL moves are one batch; the recycle is a clear then a set.
            total += math.ceil((writes.stage_changes - writes.backward) / batch) + 2
            total += math.ceil(writes.tasks / batch)
        return total
    objects = ("Lead", "Contact", "Task", "Event", "CampaignMember")
    total = sum(pages(counts[o], salesforce.QUERY_PAGE) for o in objects)
    total += pages(counts["deleted_Lead"], salesforce.QUERY_PAGE)
    total += pages(counts["deleted_Contact"], salesforce.QUERY_PAGE)
    total += pages(counts["converted_Lead"], salesforce.QUERY_PAGE)
    # The mapping check before the first pull: a describe of Lead, Contact, Account (for
    # Account.*), Task, Event, CampaignMember and Campaign (for Campaign.*); LeadStatus.
    total += 8
    if writes is not None:
        size = salesforce.COLLECTION_SIZE
        total += math.ceil(writes.updates / size)
        total += math.ceil((writes.stage_changes - writes.backward) / size) + 1
        total += math.ceil(writes.tasks / size)
    return total
