"""Salesforce limits over real HTTPS against the sandbox: the api-usage header of every
answer, the run's share of the daily budget, the daily limit, and the concurrent-request
limit that shares its error code but passes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce.api import Salesforce

from connectors.config import SalesforceConfig
from connectors.errors import DailyLimitExceeded, RetriableError, RunBudgetSpent
from connectors.retry import Redactor, RetryPolicy, classify
from connectors.salesforce_session import SalesforceSession, parse_api_usage
from connectors.throttle import Throttle, TokenBucket
from tests.connectors.conftest import FAST, TEST_RETRY

QUERY = "GET /services/data/v59.0/query"
LEADS = "SELECT Id FROM Lead LIMIT 1"


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=30, seed=6, salesforce_daily=1000) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh(sb: Any) -> Iterator[None]:
    sb.admin.clear_faults()
    sb.admin.set_limits(salesforce_daily=1000)
    sb.admin.reset()  # the request counts and the day's use
    yield
    sb.admin.clear_faults()


def session_for(sb: Any, retry: RetryPolicy = TEST_RETRY, **fields: Any) -> SalesforceSession:
    config = SalesforceConfig(
        login_url=sb.base_url,
        client_id=sb.salesforce_client_id,
        client_secret=sb.salesforce_client_secret,
        ca_file=sb.ca_file,
        timeout_s=5.0,
        throttle=FAST,
        retry=retry,
        **fields,
    )
    throttle = Throttle({"default": TokenBucket(FAST.rate, FAST.burst)})
    return SalesforceSession(config, throttle, Redactor())


def client(session: SalesforceSession) -> Salesforce:
    return Salesforce(
        instance_url=session.instance_url(), session_id="pending", version="59.0", session=session
    )


def queries(sb: Any) -> int:
    return int(sb.admin.stats()["requests"].get(QUERY, 0))


def test_api_usage_is_read_from_every_answer(sb: Any) -> None:
    session = session_for(sb)
    assert session.api_usage is None
    sf = client(session)
    assert session.api_usage is None  # the token answer carries none
    sf.query(LEADS)
    assert session.api_usage == (1, 1000)
    sf.query(LEADS)
    assert session.api_usage == (2, 1000)


def test_the_header_is_parsed_beside_other_usages() -> None:
    assert parse_api_usage("api-usage=18/5000") == (18, 5000)
    assert parse_api_usage("api-usage=10018/100000; api-bursts=1/750") == (10018, 100000)
    assert parse_api_usage("per-app-api-usage=17/250(appName=x); api-usage=25/5000") == (
        25,
        5000,
    )
    assert parse_api_usage("per-app-api-usage=17/250(appName=x)") is None
    assert parse_api_usage(None) is None


def test_the_budget_guard_stops_the_run_at_its_share_of_the_daily_limit(sb: Any) -> None:
    sb.admin.set_limits(salesforce_daily=20)
    session = session_for(sb, daily_budget_share=0.5)
    sf = client(session)
    for _ in range(10):
        sf.query(LEADS)
    assert session.api_usage == (10, 20)
    with pytest.raises(RunBudgetSpent) as info:
        sf.query(LEADS)
    text = str(info.value)
    assert "50%" in text and "10 of its 20" in text
    assert "cursors kept" in text and "next run" in text
    assert isinstance(info.value, DailyLimitExceeded)  # a run stops as on the daily limit
    assert queries(sb) == 10  # nothing was sent past the share


def test_a_share_of_one_leaves_it_to_salesforce_and_the_daily_limit_stops_cleanly(
    sb: Any,
) -> None:
    sb.admin.set_limits(salesforce_daily=3)
    session = session_for(sb, daily_budget_share=1.0)
    sf = client(session)
    for _ in range(3):
        sf.query(LEADS)
    started = time.monotonic()
    with pytest.raises(DailyLimitExceeded) as info:
        sf.query(LEADS)
    assert not isinstance(info.value, RunBudgetSpent)
    assert "TotalRequests" in str(info.value) and "REQUEST_LIMIT_EXCEEDED" in str(info.value)
    assert queries(sb) == 4  # not retried
    assert time.monotonic() - started < 1.0
    assert session.api_usage == (3, 3)  # read from the error answer too


def test_a_concurrent_request_limit_is_retried_then_succeeds(sb: Any) -> None:
    sb.admin.set_faults([{"kind": "concurrent", "path": "/services/data/v59.0/query", "count": 2}])
    session = session_for(sb)
    result = client(session).query(LEADS)
    assert result["totalSize"] == 1
    assert queries(sb) == 3  # two refused while the org was busy, then served
    faulted = sb.admin.stats()["faulted"]
    assert sum(faulted.get(QUERY, {}).values()) == 2


def test_a_concurrent_limit_that_lasts_gives_up_as_retriable(sb: Any) -> None:
    sb.admin.set_faults([{"kind": "concurrent", "path": "/services/data/v59.0/query", "count": 10}])
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    session = session_for(sb, retry=policy)
    with pytest.raises(RetriableError) as info:
        client(session).query(LEADS)
    assert "ConcurrentPerOrgLongTxn" in str(info.value)
    assert queries(sb) == 3


def test_the_two_request_limit_answers_are_told_apart_by_their_message() -> None:
    from connectors.errors import ConnectorError

    def answer(message: str) -> ConnectorError | None:
        from simple_salesforce.exceptions import SalesforceGeneralError

        body = json.dumps([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": message}])
        return classify(SalesforceGeneralError("url", 403, "query", body.encode()))

    assert isinstance(answer("TotalRequests Limit exceeded."), DailyLimitExceeded)
    assert isinstance(answer("ConcurrentPerOrgLongTxn Limit exceeded."), RetriableError)
    concurrent_api = "ConcurrentRequests (Concurrent API Requests) Limit exceeded"
    assert isinstance(answer(concurrent_api), RetriableError)
