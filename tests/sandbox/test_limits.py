"""Rate limits: HubSpot's rolling 10 s, search per second and daily budget (429 with
policyName and the X-HubSpot-RateLimit headers), Salesforce's daily limit (403)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hubspot.crm.contacts import PublicObjectSearchRequest
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce.exceptions import SalesforceRefusedRequest
from urllib3 import Retry

from sandbox.testing import SandboxHandle, running_sandbox

NO_RETRY = Retry(total=False, redirect=False)


@pytest.fixture(scope="module")
def small() -> Iterator[SandboxHandle]:
    with running_sandbox(contacts=60, seed=5) as handle:
        yield handle


def _search(hs):
    return hs.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(filter_groups=[], limit=1)
    )


def test_ten_secondly_limit_answers_429_with_headers(small: SandboxHandle) -> None:
    small.admin.set_limits(hubspot_per_10s=4, hubspot_daily=1000, hubspot_search_per_s=100)
    hs = small.hubspot_client(retry=NO_RETRY)
    api = hs.crm.contacts.basic_api
    remaining = []
    for _ in range(4):
        _, status, headers = api.get_page_with_http_info(limit=1)
        assert status == 200
        assert headers["X-HubSpot-RateLimit-Max"] == "4"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [3, 2, 1, 0]
    with pytest.raises(ApiException) as err:
        api.get_page(limit=1)
    assert err.value.status == 429
    body = json.loads(err.value.body)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert err.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in err.value.headers
    stats = small.admin.stats()
    assert stats["throttled"] == {"GET /crm/v3/objects/contacts": 1}
    assert stats["throttled_by_policy"] == {"TEN_SECONDLY_ROLLING": 1}


def test_search_has_its_own_per_second_limit(small: SandboxHandle) -> None:
    small.admin.set_limits(hubspot_per_10s=100, hubspot_search_per_s=2)
    hs = small.hubspot_client(retry=NO_RETRY)
    _search(hs)
    _search(hs)
    with pytest.raises(ApiException) as err:
        _search(hs)
    assert err.value.status == 429
    assert json.loads(err.value.body)["policyName"] == "SECONDLY"
    assert int(err.value.headers["Retry-After"]) >= 1
    hs.crm.contacts.basic_api.get_page(limit=1)  # other endpoints are not held back


def test_daily_budget(small: SandboxHandle) -> None:
    small.admin.set_limits(hubspot_per_10s=100, hubspot_daily=2, hubspot_search_per_s=100)
    hs = small.hubspot_client(retry=NO_RETRY)
    hs.crm.contacts.basic_api.get_page(limit=1)
    hs.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.basic_api.get_page(limit=1)
    assert json.loads(err.value.body)["policyName"] == "DAILY"
    assert err.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_salesforce_daily_limit_is_403_request_limit_exceeded(small: SandboxHandle) -> None:
    small.admin.set_limits(salesforce_daily=2)
    sf = small.salesforce_client()
    sf.query("SELECT Id FROM User")
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User")
    assert err.value.status == 403
    assert err.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert small.admin.stats()["throttled_by_policy"]["REQUEST_LIMIT_EXCEEDED"] == 1
