"""The HubSpot sandbox is as strict as HubSpot: whole-batch validation, a backward
lifecycle set ignored, lifecycle stage dates (read-only, stamped by a stage set), search
lagging writes, search request limits, rate-limit headers.

Over real HTTPS with `requests` (to see status codes, bodies and headers as sent) and
hubspot-api-client where the client's own handling matters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hubspot.crm.contacts import (  # type: ignore[import-untyped]
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
)

from sandbox.clock import hubspot_iso
from sandbox.testing import SandboxHandle, running_sandbox, trusting_session

TASK_TO_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Secondly",
    "X-HubSpot-RateLimit-Secondly-Remaining",
)


class Api:
    """Plain JSON calls to the sandbox's HubSpot paths with a bearer token."""

    def __init__(self, sb: SandboxHandle, token: str | None = None) -> None:
        self.base = sb.base_url
        self.http = trusting_session(sb.ca_file)
        self.http.headers["Authorization"] = f"Bearer {token or sb.hubspot_token}"

    def post(self, path: str, body: Any) -> requests.Response:
        return self.http.post(self.base + path, json=body, timeout=30)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base + path, params=params or None, timeout=30)


@pytest.fixture
def api(sb: SandboxHandle) -> Api:
    return Api(sb)


def _task(contact_id: str, key: str, **props: str) -> dict[str, Any]:
    return {
        "properties": {
            "hs_task_subject": "MQL: follow up",
            "hs_timestamp": "2026-11-25T09:00:00Z",
            "hs_task_priority": "HIGH",
            "mqlsync_handoff_key": key,
            **props,
        },
        "associations": [{"to": {"id": contact_id}, "types": TASK_TO_CONTACT}],
    }


def _contacts(sb: SandboxHandle, start: int, count: int) -> list[str]:
    return list(sb.admin.expected("hubspot")["contacts"][start : start + count])


