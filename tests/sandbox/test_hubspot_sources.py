"""The HubSpot activity sources a real portal serves (marketing email events, forms and
submissions, marketing event participations, calls/emails/communications, event
definitions, account info), over HTTPS: answers validate against HubSpot's OpenAPI
documents where one exists, and their data agrees with the generated population."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import requests

from sandbox import catalog, hubspot_events
from sandbox.population import KIND
from sandbox.testing import SandboxHandle, trusting_session

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs" / "hubspot"
CONTACT_ID_BASE = 100_001


@cache
def _spec(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SPECS / f"{name}.json").read_text())
    return doc


def check(spec: str, path: str, method: str, status: int, body: Any) -> None:
    """Validate an answer against the response schema of `spec` (refs resolve inside it)."""
    doc = _spec(spec)
    responses = doc["paths"][path][method]["responses"]
    entry = responses.get(str(status)) or responses["default"]
    if "$ref" in entry:
        entry = doc["components"]["responses"][entry["$ref"].split("/")[-1]]
    content = entry["content"]
    schema = next(iter(content.values()))["schema"]
    jsonschema.Draft7Validator({**schema, "components": doc["components"]}).validate(body)


def check_schema(spec: str, name: str, body: Any) -> None:
    doc = _spec(spec)
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema.Draft7Validator(schema).validate(body)


@pytest.fixture(scope="module")
def http(sb: SandboxHandle) -> requests.Session:
    session = trusting_session(sb.ca_file)
    session.headers["Authorization"] = f"Bearer {sb.hubspot_token}"
    return session


def _log(sb: SandboxHandle) -> Any:
    assert sb.sandbox is not None
    return sb.sandbox.population.hubspot


def _count(sb: SandboxHandle, kind: str, lo: int = 0, hi: int = 2**62) -> int:
    log = _log(sb)
    k = KIND[kind]
    return sum(1 for i in range(len(log)) if log.kind[i] == k and lo <= log.ts[i] <= hi)


def _email_events(sb: SandboxHandle, http: requests.Session, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    offset = None
    while True:
        query = {**params, **({"offset": offset} if offset else {})}
        resp = http.get(sb.base_url + "/email/public/v1/events", params=query, timeout=30)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"events", "hasMore", "offset"}
        events += body["events"]
        if not body["hasMore"]:
            return events
        offset = body["offset"]


# -- marketing email events ----------------------------------------------------------------


def test_email_opens_in_a_window_match_the_population(
    sb: SandboxHandle, http: requests.Session
) -> None:
    as_of = sb.sandbox.population.spec.as_of_ms  # type: ignore[union-attr]
    lo, hi = as_of - 60 * 86_400_000, as_of - 20 * 86_400_000
    opens = _email_events(sb, http, eventType="OPEN", startTimestamp=lo, endTimestamp=hi, limit=250)
    assert len(opens) == _count(sb, "email_open", lo, hi) > 0
    assert len({e["id"] for e in opens}) == len(opens)
    created = [e["created"] for e in opens]
    assert created == sorted(created, reverse=True)  # newest first
    assert all(lo <= c <= hi for c in created)
    emails = {
        p.email
        for p in sb.sandbox.population.people[: sb.sandbox.population.hubspot_count]  # type: ignore[union-attr]
    }
    for e in opens:
        assert e["type"] == "OPEN" and e["recipient"] in emails
        assert e["portalId"] == sb.sandbox.portal_id  # type: ignore[union-attr]
        assert {"appId", "appName", "emailCampaignId", "sentBy"} <= set(e)
        assert e["sentBy"]["created"] < e["created"]


def test_email_event_kinds_and_sends(sb: SandboxHandle, http: requests.Session) -> None:
    events = _email_events(sb, http)
    by_type = Counter(e["type"] for e in events)
    clicks, bounces = _count(sb, "email_click"), _count(sb, "email_bounce")
    unsubscribes, opens = _count(sb, "email_unsubscribe"), _count(sb, "email_open")
    assert by_type == {
        "OPEN": opens,
        "CLICK": clicks,
        "BOUNCE": bounces,
        "STATUSCHANGE": unsubscribes,
        "SENT": opens + clicks + bounces + unsubscribes,
        "DELIVERED": opens + clicks + unsubscribes,
    }
    sent_ids = {e["id"] for e in events if e["type"] == "SENT"}
    for e in events:
        if e["type"] != "SENT":
            assert e["sentBy"]["id"] in sent_ids
        if e["type"] == "CLICK":
            assert e["url"].startswith("https://www.example.com/")
        if e["type"] == "STATUSCHANGE":
            assert e["portalSubscriptionStatus"] == "UNSUBSCRIBED"
            assert e["source"] == "SOURCE_RECIPIENT"
        if e["type"] == "BOUNCE":
            assert e["category"] and e["status"]
    one = events[0]
    only = _email_events(sb, http, recipient=one["recipient"], campaignId=one["emailCampaignId"])
    assert only and all(
        e["recipient"] == one["recipient"] and e["emailCampaignId"] == one["emailCampaignId"]
        for e in only
    )


def test_email_events_limit(sb: SandboxHandle, http: requests.Session) -> None:
    resp = http.get(sb.base_url + "/email/public/v1/events", params={"limit": 1001}, timeout=30)
    assert resp.status_code == 400
    page = http.get(sb.base_url + "/email/public/v1/events", params={"limit": 7}, timeout=30)
    assert len(page.json()["events"]) == 7 and page.json()["hasMore"] is True


# -- forms and submissions -----------------------------------------------------------------


def test_forms_list_and_submissions(sb: SandboxHandle, http: requests.Session) -> None:
    # formTypes filters by type; this portal's forms are all HubSpot forms.
    captured = http.get(sb.base_url + "/marketing/v3/forms/", params={"formTypes": "captured"})
    assert captured.json()["results"] == []
    resp = http.get(sb.base_url + "/marketing/v3/forms/", params={"formTypes": "all"})
    assert resp.status_code == 200
    check("forms", "/marketing/v3/forms", "get", 200, resp.json())
    forms = {f["name"]: f["id"] for f in resp.json()["results"]}
    assert set(forms) == set(hubspot_events.FORM_TITLES.values())
    for guid in forms.values():
        assert str(uuid.UUID(guid)) == guid
    log = _log(sb)
    expected = Counter(
        hubspot_events.form_slug(log.kind[i], log.detail[i]) for i in range(len(log))
    )
    for slug, title in hubspot_events.FORM_TITLES.items():
        url = f"{sb.base_url}/form-integrations/v1/submissions/forms/{forms[title]}"
        results: list[dict[str, Any]] = []
        after = None
        while True:
            page = http.get(url, params={"limit": 50, **({"after": after} if after else {})})
            assert page.status_code == 200
            body = page.json()
            results += body["results"]
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if after is None:
                break
        assert len(results) == expected[slug]
        times = [r["submittedAt"] for r in results]
        assert times == sorted(times, reverse=True)
        for r in results[:5]:
            names = {v["name"] for v in r["values"]}
            assert "email" in names and r["pageUrl"].endswith(slug)
    bad = http.get(
        f"{sb.base_url}/form-integrations/v1/submissions/forms/{forms['Request a demo']}",
        params={"limit": 51},
    )
    assert bad.status_code == 400


# -- marketing events ----------------------------------------------------------------------


def test_marketing_event_participations(sb: SandboxHandle, http: requests.Session) -> None:
    resp = http.get(sb.base_url + "/marketing/marketing-events/v3", timeout=30)
    check("marketingEvents", "/marketing/marketing-events/v3", "get", 200, resp.json())
    events = resp.json()["results"]
    assert [e["eventName"] for e in events] == list(catalog.WEBINARS)
    log = _log(sb)
    for index, event in enumerate(events):
        url = (
            f"{sb.base_url}/marketing/v3/marketing-events/participations/"
            f"{event['objectId']}/breakdown"
        )
        rows: list[dict[str, Any]] = []
        after = None
        while True:
            page = http.get(url, params={"limit": 100, **({"after": after} if after else {})})
            check(
                "marketingEvents",
                "/marketing/v3/marketing-events/participations/{marketingEventId}/breakdown",
                "get",
                200,
                page.json(),
            )
            rows += page.json()["results"]
            after = (page.json().get("paging") or {}).get("next", {}).get("after")
            if after is None:
                break
        states = Counter(r["properties"]["attendanceState"] for r in rows)
        for kind, state in (("webinar_registered", "REGISTERED"), ("webinar_attended", "ATTENDED")):
            k = KIND[kind]
            want = sum(1 for i in range(len(log)) if log.kind[i] == k and log.detail[i] == index)
            assert states[state] == want
        counters = http.get(
            f"{sb.base_url}/marketing/v3/marketing-events/participations/{event['objectId']}"
        ).json()
        check(
            "marketingEvents",
            "/marketing/v3/marketing-events/participations/{marketingEventId}",
            "get",
            200,
            counters,
        )
        assert counters["attended"] == states["ATTENDED"]
        assert event["attendees"] == states["ATTENDED"]
        attended = http.get(url, params={"state": "ATTENDED", "limit": "5"}).json()
        assert attended["total"] == states["ATTENDED"]


# -- engagement objects --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_type", "type_id"), [("calls", 194), ("emails", 198), ("communications", 81)]
)
def test_engagements_search_and_associations(
    sb: SandboxHandle, http: requests.Session, object_type: str, type_id: int
) -> None:
    log = _log(sb)
    expected = {
        "calls": _count(sb, "meeting_booked") + _count(sb, "demo_request"),
        "emails": 2 * _count(sb, "email_reply"),
        "communications": sum(
            1
            for i in range(len(log))
            if log.kind[i] == KIND["social_engagement"] and log.detail[i] == 0
        ),
    }[object_type]
    url = f"{sb.base_url}/crm/v3/objects/{object_type}/search"
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["hs_timestamp", "hubspot_owner_id"],
        "limit": 200,
    }
    first = http.post(url, json=body, timeout=30)
    assert first.status_code == 200, first.text
    check(object_type, f"/crm/v3/objects/{object_type}/search", "post", 200, first.json())
    assert first.json()["total"] == expected > 0
    ids = [r["id"] for r in first.json()["results"]]
    stamps = [r["properties"]["hs_timestamp"] for r in first.json()["results"]]
    assert stamps == sorted(stamps)
    assoc = http.post(
        f"{sb.base_url}/crm/v4/associations/{object_type}/contacts/batch/read",
        json={"inputs": [{"id": i} for i in ids[:50]]},
        timeout=30,
    )
    assert assoc.status_code == 200
    check(
        "associations",
        "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
        "post",
        200,
        assoc.json(),
    )
    for result in assoc.json()["results"]:
        (to,) = result["to"]
        assert to["associationTypes"][0]["typeId"] == type_id
        assert (
            CONTACT_ID_BASE
            <= int(to["toObjectId"])
            < CONTACT_ID_BASE
            + len(
                sb.sandbox.population.people  # type: ignore[union-attr]
            )
        )


def test_meeting_associations_still_served(sb: SandboxHandle, http: requests.Session) -> None:
    resp = http.post(
        f"{sb.base_url}/crm/v4/associations/meetings/contacts/batch/read",
        json={"inputs": [{"id": "90000000001"}]},
        timeout=30,
    )
    assert resp.status_code == 200
    assert resp.json()["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 200


# -- definitions, account, token, properties -----------------------------------------------


def test_event_definitions_configured_names(sb: SandboxHandle, http: requests.Session) -> None:
    resp = http.get(
        sb.base_url + "/events/v3/event-definitions",
        params={"includeProperties": "true"},
        timeout=30,
    )
    assert resp.status_code == 200
    check("manageEventDefinitions", "/events/v3/event-definitions", "get", 200, resp.json())
    names = {d["name"]: d["fullyQualifiedName"] for d in resp.json()["results"]}
    assert names == {
        "webinar_attended": "pe_webinar_attended",
        "social_engagement": "pe_social_engagement",
        "support_complaint": "pe_support_complaint",
    }


def test_account_details_and_token_info(sb: SandboxHandle, http: requests.Session) -> None:
    details = http.get(sb.base_url + "/account-info/v3/details", timeout=30).json()
    assert details["portalId"] == sb.sandbox.portal_id  # type: ignore[union-attr]
    assert details["accountType"] == "STANDARD" and details["timeZone"]
    info = http.post(
        sb.base_url + "/oauth/v2/private-apps/get/access-token-info",
        json={"tokenKey": sb.hubspot_token},
        timeout=30,
    )
    assert info.status_code == 200
    assert info.json()["hubId"] == details["portalId"]
    assert {"crm.objects.contacts.read", "content", "forms"} <= set(info.json()["scopes"])


def test_property_groups_and_engagement_properties(
    sb: SandboxHandle, http: requests.Session
) -> None:
    groups = http.get(sb.base_url + "/crm/v3/properties/contacts/groups", timeout=30)
    check("properties", "/crm/v3/properties/{objectType}/groups", "get", 200, groups.json())
    assert "contactinformation" in {g["name"] for g in groups.json()["results"]}
    calls = http.get(sb.base_url + "/crm/v3/properties/calls", timeout=30)
    check("properties", "/crm/v3/properties/{objectType}", "get", 200, calls.json())
    assert "hs_call_title" in {p["name"] for p in calls.json()["results"]}


def test_new_paths_need_a_token(sb: SandboxHandle) -> None:
    anonymous = trusting_session(sb.ca_file)
    for path in ("/email/public/v1/events", "/marketing/v3/forms", "/account-info/v3/details"):
        resp = anonymous.get(sb.base_url + path, timeout=30)
        assert resp.status_code == 401
        assert resp.json()["category"] == "INVALID_AUTHENTICATION"
