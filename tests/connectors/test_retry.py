from __future__ import annotations

import json

import pytest
import requests
import urllib3
from hubspot.crm.contacts.exceptions import ApiException  # type: ignore[import-untyped]
from simple_salesforce.exceptions import SalesforceRefusedRequest

from connectors.errors import (
    AmbiguousWriteError,
    AuthExpired,
    DailyLimitExceeded,
    FatalError,
    RetriableError,
)
from connectors.retry import (
    MAX_REPLACED_AUTH,
    Redactor,
    RetryPolicy,
    call_with_retry,
    classify,
)

FAST = RetryPolicy(max_attempts=4, backoff_base_s=0.001, backoff_max_s=0.01, max_retry_after_s=0.01)


class _Resp:
    def __init__(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.reason = "x"
        self.data = json.dumps(body).encode()
        self._headers = headers or {}

    def getheaders(self) -> dict[str, str]:
        return self._headers


def _hubspot(status: int, body: object, headers: dict[str, str] | None = None) -> ApiException:
    return ApiException(http_resp=_Resp(status, body, headers))


def _http_error(
    status: int, body: object, headers: dict[str, str] | None = None
) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    response.url = "https://127.0.0.1/services/data/v59.0/query?q=SELECT"
    response.request = requests.Request("GET", response.url).prepare()
    return requests.HTTPError(response=response)


def test_classification() -> None:
    limited = classify(_hubspot(429, {"policyName": "TEN_SECONDLY_ROLLING"}, {"Retry-After": "2"}))
    assert isinstance(limited, RetriableError) and limited.retry_after == 2.0
    assert isinstance(classify(_hubspot(429, {"policyName": "DAILY"})), DailyLimitExceeded)
    assert isinstance(classify(_hubspot(502, "<html>")), RetriableError)
    assert isinstance(classify(_hubspot(400, {"category": "VALIDATION_ERROR"})), FatalError)
    assert isinstance(classify(_hubspot(401, {"category": "INVALID_AUTHENTICATION"})), AuthExpired)
    daily = classify(
        _http_error(
            403,
            [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
        )
    )
    assert isinstance(daily, DailyLimitExceeded) and "daily" in daily.message
    limit = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "m"}]
    sf = SalesforceRefusedRequest("u", 403, "query", limit)  # type: ignore[arg-type]
    assert isinstance(classify(sf), DailyLimitExceeded)
    reset = classify(urllib3.exceptions.ProtocolError("Connection aborted"))
    assert isinstance(reset, RetriableError) and reset.transport
    assert isinstance(classify(requests.ReadTimeout()), RetriableError)
    assert classify(KeyError("x")) is None
    failed = classify(_http_error(500, {}))
    assert failed is not None and "q=" not in failed.message  # no SOQL (customer data)


def test_retries_retriable_then_succeeds() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _hubspot(503, "busy")
        return "ok"

    assert call_with_retry(flaky, policy=FAST, redact=Redactor()) == "ok"
    assert len(calls) == 3


def test_fatal_is_not_retried_and_gives_up_after_max_attempts() -> None:
    calls = []

    def bad() -> None:
        calls.append(1)
        raise _hubspot(400, {"message": "Property values were not valid"})

    with pytest.raises(FatalError, match="not valid"):
        call_with_retry(bad, policy=FAST, redact=Redactor())
    assert len(calls) == 1
    calls.clear()

    def down() -> None:
        calls.append(1)
        raise _hubspot(500, "down")

    with pytest.raises(RetriableError):
        call_with_retry(down, policy=FAST, redact=Redactor())
    assert len(calls) == FAST.max_attempts


def test_401_refreshes_then_retries_within_the_budget() -> None:
    refreshed = []
    calls = []

    def refresh() -> bool:
        refreshed.append(1)
        return True  # a new token fetched

    def expired_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise _hubspot(401, {"message": "expired"})
        return "ok"

    assert (
        call_with_retry(expired_once, policy=FAST, redact=Redactor(), refresh_auth=refresh) == "ok"
    )
    assert refreshed == [1]

    def always_expired() -> None:
        raise _hubspot(401, {"message": "expired"})

    refreshed.clear()
    with pytest.raises(AuthExpired):
        call_with_retry(always_expired, policy=FAST, redact=Redactor(), refresh_auth=refresh)
    # Bounded by the attempt budget, never a loop.
    assert len(refreshed) == FAST.max_attempts
    with pytest.raises(AuthExpired):
        call_with_retry(always_expired, policy=FAST, redact=Redactor())


@pytest.mark.parametrize("renewed", [True, False])
def test_a_401_for_a_token_replaced_in_flight_costs_no_attempt(renewed: bool) -> None:
    """Requests in flight together all see one expiry: the one that renews spends an
    attempt on it, the others (their refresh finds the token already replaced) do not."""
    calls = []

    def expired_budget_times() -> str:
        calls.append(1)
        if len(calls) <= FAST.max_attempts:
            raise _hubspot(401, {"message": "expired"})
        return "ok"

    def refresh() -> bool:
        return renewed

    if renewed:
        with pytest.raises(AuthExpired):
            call_with_retry(
                expired_budget_times, policy=FAST, redact=Redactor(), refresh_auth=refresh
            )
        assert len(calls) == FAST.max_attempts
    else:
        assert (
            call_with_retry(
                expired_budget_times, policy=FAST, redact=Redactor(), refresh_auth=refresh
            )
            == "ok"
        )
        assert len(calls) == FAST.max_attempts + 1


def test_free_sends_after_replaced_tokens_are_still_bounded() -> None:
    calls = []

    def always_expired() -> None:
        calls.append(1)
        raise _hubspot(401, {"message": "expired"})

    with pytest.raises(AuthExpired):
        call_with_retry(always_expired, policy=FAST, redact=Redactor(), refresh_auth=lambda: False)
    assert len(calls) == MAX_REPLACED_AUTH + FAST.max_attempts


def test_creates_are_not_resent_after_transport_failure() -> None:
    calls = []

    def lost() -> None:
        calls.append(1)
        raise requests.ConnectionError("reset by peer")

    with pytest.raises(AmbiguousWriteError):
        call_with_retry(lost, policy=FAST, redact=Redactor(), idempotent=False)
    assert len(calls) == 1


def test_secrets_never_appear_in_errors() -> None:
    def leaky() -> None:
        raise _hubspot(400, {"message": "bad token pat-na1-SECRET123"})

    with pytest.raises(FatalError) as info:
        call_with_retry(leaky, policy=FAST, redact=Redactor(["pat-na1-SECRET123"]))
    assert "SECRET123" not in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_create_answered_with_a_5xx_is_not_resent_but_looked_up(status: int) -> None:
    calls = []

    def create() -> None:
        calls.append(1)
        raise _hubspot(status, {"category": "INTERNAL_ERROR", "message": "oops"})

    with pytest.raises(AmbiguousWriteError, match=str(status)):
        call_with_retry(create, policy=FAST, redact=Redactor(), idempotent=False)
    assert len(calls) == 1


def test_a_create_refused_with_429_is_sent_again() -> None:
    calls = []

    def create() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _hubspot(429, {"policyName": "TEN_SECONDLY_ROLLING"})
        return "created"

    assert call_with_retry(create, policy=FAST, redact=Redactor(), idempotent=False) == "created"
    assert len(calls) == 3


def test_a_refusal_keeps_the_context_hubspot_sent() -> None:
    refused = classify(
        _hubspot(
            400,
            {
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid",
                "context": {"ids": ["101"]},
            },
        )
    )
    assert isinstance(refused, FatalError) and refused.context == {"ids": ["101"]}
