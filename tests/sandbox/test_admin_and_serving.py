"""The admin API, authentication, and serving from a `python -m sandbox` subprocess."""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce.exceptions import SalesforceExpiredSession

from sandbox.testing import SandboxHandle, sandbox_process


def test_request_counts_per_endpoint_and_method_and_reset(sb: SandboxHandle) -> None:
    sb.admin.reset()
    hs = sb.hubspot_client()
    cid = sb.admin.expected("hubspot")["contacts"][0]
    hs.crm.contacts.basic_api.get_page(limit=5)
    hs.crm.contacts.basic_api.get_by_id(cid)
    sb.salesforce_client().query("SELECT Id FROM User")
    stats = sb.admin.stats()
    assert stats["requests"] == {
        "GET /crm/v3/objects/contacts": 1,
        "GET /crm/v3/objects/contacts/{id}": 1,
        "GET /services/data/v59.0/query": 1,
    }
    assert set(stats["server_seconds"]) == set(stats["requests"])
    assert stats["totals"] == {"requests": 3, "throttled": 0, "faulted": 0}
    sb.admin.reset()
    assert sb.admin.stats()["totals"]["requests"] == 0


def test_faults_can_be_read_back_and_bad_rules_are_refused(sb: SandboxHandle) -> None:
    described = sb.admin.set_faults([{"kind": "503", "rate": 0.5, "path": "/services/"}], seed=3)
    assert described["seed"] == 3 and described["rules"][0]["kind"] == "503"
    with pytest.raises(Exception, match="400"):
        sb.admin.set_faults([{"kind": "teapot", "count": 1}])


def test_wrong_credentials_are_refused_as_each_crm_does(sb: SandboxHandle) -> None:
    hs = HubSpot(access_token="wrong", host=sb.base_url, ssl_ca_cert=sb.ca_file)
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.basic_api.get_page(limit=1)
    assert err.value.status == 401
    assert json.loads(err.value.body)["category"] == "INVALID_AUTHENTICATION"
    with pytest.raises(SalesforceExpiredSession) as sf_err:
        sb.salesforce_client(session_id="nope").query("SELECT Id FROM User")
    assert sf_err.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_info_reports_where_and_how_much(sb: SandboxHandle) -> None:
    info = sb.admin.info()
    assert info["base_url"] == sb.base_url and info["ca_file"] == sb.ca_file
    assert info["counts"]["people"] == 1200
    assert info["spec"]["seed"] == 11


def test_served_from_a_subprocess_like_the_cli() -> None:
    with sandbox_process(contacts=80, seed=2, faults="500=x1@/services/") as proc:
        hs = proc.hubspot_client()
        assert len(hs.crm.contacts.basic_api.get_page(limit=100).results) > 0
        sf = proc.salesforce_client()
        with pytest.raises(Exception, match="500"):
            sf.query("SELECT Id FROM User")  # the --faults spec applies
        assert sf.query("SELECT Id FROM User")["totalSize"] > 0
        assert proc.admin.info()["counts"]["people"] == 80
