"""HubSpot tasks, meetings + v4 associations, events, owners and properties through
hubspot-api-client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects import PublicObjectSearchRequest as ObjectSearch
from hubspot.crm.objects.tasks import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.tasks.exceptions import ApiException

from sandbox.testing import SandboxHandle

TASK_TO_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]


def _task(contact_id: str, key: str) -> SimplePublicObjectInputForCreate:
    return SimplePublicObjectInputForCreate(
        properties={
            "hs_task_subject": "MQL: follow up",
            "hs_task_body": "Pricing x2",
            "hs_timestamp": "2026-11-25T09:00:00Z",
            "hs_task_priority": "HIGH",
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "TODO",
            "mqlsync_handoff_key": key,
        },
        associations=[{"to": {"id": contact_id}, "types": TASK_TO_CONTACT}],
    )


def _by_key(hs, *keys: str):
    flt = (
        {"propertyName": "mqlsync_handoff_key", "operator": "EQ", "value": keys[0]}
        if len(keys) == 1
        else {"propertyName": "mqlsync_handoff_key", "operator": "IN", "values": list(keys)}
    )
    return hs.crm.objects.tasks.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[{"filters": [flt]}], properties=["mqlsync_handoff_key"], limit=100
        )
    )


def test_task_create_with_inline_association_and_search_by_key(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    cid = sb.admin.expected("hubspot")["contacts"][50]
    task = hs.crm.objects.tasks.basic_api.create(
        simple_public_object_input_for_create=_task(cid, f"hubspot:{cid}:t1")
    )
    assert task.properties["mqlsync_handoff_key"] == f"hubspot:{cid}:t1"
    stored = sb.admin.hubspot_contact(cid)["tasks"]
    assert [t["id"] for t in stored] == [task.id]
    assert stored[0]["associations"]["contacts"]["results"][0]["id"] == cid
    read = hs.crm.objects.tasks.basic_api.get_by_id(
        task.id, properties=["hs_task_subject", "hs_timestamp"]
    )
    assert read.properties["hs_task_subject"] == "MQL: follow up"
    assert read.properties["hs_timestamp"] == "2026-11-25T09:00:00.000Z"
    found = _by_key(hs, f"hubspot:{cid}:t1")
    assert [t.id for t in found.results] == [task.id]
    assert _by_key(hs, "no-such-key").total == 0


def test_task_batch_create_and_in_search(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    cids = sb.admin.expected("hubspot")["contacts"][60:63]
    keys = [f"batch:{c}" for c in cids]
    out = hs.crm.objects.tasks.batch_api.create(
        batch_input_simple_public_object_batch_input_for_create=(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[_task(c, k) for c, k in zip(cids, keys, strict=True)]
            )
        )
    )
    assert out.status == "COMPLETE" and len(out.results) == 3
    assert sorted(t.properties["mqlsync_handoff_key"] for t in _by_key(hs, *keys).results) == keys


def test_task_refuses_a_wrong_association_type_and_a_missing_contact(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    cid = sb.admin.expected("hubspot")["contacts"][0]
    bad_type = _task(cid, "x")
    bad_type.associations = [
        {
            "to": {"id": cid},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
        }
    ]
    for body in (bad_type, _task("1", "y")):
        with pytest.raises(ApiException) as err:
            hs.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create=body)
        assert err.value.status == 400


def test_meetings_search_and_v4_associations(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    meetings, after = [], None
    while True:
        page = hs.crm.objects.search_api.do_search(
            object_type="meetings",
            public_object_search_request=ObjectSearch(
                filter_groups=[
                    {
                        "filters": [
                            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                properties=["hs_timestamp", "hs_meeting_title"],
                limit=200,
                after=after,
            ),
        )
        meetings += page.results
        if page.paging is None:
            break
        after = page.paging.next.after
    assert [m.id for m in meetings] == sb.admin.expected("hubspot")["meetings"]
    assert meetings[0].properties["hs_meeting_title"]
    assoc = hs.crm.associations.v4.batch_api.get_page(
        "meetings",
        "contacts",
        batch_input_public_fetch_associations_batch_request=(
            BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[{"id": m.id} for m in meetings[:10]]
            )
        ),
    )
    contacts = set(sb.admin.expected("hubspot")["contacts"]) | set(
        sb.admin.expected("hubspot")["archived_contacts"]
    )
    assert len(assoc.results) == 10
    for row in assoc.results:
        assert str(row.to[0].to_object_id) in contacts
        assert row.to[0].association_types[0].type_id == 200


def test_events_page_to_the_end_per_type_and_window(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    expected = sb.admin.expected("hubspot")["events"]
    for etype in ("e_visited_page", "e_submitted_form", "pe_webinar_attended"):
        seen, after = [], None
        while True:
            page = hs.events.events_api.get_page(
                object_type="contact", event_type=etype, limit=500, after=after, sort=["ASCENDING"]
            )
            seen += page.results
            if page.paging is None:
                break
            after = page.paging.next.after
        assert [e.id for e in seen] == expected[etype]
        assert all(e.event_type == etype for e in seen)
        stamps = [e.occurred_at for e in seen]
        assert stamps == sorted(stamps)
    forms = {
        e.properties["hs_form_id"]
        for e in hs.events.events_api.get_page(
            object_type="contact", event_type="e_submitted_form", limit=1000
        ).results
    }
    assert forms <= {
        "contact-us",
        "catalog-request",
        "content-download",
        "demo-request",
        "trial-signup",
        "webinar-registration",
    }
    cut = datetime(2026, 9, 1, tzinfo=UTC)
    recent = hs.events.events_api.get_page(
        object_type="contact", event_type="e_visited_page", occurred_after=cut, limit=1000
    )
    assert recent.results and all(e.occurred_at > cut for e in recent.results)


def test_owners_and_properties(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    owners = hs.crm.owners.owners_api.get_page(limit=100).results
    assert owners and all(o.type == "PERSON" and o.email for o in owners)
    stage = hs.crm.properties.core_api.get_by_name("contacts", "lifecyclestage")
    assert [o.value for o in stage.options][:3] == ["subscriber", "lead", "marketingqualifiedlead"]
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert {"mqlsync_score", "real_estate_license", "hs_lead_status"} <= names
    task_props = {p.name for p in hs.crm.properties.core_api.get_all("tasks").results}
    assert "mqlsync_handoff_key" in task_props