def _assert_validation_error(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert body["correlationId"] and body["message"]
    return dict(body)


def _task_keys(sb: SandboxHandle) -> set[str]:
    return {t["properties"].get("mqlsync_handoff_key") for t in sb.admin.hubspot_tasks()}


# -- whole-batch validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "code", "where"),
    [
        ({"hs_task_priority": "URGENT"}, "INVALID_OPTION", "properties.hs_task_priority"),
        ({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST", "properties.no_such_property"),
    ],
)
def test_task_batch_create_fails_whole_for_one_bad_property(
    sb: SandboxHandle, api: Api, bad: dict[str, str], code: str, where: str
) -> None:
    cids = _contacts(sb, 300, 3)
    keys = [f"strict:{code}:{c}" for c in cids]
    inputs = [_task(c, k) for c, k in zip(cids, keys, strict=True)]
    inputs[1]["properties"].update(bad)
    body = _assert_validation_error(
        api.post("/crm/v3/objects/tasks/batch/create", {"inputs": inputs})
    )
    assert "inputs[1]" in body["message"] and next(iter(bad)) in body["message"]
    assert body["context"] == {"inputs": ["1"]}
    assert [(e["code"], e["in"]) for e in body["errors"]] == [(code, f"inputs[1].{where}")]
    assert not set(keys) & _task_keys(sb)  # nothing was created, not even the good inputs


def test_task_batch_create_fails_whole_for_an_archived_contact(sb: SandboxHandle, api: Api) -> None:
    archived = sb.admin.expected("hubspot")["archived_contacts"][0]
    live = _contacts(sb, 305, 1)[0]
    inputs = [_task(live, "strict:assoc:live"), _task(archived, "strict:assoc:archived")]
    body = _assert_validation_error(
        api.post("/crm/v3/objects/tasks/batch/create", {"inputs": inputs})
    )
    assert archived in body["message"] and "inputs[1]" in body["message"]
    assert body["errors"][0]["code"] == "INVALID_ASSOCIATION"
    assert body["errors"][0]["in"] == "inputs[1].associations"
    assert not {"strict:assoc:live", "strict:assoc:archived"} & _task_keys(sb)


@pytest.fixture
def inactive_owner(sb: SandboxHandle) -> Iterator[str]:
    owner = sb.admin.hubspot_contact(_contacts(sb, 310, 1)[0])["properties"]["hubspot_owner_id"]
    sb.admin.set_hubspot_owner_active(owner, False)
    yield str(owner)
    sb.admin.set_hubspot_owner_active(owner, True)


def test_an_inactive_owner_fails_the_whole_batch(
    sb: SandboxHandle, api: Api, inactive_owner: str
) -> None:
    listed = {o["id"] for o in api.get("/crm/v3/owners").json()["results"]}
    archived = api.get("/crm/v3/owners", archived="true").json()["results"]
    assert inactive_owner not in listed
    assert [(o["id"], o["archived"]) for o in archived] == [(inactive_owner, True)]

    a, b = _contacts(sb, 311, 2)
    inputs = [
        _task(a, "strict:owner:a"),
        _task(b, "strict:owner:b", hubspot_owner_id=inactive_owner),
    ]
    body = _assert_validation_error(
        api.post("/crm/v3/objects/tasks/batch/create", {"inputs": inputs})
    )
    assert body["errors"][0]["code"] == "INVALID_OWNER_ID"
    assert inactive_owner in body["message"] and "hubspot_owner_id" in body["message"]
    assert not {"strict:owner:a", "strict:owner:b"} & _task_keys(sb)

    before = sb.admin.hubspot_contact(a)["properties"]["mqlsync_grade"]
    update = [
        {"id": a, "properties": {"mqlsync_grade": "A"}},
        {"id": b, "properties": {"hubspot_owner_id": inactive_owner}},
    ]
    body = _assert_validation_error(
        api.post("/crm/v3/objects/contacts/batch/update", {"inputs": update})
    )
    assert body["errors"][0]["in"] == "inputs[1].properties.hubspot_owner_id"
    assert sb.admin.hubspot_contact(a)["properties"]["mqlsync_grade"] == before


def test_contact_batch_update_fails_whole_for_one_bad_option(sb: SandboxHandle, api: Api) -> None:
    a, b, c = _contacts(sb, 315, 3)
    before = {i: sb.admin.hubspot_contact(i)["properties"]["mqlsync_grade"] for i in (a, b)}
    update = [
        {"id": a, "properties": {"mqlsync_grade": "A"}},
        {"id": b, "properties": {"mqlsync_grade": "B"}},
        {"id": c, "properties": {"hs_lead_status": "SOMETHING_ELSE", "lifecyclestage": "nope"}},
    ]
    body = _assert_validation_error(
        api.post("/crm/v3/objects/contacts/batch/update", {"inputs": update})
    )
    assert body["message"].startswith("Invalid input at inputs[2]: Property values were not valid")
    assert {e["in"] for e in body["errors"]} == {
        "inputs[2].properties.hs_lead_status",
        "inputs[2].properties.lifecyclestage",
    }
    assert {i: sb.admin.hubspot_contact(i)["properties"]["mqlsync_grade"] for i in (a, b)} == before


def test_contact_batch_update_reports_missing_ids_as_207_and_writes_the_rest(
    sb: SandboxHandle, api: Api
) -> None:
    a = _contacts(sb, 320, 1)[0]
    archived = sb.admin.expected("hubspot")["archived_contacts"][0]
    update = [
        {"id": a, "properties": {"mqlsync_reasons": "strict 207"}},
        {"id": archived, "properties": {"mqlsync_reasons": "strict 207"}},
        {"id": "999", "properties": {"mqlsync_reasons": "strict 207"}},
    ]
    resp = api.post("/crm/v3/objects/contacts/batch/update", {"inputs": update})
    assert resp.status_code == 207
    body = resp.json()
    assert [r["id"] for r in body["results"]] == [a]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"ids": [archived, "999"]}
    assert sb.admin.hubspot_contact(a)["properties"]["mqlsync_reasons"] == "strict 207"


def test_a_backward_stage_in_a_single_update_answers_200_unchanged(sb: SandboxHandle) -> None:
    cid = _contacts(sb, 325, 1)[0]
    contacts = sb.hubspot_client().crm.contacts.basic_api

    def patch(props: dict[str, str]) -> Any:
        return contacts.update(cid, simple_public_object_input=SimplePublicObjectInput(props))

    patch({"lifecyclestage": "opportunity"})
    stamp = sb.admin.hubspot_contact(cid)["properties"]["lastmodifieddate"]
    out = patch({"lifecyclestage": "marketingqualifiedlead"})
    assert out.properties["lifecyclestage"] == "opportunity"
    # Nothing changed, so nothing was written.
    assert sb.admin.hubspot_contact(cid)["properties"]["lastmodifieddate"] == stamp


# -- lifecycle stage dates ----------------------------------------------------------------

DATES = {
    stage: f"hs_lifecyclestage_{stage}_date"
    for stage in ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")
}


def _at_stage(sb: SandboxHandle, stage: str, count: int = 1) -> list[str]:
    """Live contacts generated at `stage`, from the tests' own range (400 on)."""
    hs_ids = set(_contacts(sb, 400, 200))
    assert sb.sandbox is not None
    found = [
        str(100_001 + p.index)
        for p in sb.sandbox.population.people
        if p.stage == stage and str(100_001 + p.index) in hs_ids
    ]
    assert len(found) >= count, stage
    return found[:count]


def test_reads_return_the_lifecycle_stage_dates(sb: SandboxHandle, api: Api) -> None:
    assert sb.sandbox is not None
    as_of = sb.sandbox.population.spec.as_of_ms
    customer, sql, mql, lead, subscriber = (
        _at_stage(sb, s)[0]
        for s in ("customer", "salesqualifiedlead", "marketingqualifiedlead", "lead", "subscriber")
    )
    ids = [customer, sql, mql, lead, subscriber]
    names = ["createdate", "lifecyclestage", *DATES.values()]
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": ids}]}
        ],
        "properties": names,
    }
    resp = api.post("/crm/v3/objects/contacts/search", body)
    assert resp.status_code == 200, resp.text
    found = {r["id"]: r["properties"] for r in resp.json()["results"]}
    assert set(found) == set(ids)
    people = {str(100_001 + p.index): p for p in sb.sandbox.population.people}
    for cid, props in found.items():
        p = people[cid]
        assert props["lifecyclestage"] == p.stage
        expected = {
            "subscriber": props["createdate"] if p.stage == "subscriber" else None,
            "lead": None if p.stage == "subscriber" else props["createdate"],
            "marketingqualifiedlead": p.mql_at_ms and hubspot_iso(p.mql_at_ms),
            "salesqualifiedlead": p.sql_at_ms and p.sql_at_ms < as_of and hubspot_iso(p.sql_at_ms),
            "customer": p.customer_at_ms and hubspot_iso(p.customer_at_ms),
        }
        assert {n: props[n] for n in DATES.values()} == {
            DATES[stage]: value or None for stage, value in expected.items()
        }, cid
    # HubSpot's datetime format, in order.
    c = found[customer]
    assert c[DATES["customer"]].endswith("Z")
    assert (
        c[DATES["lead"]]
        < c[DATES["marketingqualifiedlead"]]
        < c[DATES["salesqualifiedlead"]]
        < c[DATES["customer"]]
    )
    # Batch read and read by id answer the same values.
    read = api.post(
        "/crm/v3/objects/contacts/batch/read",
        {"inputs": [{"id": i} for i in ids], "properties": names},
    ).json()
    assert {r["id"]: r["properties"] for r in read["results"]} == found
    one = api.get(f"/crm/v3/objects/contacts/{sql}", properties=",".join(names)).json()
    assert one["properties"] == found[sql]
    # Search filters on them like on any datetime.
    since = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_object_id", "operator": "IN", "values": ids},
                    {"propertyName": DATES["salesqualifiedlead"], "operator": "HAS_PROPERTY"},
                ]
            }
        ]
    }
    hits = api.post("/crm/v3/objects/contacts/search", since).json()["results"]
    assert {r["id"] for r in hits} == {customer, sql}


