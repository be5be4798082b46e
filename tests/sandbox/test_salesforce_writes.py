"""Salesforce writes through simple-salesforce: sObject Collections, Task create, single
record update, and the session lifecycle."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from sandbox.testing import SandboxHandle


def _leads(sb: SandboxHandle, n: int, start: int = 0) -> list[str]:
    return sb.admin.expected("salesforce")["leads"][start : start + n]


def _collection(sf, records, all_or_none=False, method="PATCH"):
    return sf.restful(
        "composite/sobjects", method=method, json={"allOrNone": all_or_none, "records": records}
    )


def test_collections_update_writes_and_reports_each_record(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    a, b = _leads(sb, 2)
    results = _collection(
        sf,
        [
            {
                "attributes": {"type": "Lead"},
                "id": a,
                "MQL_Score__c": 61.5,
                "Status": "Marketing Qualified",
            },
            {"attributes": {"type": "Lead"}, "id": b, "Status": "No Such Status"},
        ],
    )
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    stored = sb.admin.salesforce_record(a)["fields"]
    assert stored["MQL_Score__c"] == 61.5 and stored["Status"] == "Marketing Qualified"
    modified = sf.query(f"SELECT Id, Status FROM Lead WHERE Id = '{a}'")["records"][0]
    assert modified["Status"] == "Marketing Qualified"


def test_collections_all_or_none_rolls_back(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    a, b = _leads(sb, 2, start=5)
    before = sb.admin.salesforce_record(a)["fields"]["Score_Grade__c"]
    results = _collection(
        sf,
        [
            {"attributes": {"type": "Lead"}, "id": a, "Score_Grade__c": "A"},
            {"attributes": {"type": "Lead"}, "id": b, "Nope__c": "x"},
        ],
        all_or_none=True,
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert sb.admin.salesforce_record(a)["fields"]["Score_Grade__c"] == before


def test_collections_refuse_more_than_200(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    lead = _leads(sb, 1)[0]
    with pytest.raises(SalesforceMalformedRequest) as err:
        _collection(sf, [{"attributes": {"type": "Lead"}, "id": lead}] * 201)
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_task_create_single_and_in_a_collection(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    a, b = _leads(sb, 2, start=10)
    created = sf.Task.create(
        {
            "WhoId": a,
            "Subject": "MQL handoff",
            "Type": "MQL Handoff",
            "ActivityDate": "2026-11-25",
            "Priority": "High",
            "Handoff_Key__c": f"salesforce:{a}:1",
        }
    )
    assert created["success"] and created["id"].startswith("00T")
    results = _collection(
        sf,
        [
            {
                "attributes": {"type": "Task"},
                "WhoId": b,
                "Type": "MQL Handoff",
                "Handoff_Key__c": f"salesforce:{b}:1",
            }
        ],
        method="POST",
    )
    assert results[0]["success"] and results[0]["id"].startswith("00T")
    found = sf.query(
        "SELECT Id, WhoId, Handoff_Key__c FROM Task WHERE Type = 'MQL Handoff' "
        f"AND Handoff_Key__c IN ('salesforce:{a}:1', 'salesforce:{b}:1')"
    )
    assert {r["WhoId"] for r in found["records"]} == {a, b}
    assert [t["Handoff_Key__c"] for t in sb.admin.salesforce_record(a)["tasks"]] == [
        f"salesforce:{a}:1"
    ]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Task.create({"WhoId": "00Q5g0000000000000", "Subject": "x"})


def test_single_record_update_and_get(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    contact = sb.admin.expected("salesforce")["contacts"][0]
    assert sf.Contact.update(contact, {"Fit_Score__c": 12}) == 204
    assert sf.Contact.get(contact)["Fit_Score__c"] == 12.0
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.update(contact, {"SystemModstamp": "2026-01-01T00:00:00Z"})


def test_expired_session_then_a_new_one_from_the_token_endpoint(sb: SandboxHandle) -> None:
    session = sb.new_salesforce_session()
    sf = sb.salesforce_client(session_id=session)
    assert sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    sb.admin.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert err.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    fresh = sb.salesforce_client(session_id=sb.new_salesforce_session())
    assert fresh.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    # Restore the default session for the other tests of the session-scoped sandbox.
    sb.sandbox.credentials.sessions.add(sb.salesforce_session_id)


def test_limits_endpoint_and_usage_header(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert 0 < limits["DailyApiRequests"]["Remaining"] < 100_000
    assert sf.api_usage["api-usage"].used > 0


def test_describe_lists_fields_and_lead_status_values(sb: SandboxHandle) -> None:
    described = sb.salesforce_client().Lead.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["MQL_Score__c"]["updateable"] and fields["MQL_Score__c"]["custom"]
    assert not fields["SystemModstamp"]["updateable"]
    assert "Marketing Qualified" in {v["value"] for v in fields["Status"]["picklistValues"]}


def test_describe_names_relationships_as_the_real_api(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert contact["AccountId"]["relationshipName"] == "Account"
    assert contact["AccountId"]["referenceTo"] == ["Account"]
    assert contact["Email"]["relationshipName"] is None and contact["Email"]["referenceTo"] == []
    task = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task["WhoId"]["relationshipName"] == "Who"
    assert set(task["WhoId"]["referenceTo"]) == {"Contact", "Lead"}
    assert task["WhoId"]["polymorphicForeignKey"] is True


def test_every_soql_relationship_is_described() -> None:
    from sandbox.salesforce_schema import REFERENCES, RELATIONSHIPS

    for sobject, relationships in RELATIONSHIPS.items():
        for name, (target, key) in relationships.items():
            assert REFERENCES[(sobject, key)][0] == name
            assert target in REFERENCES[(sobject, key)][1]


def test_collections_update_takes_id_in_any_case(sb: SandboxHandle) -> None:
    sf = sb.salesforce_client()
    lead = sb.admin.expected("salesforce")["leads"][0]
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Lead"}, "Id": lead, "MQL_Score__c": 7}],
    }
    assert sf.restful("composite/sobjects", method="PATCH", json=body)[0]["success"] is True
    assert sb.admin.salesforce_record(lead)["fields"]["MQL_Score__c"] == 7
