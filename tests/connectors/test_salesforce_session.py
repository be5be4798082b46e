"""Unit tests of the requests-based Salesforce edge cases (responses, no server)."""

from __future__ import annotations

import pytest
import responses

from connectors.config import SalesforceConfig
from connectors.errors import DailyLimitExceeded
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector

BASE = "https://sf.test"
QUERY = f"{BASE}/services/data/v59.0/query/"
FAST = RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_max_s=0.01, max_retry_after_s=0.01)


def _connector() -> SalesforceConnector:
    return SalesforceConnector(
        SalesforceConfig(
            instance_url=BASE,
            session_id="old-session",
            client_id="cid",
            client_secret="very-secret",
            retry=FAST,
            settle_s=0.0,
        )
    )


@responses.activate
def test_expired_session_is_refreshed_once_and_the_new_token_used() -> None:
    responses.get(
        QUERY,
        status=401,
        json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    responses.post(
        f"{BASE}/services/oauth2/token", json={"access_token": "new-session", "instance_url": BASE}
    )
    responses.get(QUERY, json={"done": True, "totalSize": 0, "records": []})
    connector = _connector()
    assert connector.find_tasks(["k1"]) == {}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer old-session"
    assert responses.calls[2].request.headers["Authorization"] == "Bearer new-session"
    assert "client_secret=very-secret" in str(responses.calls[1].request.body)


@responses.activate
def test_daily_limit_stops_cleanly_without_retrying() -> None:
    responses.get(
        QUERY,
        status=403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    with pytest.raises(DailyLimitExceeded) as info:
        _connector().find_tasks(["k1"])
    assert len(responses.calls) == 1
    assert "very-secret" not in str(info.value) and "old-session" not in str(info.value)


@responses.activate
def test_soql_values_are_escaped() -> None:
    responses.get(QUERY, json={"done": True, "totalSize": 0, "records": []})
    _connector().find_tasks(["x' OR Id != '"])
    query = responses.calls[0].request.params["q"]
    assert "IN ('x\\' OR Id != \\'')" in query


@responses.activate
def test_lost_create_is_looked_up_before_resending() -> None:
    from datetime import UTC, datetime

    from connectors.salesforce_org import OrgPlan
    from scoring.records import Crm
    from scoring.writes import HandoffTask, OutcomeStatus, Priority

    connector = _connector()
    # The org check has its own tests against the sandbox: here the org has it all.
    connector._plan = OrgPlan(mapping=connector.mapping)
    responses.post(
        f"{BASE}/services/data/v59.0/composite/sobjects", body=ConnectionResetError("lost")
    )
    responses.get(
        QUERY,
        json={"done": True, "totalSize": 1, "records": [{"Id": "00T1", "Handoff_Key__c": "k1"}]},
    )
    task = HandoffTask(
        crm=Crm.SALESFORCE,
        key="k1",
        contact_id="00Q1",
        owner_id=None,
        subject="s",
        body="b",
        due_at=datetime(2026, 1, 2, tzinfo=UTC),
        priority=Priority.HIGH,
    )
    [outcome] = connector.create_tasks([task])
    assert outcome.status is OutcomeStatus.OK and outcome.crm_object_id == "00T1"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 1