def test_a_stage_write_stamps_its_date_once(sb: SandboxHandle, api: Api) -> None:
    cid = _at_stage(sb, "lead", 2)[1]
    names = ["lastmodifieddate", "createdate", *DATES.values()]

    def patch(stage: str) -> dict[str, Any]:
        resp = api.http.patch(
            f"{api.base}/crm/v3/objects/contacts/{cid}",
            json={"properties": {"lifecyclestage": stage}},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        got = api.get(f"/crm/v3/objects/contacts/{cid}", properties=",".join(names)).json()
        return dict(got["properties"])

    before = patch("lead")
    assert before[DATES["marketingqualifiedlead"]] is None
    mql = patch("marketingqualifiedlead")
    assert mql[DATES["marketingqualifiedlead"]] == mql["lastmodifieddate"]
    assert mql[DATES["lead"]] == before[DATES["lead"]] == before["createdate"]
    # A skipped stage gets no date; the one set does.
    customer = patch("customer")
    assert customer[DATES["salesqualifiedlead"]] is None
    assert customer[DATES["customer"]] == customer["lastmodifieddate"]
    assert customer[DATES["marketingqualifiedlead"]] == mql[DATES["marketingqualifiedlead"]]
    # Back through a cleared stage: the first entry's date stays.
    patch("")
    again = patch("marketingqualifiedlead")
    assert again[DATES["marketingqualifiedlead"]] == mql[DATES["marketingqualifiedlead"]]
    assert again[DATES["customer"]] == customer[DATES["customer"]]
    # A backward set is ignored, and stamps nothing.
    patch("salesqualifiedlead")
    stamped = patch("lead")
    assert stamped[DATES["lead"]] == before[DATES["lead"]]


def test_lifecycle_stage_dates_are_read_only(sb: SandboxHandle, api: Api) -> None:
    cid, other = _at_stage(sb, "lead", 4)[2:4]
    date = DATES["salesqualifiedlead"]
    before = sb.admin.hubspot_contact(cid)["properties"]
    for name in (date, "createdate", "hs_object_id"):
        resp = api.http.patch(
            f"{api.base}/crm/v3/objects/contacts/{cid}",
            json={"properties": {name: "2026-10-01T00:00:00Z"}},
            timeout=30,
        )
        body = _assert_validation_error(resp)
        assert [(e["code"], e["context"]) for e in body["errors"]] == [
            ("READ_ONLY_VALUE", {"propertyName": [name]})
        ]
    update = [
        {"id": other, "properties": {"mqlsync_grade": "A"}},
        {"id": cid, "properties": {"lifecyclestage": "salesqualifiedlead", date: "0"}},
    ]
    body = _assert_validation_error(
        api.post("/crm/v3/objects/contacts/batch/update", {"inputs": update})
    )
    assert [e["in"] for e in body["errors"]] == [f"inputs[1].properties.{date}"]
    assert sb.admin.hubspot_contact(cid)["properties"] == before
    assert sb.admin.hubspot_contact(other)["properties"]["mqlsync_grade"] is None


def test_the_properties_api_lists_the_lifecycle_stage_dates(api: Api) -> None:
    listed = {p["name"]: p for p in api.get("/crm/v3/properties/contacts").json()["results"]}
    for stage in (*DATES, "opportunity", "evangelist", "other"):
        prop = listed[f"hs_lifecyclestage_{stage}_date"]
        assert prop["type"] == "datetime" and prop["fieldType"] == "date"
        assert prop["modificationMetadata"]["readOnlyValue"] is True
        assert prop["hubspotDefined"] is True
    one = api.get("/crm/v3/properties/contacts/hs_lifecyclestage_salesqualifiedlead_date").json()
    assert one["label"] == "Became a Sales Qualified Lead Date"


# -- search request limits ----------------------------------------------------------------


def _flt(i: int) -> dict[str, str]:
    return {"propertyName": "hs_object_id", "operator": "GT", "value": str(i)}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"sorts": [{"propertyName": "createdate"}, {"propertyName": "email"}]},
            "one sorting rule",
        ),
        ({"filterGroups": [{"filters": [_flt(1)]}] * 6}, "5 filterGroups"),
        ({"filterGroups": [{"filters": [_flt(i) for i in range(7)]}]}, "6 filters in each group"),
        (
            {
                "filterGroups": [{"filters": [_flt(i) for i in range(6)]}] * 3
                + [{"filters": [_flt(0)]}]
            },
            "18 filters in total",
        ),
        ({"limit": 201}, "200"),
        ({"after": "9900", "limit": 200}, "10000"),
        ({"after": "abc"}, "integers"),
        ({"query": "x" * 3001}, "3000 characters"),
    ],
)
def test_search_refuses_requests_over_the_limits(
    api: Api, body: dict[str, Any], words: str
) -> None:
    for path in ("contacts", "tasks", "meetings"):
        error = _assert_validation_error(api.post(f"/crm/v3/objects/{path}/search", body))
        assert words in error["message"], error["message"]


