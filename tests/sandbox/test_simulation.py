"""Simulated time (`POST /_sandbox/advance`): sales works the MQL tasks clients created,
people reach SQL on their own and keep engaging, all visible through the CRM APIs.

These tests start their own sandboxes: advancing changes the data the shared one serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate

from sandbox.clock import DAY_MS, hubspot_iso, parse_instant
from sandbox.testing import SandboxHandle, running_sandbox, trusting_session

TASK_TO_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]
DAYS = 30
SQL_OR_LATER = {"salesqualifiedlead", "opportunity", "customer", "evangelist"}


def _soql_time(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _http(sb: SandboxHandle) -> requests.Session:
    session = trusting_session(sb.ca_file)
    session.headers["Authorization"] = f"Bearer {sb.hubspot_token}"
    return session


def _pick(sb: SandboxHandle, crm: str, n: int) -> tuple[list[str], list[str]]:
    """`n` people who will become SQL and `n` who will not, none SQL yet, all live (and
    in Salesforce, unconverted Leads)."""
    as_of = parse_instant(sb.admin.info()["as_of"])
    if crm == "hubspot":
        live = set(sb.admin.expected("hubspot")["contacts"])
    else:
        expected = sb.admin.expected("salesforce")
        live = set(expected["leads"]) - set(expected["converted_leads"])
    yes: list[str] = []
    no: list[str] = []
    for o in sb.admin.outcomes(crm):
        if o["id"] not in live or (o["sql_at"] and parse_instant(o["sql_at"]) <= as_of):
            continue
        if crm == "hubspot":
            stage = sb.admin.hubspot_contact(o["id"])["properties"]["lifecyclestage"]
            if stage in SQL_OR_LATER:
                continue
        elif sb.admin.salesforce_record(o["id"])["fields"]["Status"] == "Sales Qualified":
            continue
        group = yes if o["became_sql"] else no
        if len(group) < n:
            group.append(o["id"])
        if len(yes) == len(no) == n:
            break
    assert len(yes) == len(no) == n
    return yes, no


def _hubspot_task(contact_id: str) -> SimplePublicObjectInputForCreate:
    return SimplePublicObjectInputForCreate(
        properties={
            "hs_task_subject": "MQL: follow up",
            "hs_timestamp": "2026-11-03T09:00:00Z",
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "TODO",
            "mqlsync_handoff_key": f"hubspot:{contact_id}",
        },
        associations=[{"to": {"id": contact_id}, "types": TASK_TO_CONTACT}],
    )


def _create_tasks(sb: SandboxHandle, hubspot: list[str], salesforce: list[str]) -> None:
    hs, sf = sb.hubspot_client(), sb.salesforce_client()
    for cid in hubspot:
        hs.crm.objects.tasks.basic_api.create(
            simple_public_object_input_for_create=_hubspot_task(cid)
        )
    for lead in salesforce:
        sf.Task.create(
            {
                "WhoId": lead,
                "Subject": "MQL handoff",
                "Type": "MQL Handoff",
                "ActivityDate": "2026-11-03",
                "Handoff_Key__c": f"salesforce:{lead}",
            }
        )


def _search_all(http: requests.Session, sb: SandboxHandle, object_type: str, body: dict) -> list:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = http.post(
            f"{sb.base_url}/crm/v3/objects/{object_type}/search",
            json={**body, "limit": 200, **({"after": after} if after else {})},
            timeout=30,
        )
        page.raise_for_status()
        data = page.json()
        out += data["results"]
        after = data.get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


@dataclass
class World:
    sb: SandboxHandle
    as_of_before: int
    wall_before: int
    hubspot_yes: list[str]
    hubspot_no: list[str]
    salesforce_yes: list[str]
    salesforce_no: list[str]
    stages_before: dict[str, str]
    outcomes_before: dict[str, dict[str, Any]]
    calls_before: dict[str, str]
    result: dict[str, Any]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with running_sandbox(
        contacts=600, seed=23, hubspot_per_10s=100_000, hubspot_search_per_s=100_000
    ) as sb:
        as_of = parse_instant(sb.admin.info()["as_of"])
        hs_yes, hs_no = _pick(sb, "hubspot", 3)
        sf_yes, sf_no = _pick(sb, "salesforce", 3)
        _create_tasks(sb, hs_yes + hs_no, sf_yes + sf_no)
        stages = {
            cid: sb.admin.hubspot_contact(cid)["properties"]["lifecyclestage"] for cid in hs_no
        }
        outcomes = {o["id"]: o for o in sb.admin.outcomes()}
        http = _http(sb)
        calls = {
            c["id"]: c["properties"]["hs_timestamp"]
            for c in _search_all(http, sb, "calls", {"properties": ["hs_timestamp"]})
        }
        wall = int(time.time() * 1000) - 1
        result = sb.admin.advance(DAYS)
        yield World(sb, as_of, wall, hs_yes, hs_no, sf_yes, sf_no, stages, outcomes, calls, result)


def test_advance_refuses_a_bad_number_of_days(world: World) -> None:
    admin = world.sb.admin
    for body in ({"days": 0}, {"days": 366}, {"days": "30"}, {"days": 1.5}, {"days": True}, {}):
        resp = admin.http.post(admin.base + "/advance", json=body, timeout=30)
        assert resp.status_code == 400, body
        assert "days must be an integer from 1 to 365" in resp.json()["error"]
    assert admin.info()["as_of"] == world.result["as_of"]  # nothing moved


def test_the_clock_moves_and_the_counts_add_up(world: World) -> None:
    r = world.result
    assert parse_instant(r["as_of"]) == world.as_of_before + DAYS * DAY_MS
    assert world.sb.admin.info()["as_of"] == r["as_of"]
    assert r["days"] == DAYS
    assert (r["tasks_worked"], r["accepted"], r["rejected"]) == (12, 6, 6)
    assert r["accepted_without_task"] > 0 and r["activities"] > 0


def test_accepted_are_the_became_sql_among_the_tasked_in_both_crms(world: World) -> None:
    sb, lo, hi = world.sb, world.as_of_before, world.as_of_before + DAYS * DAY_MS
    hs = sb.hubspot_client()
    props = ["lifecyclestage", "hs_lead_status", "hs_lifecyclestage_salesqualifiedlead_date"]
    for cid in world.hubspot_yes + world.hubspot_no:
        p = hs.crm.contacts.basic_api.get_by_id(cid, properties=props).properties
        if cid in world.hubspot_yes:
            assert p["lifecyclestage"] == "salesqualifiedlead"
            assert p["hs_lead_status"] in ("CONNECTED", "OPEN_DEAL")
            assert lo < parse_instant(p["hs_lifecyclestage_salesqualifiedlead_date"]) <= hi
        else:
            assert p["hs_lead_status"] == "UNQUALIFIED"
            assert p["lifecyclestage"] == world.stages_before[cid]  # the stage stays
    sf = sb.salesforce_client()
    ids = ", ".join(f"'{i}'" for i in world.salesforce_yes + world.salesforce_no)
    rows = sf.query(
        f"SELECT Id, Status, IsConverted, ConvertedDate, ConvertedContactId FROM Lead "
        f"WHERE Id IN ({ids})"
    )["records"]
    by_id = {r["Id"]: r for r in rows}
    for lead in world.salesforce_yes:
        row = by_id[lead]
        assert row["IsConverted"] is True and row["Status"] == "Closed - Converted"
        assert row["ConvertedContactId"].startswith("003")
        day = parse_instant(row["ConvertedDate"] + "T00:00:00Z")
        assert lo // DAY_MS * DAY_MS < day <= hi
    for lead in world.salesforce_no:
        assert by_id[lead]["IsConverted"] is False and by_id[lead]["Status"] == "Unqualified"
    # The hidden outcomes: the draws stay, accepted people's SQL date is inside the window.
    now = {o["id"]: o for o in sb.admin.outcomes()}
    for pid in world.hubspot_yes + world.salesforce_yes:
        assert lo < parse_instant(now[pid]["sql_at"]) <= hi
        before = world.outcomes_before[pid]["sql_at"]
        assert before is None or parse_instant(now[pid]["sql_at"]) <= parse_instant(before)
    for pid, o in world.outcomes_before.items():
        assert now[pid]["became_sql"] == o["became_sql"]
        if pid in world.hubspot_no + world.salesforce_no:
            assert now[pid]["sql_at"] == o["sql_at"]


def test_tasks_are_completed_and_changes_come_through_incremental_reads(world: World) -> None:
    sb, http = world.sb, _http(world.sb)
    since = hubspot_iso(world.wall_before)
    keys = [f"hubspot:{c}" for c in world.hubspot_yes + world.hubspot_no]
    tasks = _search_all(
        http,
        sb,
        "tasks",
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "mqlsync_handoff_key", "operator": "IN", "values": keys}
                    ]
                }
            ],
            "properties": ["hs_task_status", "hs_lastmodifieddate"],
        },
    )
    assert len(tasks) == 6
    for t in tasks:
        assert t["properties"]["hs_task_status"] == "COMPLETED"
        assert parse_instant(t["properties"]["hs_lastmodifieddate"]) > world.wall_before
    changed = _search_all(
        http,
        sb,
        "contacts",
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}
                    ]
                }
            ]
        },
    )
    assert set(world.hubspot_yes + world.hubspot_no) <= {c["id"] for c in changed}
    sf = sb.salesforce_client()
    leads = {
        r["Id"]
        for r in sf.query_all(
            f"SELECT Id FROM Lead WHERE SystemModstamp > {_soql_time(world.wall_before)}"
        )["records"]
    }
    assert set(world.salesforce_yes + world.salesforce_no) <= leads
    handoffs = sf.query_all(
        "SELECT Id, Status, SystemModstamp FROM Task WHERE Type = 'MQL Handoff'"
    )["records"]
    assert len(handoffs) == 6 and {t["Status"] for t in handoffs} == {"Completed"}


def test_new_activities_are_dated_in_the_window_and_read_incrementally(world: World) -> None:
    sb, http = world.sb, _http(world.sb)
    lo, hi = world.as_of_before, world.as_of_before + DAYS * DAY_MS
    # HubSpot events API, from the previous as-of on.
    events = http.get(
        sb.base_url + "/events/v3/events",
        params={"objectType": "contact", "occurredAfter": hubspot_iso(lo), "limit": 1000},
        timeout=30,
    ).json()["results"]
    assert events and all(lo < parse_instant(e["occurredAt"]) <= hi for e in events)
    expected = sb.admin.expected("hubspot")["events"]
    assert {e["id"] for e in events} <= {i for ids in expected.values() for i in ids}
    # Calls derived from the new activities keep to the window; the old ones keep their ids.
    calls = {
        c["id"]: c["properties"]["hs_timestamp"]
        for c in _search_all(http, sb, "calls", {"properties": ["hs_timestamp"]})
    }
    assert {k: calls[k] for k in world.calls_before} == world.calls_before
    new_calls = [t for k, t in calls.items() if k not in world.calls_before]
    assert new_calls and all(lo < parse_instant(t) <= hi for t in new_calls)
    # Salesforce Task, Event and CampaignMember rows, by SystemModstamp.
    sf = sb.salesforce_client()
    since = _soql_time(lo)
    tasks = sf.query_all(
        "SELECT Id, Type, CreatedDate, SystemModstamp FROM Task "
        f"WHERE SystemModstamp > {since} AND Type != 'MQL Handoff'"
    )["records"]
    assert tasks and all(lo < parse_instant(t["SystemModstamp"]) <= hi for t in tasks)
    handoff_ids = {
        t["Id"] for t in sf.query_all("SELECT Id FROM Task WHERE Type = 'MQL Handoff'")["records"]
    }
    assert not handoff_ids & {t["Id"] for t in tasks}  # generated rows get ids of their own
    every_task = sb.admin.expected("salesforce")["tasks"]
    assert len(every_task) == len(set(every_task))
    one = sf.Task.get(tasks[-1]["Id"])
    assert one["Id"] == tasks[-1]["Id"] and one["Type"] == tasks[-1]["Type"]
    for sobject in ("Event", "CampaignMember"):
        rows = sf.query_all(
            f"SELECT Id, SystemModstamp FROM {sobject} WHERE SystemModstamp > {since}"
        )
        assert all(lo < parse_instant(r["SystemModstamp"]) <= hi for r in rows["records"])


def _run(contacts: int, seed: int) -> list[dict[str, Any]]:
    with running_sandbox(contacts=contacts, seed=seed, hubspot_search_per_s=1000) as sb:
        hs_yes, hs_no = _pick(sb, "hubspot", 1)
        sf_yes, sf_no = _pick(sb, "salesforce", 1)
        _create_tasks(sb, hs_yes + hs_no, sf_yes + sf_no)
        first = sb.admin.advance(10)
        second = sb.admin.advance(45)
        outcomes = sb.admin.outcomes()
        return [first, second, {"sql_at": [o["sql_at"] for o in outcomes]}]


def test_the_same_seed_and_calls_give_the_same_result() -> None:
    a, b = _run(300, 5), _run(300, 5)
    assert a == b
    assert a[0]["tasks_worked"] == 4 and a[0]["accepted"] == a[0]["rejected"] == 2
    assert a[1]["tasks_worked"] == 0 and a[1]["activities"] > a[0]["activities"]
