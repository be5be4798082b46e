"""Each fault kind, seen through the real clients; and seeded rates repeat exactly."""

from __future__ import annotations

import json

import pytest
import requests
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError
from urllib3 import Retry
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from sandbox.faults import FaultRule, parse_spec
from sandbox.testing import SandboxHandle

NO_RETRY = Retry(total=False, redirect=False)
SEARCH = "/crm/v3/objects/contacts/search"
BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"
COLLECTIONS = "/services/data/v59.0/composite/sobjects"


def _search(hs, **kwargs):
    return hs.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(filter_groups=[], limit=1), **kwargs
    )


def _update(hs, ids, value):
    return hs.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=i, properties={"mqlsync_grade": value}) for i in ids
            ]
        )
    )


def test_injected_429_carries_policy_and_retry_after(sb: SandboxHandle) -> None:
    sb.admin.set_faults([{"kind": "429", "count": 1, "path": SEARCH}])
    hs = sb.hubspot_client(retry=NO_RETRY)
    with pytest.raises(ApiException) as err:
        _search(hs)
    assert err.value.status == 429
    assert json.loads(err.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert err.value.headers["Retry-After"] == "1"
    assert _search(hs).total > 0  # count=1: the next one passes


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_on_both_crms(sb: SandboxHandle, status: int) -> None:
    sb.admin.set_faults([{"kind": str(status), "count": 2}])
    hs = sb.hubspot_client(retry=NO_RETRY)
    with pytest.raises(ApiException) as err:
        _search(hs)
    assert err.value.status == status
    sf = sb.salesforce_client()
    with pytest.raises(SalesforceGeneralError) as sf_err:
        sf.query("SELECT Id FROM User")
    assert sf_err.value.status == status
    faulted = sb.admin.stats()["faulted"]
    assert faulted[f"POST {SEARCH}"][str(status)] >= 1


def test_connection_reset_on_both_crms(sb: SandboxHandle) -> None:
    sb.admin.set_faults([{"kind": "reset", "count": 2}])
    hs = sb.hubspot_client(retry=NO_RETRY)
    with pytest.raises(ProtocolError):
        _search(hs)
    with pytest.raises(requests.ConnectionError):
        sb.salesforce_client().query("SELECT Id FROM User")
    assert _search(hs).total > 0


def test_slow_response_passes_a_client_timeout(sb: SandboxHandle) -> None:
    sb.admin.set_faults([{"kind": "slow", "count": 2, "seconds": 1.0}])
    hs = sb.hubspot_client(retry=NO_RETRY)
    with pytest.raises(ReadTimeoutError):
        _search(hs, _request_timeout=0.3)
    with pytest.raises(requests.ReadTimeout):
        sb.salesforce_client().query("SELECT Id FROM User", timeout=0.3)


def test_partial_batch_failure_hubspot(sb: SandboxHandle) -> None:
    ids = sb.admin.expected("hubspot")["contacts"][100:110]
    sb.admin.set_faults([{"kind": "partial", "count": 1, "share": 0.3}], seed=4)
    out = _update(sb.hubspot_client(), ids, "P")
    failed = [i for e in out.errors for i in e.context["ids"]]
    assert len(failed) == 3 and len(out.results) == 7
    assert all(e.category == "INTERNAL_ERROR" for e in out.errors)
    for cid in ids:
        grade = sb.admin.hubspot_contact(cid)["properties"]["mqlsync_grade"]
        assert (grade == "P") == (cid not in failed)


def test_partial_batch_failure_salesforce(sb: SandboxHandle) -> None:
    leads = sb.admin.expected("salesforce")["leads"][100:110]
    sb.admin.set_faults([{"kind": "partial", "count": 1, "share": 0.2}], seed=4)
    results = sb.salesforce_client().restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "id": i, "Score_Grade__c": "P"} for i in leads
            ],
        },
    )
    failed = [r for r in results if not r["success"]]
    assert len(failed) == 2
    assert {r["errors"][0]["statusCode"] for r in failed} == {"UNABLE_TO_LOCK_ROW"}


def test_expired_session_and_token(sb: SandboxHandle) -> None:
    sb.admin.set_faults([{"kind": "expired", "count": 1, "crm": "hubspot"}])
    hs = sb.hubspot_client(retry=NO_RETRY)
    with pytest.raises(ApiException) as err:
        _search(hs)
    assert err.value.status == 401
    assert json.loads(err.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    session = sb.new_salesforce_session()
    sf = sb.salesforce_client(session_id=session)
    sb.admin.set_faults([{"kind": "expired", "count": 1, "crm": "salesforce"}])
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceExpiredSession):  # the session stays expired
        sf.query("SELECT Id FROM User")
    assert sb.salesforce_client().query("SELECT Id FROM User")["totalSize"] > 0


def test_lost_write_lands_but_the_answer_does_not(sb: SandboxHandle) -> None:
    ids = sb.admin.expected("hubspot")["contacts"][120:122]
    sb.admin.set_faults([{"kind": "lost_write", "count": 1, "path": BATCH_UPDATE}])
    with pytest.raises(ProtocolError):
        _update(sb.hubspot_client(retry=NO_RETRY), ids, "L")
    assert all(sb.admin.hubspot_contact(i)["properties"]["mqlsync_grade"] == "L" for i in ids)
    lead = sb.admin.expected("salesforce")["leads"][130]
    sb.admin.set_faults([{"kind": "lost_write", "count": 1, "crm": "salesforce"}])
    sf = sb.salesforce_client()
    with pytest.raises(requests.ConnectionError):
        sf.Task.create({"WhoId": lead, "Type": "MQL Handoff", "Handoff_Key__c": "lost:1"})
    assert [t["Handoff_Key__c"] for t in sb.admin.salesforce_record(lead)["tasks"]] == ["lost:1"]


def test_lost_write_skips_reads(sb: SandboxHandle) -> None:
    sb.admin.set_faults([{"kind": "lost_write", "count": 1}])
    assert _search(sb.hubspot_client()).total > 0  # a search is a POST but not a write
    assert "lost_write" not in sb.admin.stats()["faulted"].get(f"POST {SEARCH}", {})


def test_seeded_rates_repeat(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client(retry=NO_RETRY)

    def pattern() -> list[int]:
        out = []
        for _ in range(20):
            try:
                _search(hs)
                out.append(200)
            except ApiException as exc:
                out.append(exc.status)
        return out

    sb.admin.set_faults([{"kind": "503", "rate": 0.3}, {"kind": "500", "rate": 0.2}], seed=9)
    first = pattern()
    sb.admin.set_faults([{"kind": "503", "rate": 0.3}, {"kind": "500", "rate": 0.2}], seed=9)
    assert pattern() == first
    assert {200, 500, 503} <= set(first)


def test_fault_spec_string() -> None:
    rules, seed = parse_spec("500=0.02,reset=x3@/services/,seed=7,slow_seconds=2.5")
    assert seed == 7
    assert rules[0] == FaultRule("500", rate=0.02, seconds=2.5)
    assert rules[1] == FaultRule("reset", count=3, path="/services/", seconds=2.5)
    with pytest.raises(ValueError):
        parse_spec("teapot=0.1")