def test_search_accepts_requests_at_the_limits(api: Api) -> None:
    at_limits = {
        "filterGroups": [{"filters": [_flt(i) for i in range(6)]}] * 3,
        "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
        "limit": 200,
        "after": "9800",
    }
    for path in ("contacts", "tasks", "meetings"):
        resp = api.post(f"/crm/v3/objects/{path}/search", at_limits)
        assert resp.status_code == 200, resp.text


# -- rate-limit headers -------------------------------------------------------------------


def test_rate_limit_headers_on_everything_but_search(sb: SandboxHandle, api: Api) -> None:
    cid = _contacts(sb, 330, 1)[0]
    for resp in (api.get(f"/crm/v3/objects/contacts/{cid}"), api.get("/crm/v3/owners")):
        assert resp.status_code == 200
        assert all(h in resp.headers for h in RATE_HEADERS), dict(resp.headers)
        assert resp.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    search = api.post("/crm/v3/objects/contacts/search", {"limit": 1})
    assert search.status_code == 200
    assert not [h for h in search.headers if h.lower().startswith("x-hubspot-ratelimit")]


def test_oauth_answers_carry_no_daily_headers(sb: SandboxHandle) -> None:
    token = (
        trusting_session(sb.ca_file)
        .post(
            sb.base_url + "/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": sb.hubspot_client_id,
                "client_secret": sb.hubspot_client_secret,
                "refresh_token": sb.hubspot_refresh_token,
            },
            timeout=30,
        )
        .json()["access_token"]
    )
    resp = Api(sb, token).get("/crm/v3/owners")
    assert resp.status_code == 200
    assert "X-HubSpot-RateLimit-Max" in resp.headers
    assert "X-HubSpot-RateLimit-Daily" not in resp.headers
    assert "X-HubSpot-RateLimit-Daily-Remaining" not in resp.headers


