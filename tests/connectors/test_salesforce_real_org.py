"""The Salesforce connector against an org as it comes: a stock org's schema, converted
leads, all-day events; over real HTTPS to the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.errors import MappingError
from connectors.salesforce import SalesforceConnector
from scoring.records import Crm
from scoring.writes import HandoffTask, OutcomeStatus, Priority, PropertyUpdate
from tests.connectors.conftest import make_connector

QUERY_PATHS = ("/query", "/queryAll")


def _testing() -> Any:
    import sandbox.testing

    return sandbox.testing


@pytest.fixture
def stock_org() -> Iterator[Any]:
    with _testing().running_sandbox(contacts=60, seed=3, profile="stock") as handle:
        yield handle


@pytest.fixture
def org() -> Iterator[Any]:
    # 300 people: the org's own converted leads (those already past SQL) are several (6).
    with _testing().running_sandbox(contacts=300, seed=8) as handle:
        yield handle


def queries(handle: Any) -> int:
    requests = handle.admin.stats()["requests"]
    return sum(n for k, n in requests.items() if k.startswith("GET") and "/query" in k)


def connector(handle: Any) -> SalesforceConnector:
    crm = make_connector("salesforce", handle)
    assert isinstance(crm, SalesforceConnector)
    return crm


def test_a_stock_org_stops_before_its_first_query_naming_the_fields(stock_org: Any) -> None:
    crm = connector(stock_org)
    stock_org.admin.reset()
    with pytest.raises(MappingError) as raised:
        next(iter(crm.pull_contacts(None)))
    message = str(raised.value)
    for name in ("Lead.MQL_Score__c", "Contact.Score_Grade__c", "Task.Handoff_Key__c"):
        assert name in message
    # Optional custom fields are no reason to stop, and nothing was queried.
    assert "Url__c" not in message and "Business_License__c" not in message
    assert queries(stock_org) == 0


def test_optional_fields_a_stock_org_lacks_are_left_out_with_a_warning(stock_org: Any) -> None:
    crm = connector(stock_org)
    problems = crm.check_mapping()
    assert problems and all("__c" in p for p in problems)
    assert "Task.Url__c: not in this org (optional): left out of every query" in crm.warnings


def test_converted_leads_are_no_contacts_and_come_back_as_conversions(org: Any) -> None:
    crm = connector(org)
    leads = [c for page in crm.pull_contacts(None) for c in page.records if c.crm_id[:3] == "00Q"]
    lead = leads[0].crm_id
    contact_id = org.admin.convert_lead(lead)
    live = {c.crm_id for page in crm.pull_contacts(None) for c in page.records}
    assert lead not in live and contact_id in live
    deletions = [d for page in crm.pull_deletions(None) for d in page.records]
    converted = {d.crm_id: d for d in deletions if d.converted_to}
    assert converted[lead].converted_to == contact_id
    assert converted[lead].converted_at is not None
    # The sandbox's own converted leads (those past SQL) come back the same way.
    assert len(converted) > 1


def test_a_task_for_a_lead_converted_since_it_was_scored_goes_to_its_contact(org: Any) -> None:
    crm = connector(org)
    lead = next(
        c for page in crm.pull_contacts(None) for c in page.records if c.crm_id[:3] == "00Q"
    )
    contact_id = org.admin.convert_lead(lead.crm_id)
    task = HandoffTask(
        key=f"{lead.crm_id}:1",
        crm=Crm.SALESFORCE,
        contact_id=lead.crm_id,
        owner_id=lead.owner_id,
        subject="MQL: follow up",
        body="score 80",
        due_at=datetime.now(UTC) + timedelta(days=1),
        priority=Priority.HIGH,
    )
    [outcome] = crm.create_tasks([task])
    assert outcome.status is OutcomeStatus.OK, outcome.message
    [row] = crm.api.query(f"SELECT WhoId FROM Task WHERE Handoff_Key__c = '{task.key}'")["records"]
    assert row["WhoId"] == contact_id
    # Score fields are never written to the converted lead: Salesforce refuses them.
    [refused] = crm.update_properties(
        [PropertyUpdate(crm=Crm.SALESFORCE, crm_id=lead.crm_id, values={"score": 80})]
    )
    assert refused.status is OutcomeStatus.FAILED
    assert "CANNOT_UPDATE_CONVERTED_LEAD" in (refused.message or "")


def test_all_day_events_are_activities_on_their_date(org: Any) -> None:
    crm = connector(org)
    events = crm.api.query_all("SELECT Id, ActivityDate FROM Event WHERE IsAllDayEvent = true")[
        "records"
    ]
    assert events, "the sandbox population should hold all-day events"
    dates = {e["Id"]: e["ActivityDate"] for e in events}
    activities = {
        a.crm_id: a for page in crm.pull_activities(None) for a in page.records if a.crm_id in dates
    }
    assert activities, [e for e in events][:3]
    for crm_id, activity in activities.items():
        assert activity.occurred_at.date().isoformat() == dates[crm_id]
