"""Salesforce queries through simple-salesforce: paging, queryAll, relationship fields."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.testing import SandboxHandle


def test_query_all_iter_pages_leads_to_the_end(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    expected = sb.admin.expected("salesforce")
    leads = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead")]
    assert sorted(leads) == sorted(expected["leads"])
    tasks = list(
        sf.query_all_iter(
            "SELECT Id, WhoId, Type, SystemModstamp FROM Task ORDER BY SystemModstamp, Id"
        )
    )
    assert len(tasks) > 2000  # more than one page
    assert sorted(t["Id"] for t in tasks) == sorted(expected["tasks"])
    stamps = [t["SystemModstamp"] for t in tasks]
    assert stamps == sorted(stamps)


def test_next_records_url_pages_are_2000(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    first = sf.query("SELECT Id FROM Task")
    assert not first["done"] and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["totalSize"] == first["totalSize"]
    assert not {r["Id"] for r in first["records"]} & {r["Id"] for r in second["records"]}


def test_query_all_includes_deleted_rows(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    deleted = set(sb.admin.expected("salesforce")["deleted"])
    assert deleted
    live = {r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead")}
    everything = list(sf.query_all_iter("SELECT Id, IsDeleted FROM Lead", include_deleted=True))
    assert not live & deleted
    assert {r["Id"] for r in everything if r["IsDeleted"]} == {
        d for d in deleted if d.startswith("00Q")
    }


def test_modstamp_window_and_id_slicing(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    rows = sf.query("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id")["records"]
    mid = rows[len(rows) // 2]
    stamp = mid["SystemModstamp"].replace("+0000", "Z")
    after = sf.query(
        f"SELECT Id FROM Contact WHERE SystemModstamp >= {stamp} ORDER BY SystemModstamp, Id"
    )["records"]
    assert after[0]["Id"] == mid["Id"] or mid["Id"] in {r["Id"] for r in after}
    by_id = sf.query(f"SELECT Id FROM Contact WHERE Id > '{mid['Id']}' ORDER BY Id")["records"]
    assert all(r["Id"] > mid["Id"] for r in by_id)
    ids = [r["Id"] for r in rows[:3]]
    in_list = ", ".join(f"'{i}'" for i in ids)
    assert sorted(
        r["Id"] for r in sf.query(f"SELECT Id FROM Contact WHERE Id IN ({in_list})")["records"]
    ) == sorted(ids)


def test_relationship_fields_and_campaign_members(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    contact = sf.query(
        "SELECT Id, Account.Name, Account.NumberOfEmployees, Account.Industry FROM Contact LIMIT 1"
    )["records"][0]
    assert contact["Account"]["Name"] and contact["Account"]["attributes"]["type"] == "Account"
    members = sf.query(
        "SELECT Id, LeadId, ContactId, Status, Campaign.Name, Campaign.Type "
        "FROM CampaignMember WHERE Campaign.Type = 'Webinar' "
        "AND Status IN ('Registered', 'Attended') LIMIT 50"
    )["records"]
    assert members and all(m["Campaign"]["Type"] == "Webinar" for m in members)
    statuses = sf.query("SELECT ApiName, IsConverted FROM LeadStatus ORDER BY SortOrder")["records"]
    assert [s["ApiName"] for s in statuses][:3] == [
        "Open - Not Contacted",
        "Working - Contacted",
        "Marketing Qualified",
    ]
    events = sf.query("SELECT Id, WhoId, Type, ActivityDateTime FROM Event LIMIT 5")["records"]
    assert events and all(e["Type"] == "Meeting" for e in events)
    users = sf.query("SELECT Id, Name, Email, IsActive FROM User")["records"]
    assert users and all(u["Id"].startswith("005") for u in users)


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT Id FROM Lead WHERE SystemModstamp > '2026-01-01'", "INVALID_FIELD"),
    ],
)
def test_query_errors_are_salesforce_shaped(sb: SandboxHandle, soql: str, code: str) -> None:
    sf = sb.salesforce_client()
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400
    assert err.value.content[0]["errorCode"] == code


def test_lookups_by_who_and_id_match_a_full_scan(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    everything = list(sf.query_all_iter("SELECT Id, WhoId, SystemModstamp FROM Task"))
    who = sorted({t["WhoId"] for t in everything})[:7]
    in_list = ", ".join(f"'{w}'" for w in who)
    by_who = sf.query(
        f"SELECT Id, WhoId FROM Task WHERE WhoId IN ({in_list}) ORDER BY SystemModstamp, Id"
    )["records"]
    assert [t["Id"] for t in by_who] == [t["Id"] for t in everything if t["WhoId"] in who]
    some = [t["Id"] for t in everything[:5]]
    ids = ", ".join(f"'{i}'" for i in some)
    by_id = sf.query(f"SELECT Id FROM Task WHERE Id IN ({ids}) AND WhoId != null")["records"]
    assert sorted(t["Id"] for t in by_id) == sorted(some)