# -- search lags writes -------------------------------------------------------------------

LAG_S = 5.0


@pytest.fixture(scope="module")
def lagging() -> Iterator[SandboxHandle]:
    with running_sandbox(contacts=60, seed=5, search_lag_s=LAG_S, hubspot_search_per_s=1000) as sb:
        yield sb


def _eventually(found: Callable[[], bool], timeout_s: float) -> float:
    """Poll until `found()`; the seconds it took (fails past the deadline)."""
    started = time.monotonic()
    while not found():
        assert time.monotonic() - started < timeout_s, "search never saw the write"
        time.sleep(0.2)
    return time.monotonic() - started


def test_search_sees_a_contact_update_only_after_the_lag(lagging: SandboxHandle) -> None:
    hs = lagging.hubspot_client()
    api = Api(lagging)
    cid = lagging.admin.expected("hubspot")["contacts"][3]
    marker = f"lag-{time.time_ns()}"
    old_stamp = lagging.admin.hubspot_contact(cid)["properties"]["lastmodifieddate"]

    def search(prop: str, op: str, value: str) -> dict[str, Any]:
        body = {
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": op, "value": value}]}],
            "properties": ["mqlsync_reasons", "lastmodifieddate"],
        }
        return dict(api.post("/crm/v3/objects/contacts/search", body).json())

    written = time.monotonic()
    hs.crm.contacts.basic_api.update(
        cid, simple_public_object_input=SimplePublicObjectInput({"mqlsync_reasons": marker})
    )
    # Reads by id see the write at once...
    got = hs.crm.contacts.basic_api.get_by_id(cid, properties=["mqlsync_reasons"])
    assert got.properties["mqlsync_reasons"] == marker
    read = api.post(
        "/crm/v3/objects/contacts/batch/read",
        {"inputs": [{"id": cid}], "properties": ["mqlsync_reasons"]},
    ).json()
    assert read["results"][0]["properties"]["mqlsync_reasons"] == marker
    # ...search does not: it matches and shows the contact as it was.
    assert search("mqlsync_reasons", "EQ", marker)["total"] == 0
    stale = search("hs_object_id", "EQ", cid)["results"][0]["properties"]
    assert stale["mqlsync_reasons"] != marker and stale["lastmodifieddate"] == old_stamp
    assert time.monotonic() - written < LAG_S  # the checks above ran inside the lag

    _eventually(lambda: search("mqlsync_reasons", "EQ", marker)["total"] == 1, LAG_S + 10)
    assert time.monotonic() - written >= LAG_S - 0.5
    fresh = search("hs_object_id", "EQ", cid)["results"][0]["properties"]
    assert fresh["mqlsync_reasons"] == marker and fresh["lastmodifieddate"] > old_stamp


def test_search_sees_a_created_task_only_after_the_lag(lagging: SandboxHandle) -> None:
    hs = lagging.hubspot_client()
    cid = lagging.admin.expected("hubspot")["contacts"][4]
    key = f"lag-task-{time.time_ns()}"

    def by_key() -> int:
        page = hs.crm.objects.tasks.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {"propertyName": "mqlsync_handoff_key", "operator": "EQ", "value": key}
                        ]
                    }
                ],
                properties=["mqlsync_handoff_key"],
            )
        )
        return int(page.total)

    created = Api(lagging).post("/crm/v3/objects/tasks", _task(cid, key)).json()
    assert hs.crm.objects.tasks.basic_api.get_by_id(created["id"]).id == created["id"]
    assert by_key() == 0
    _eventually(lambda: by_key() == 1, LAG_S + 10)


def test_the_lag_is_set_at_run_time(lagging: SandboxHandle) -> None:
    api = Api(lagging)
    cid = lagging.admin.expected("hubspot")["contacts"][5]
    marker = f"lag-zero-{time.time_ns()}"
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "mqlsync_reasons", "operator": "EQ", "value": marker}]}
        ]
    }
    update = {"inputs": [{"id": cid, "properties": {"mqlsync_reasons": marker}}]}
    assert api.post("/crm/v3/objects/contacts/batch/update", update).status_code == 200
    assert api.post("/crm/v3/objects/contacts/search", body).json()["total"] == 0
    lagging.admin.set_limits(search_lag_s=0)
    try:
        assert api.post("/crm/v3/objects/contacts/search", body).json()["total"] == 1
        assert lagging.admin.stats()["limits"]["hubspot"]["search_lag_s"] == 0
    finally:
        lagging.admin.set_limits(search_lag_s=LAG_S)
