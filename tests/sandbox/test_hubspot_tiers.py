"""Tiers, scopes and the stock profile: what a portal as it comes answers, over HTTPS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import requests

from sandbox.auth import HUBSPOT_PRODUCT_SCOPES
from sandbox.hubspot_access import SCOPE_RULES
from sandbox.population import KIND
from sandbox.testing import SandboxHandle, running_sandbox, sandbox_process, trusting_session

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs" / "hubspot"
CONTACT = "100002"


@cache
def _spec(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SPECS / f"{name}.json").read_text())
    return doc


def check_schema(spec: str, name: str, body: Any) -> None:
    doc = _spec(spec)
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema.Draft7Validator(schema).validate(body)


def _session(sb: SandboxHandle) -> requests.Session:
    session = trusting_session(sb.ca_file)
    session.headers["Authorization"] = f"Bearer {sb.hubspot_token}"
    return session


@pytest.fixture(scope="module")
def stock() -> Iterator[SandboxHandle]:
    with running_sandbox(
        contacts=300, seed=5, tier="enterprise", profile="stock", hubspot_per_10s=100_000
    ) as handle:
        yield handle


def test_every_endpoint_scope_is_granted_by_default() -> None:
    for rule in SCOPE_RULES:
        assert set(rule.scopes) & HUBSPOT_PRODUCT_SCOPES, rule


@pytest.mark.parametrize("tier", ["starter", "professional"])
def test_stock_portal_below_enterprise_has_no_events_api(tier: str) -> None:
    with running_sandbox(contacts=60, seed=3, tier=tier, profile="stock") as sb:
        http = _session(sb)
        for path in ("/events/v3/events", "/events/v3/event-definitions"):
            resp = http.get(sb.base_url + path, params={"objectType": "contact"}, timeout=30)
            assert resp.status_code == 403
            check_schema("events", "Error", resp.json())
            assert resp.json()["category"] == "FORBIDDEN"
        # The sources every tier has still answer.
        for path in ("/email/public/v1/events", "/marketing/v3/forms", "/account-info/v3/details"):
            assert http.get(sb.base_url + path, timeout=30).status_code == 200
        calls = http.post(sb.base_url + "/crm/v3/objects/calls/search", json={}, timeout=30)
        assert calls.status_code == 200


def test_configured_profile_serves_the_events_api_on_every_tier() -> None:
    with running_sandbox(contacts=60, seed=3, tier="starter") as sb:
        resp = _session(sb).get(sb.base_url + "/events/v3/events", timeout=30)
        assert resp.status_code == 200


def test_stock_custom_event_names_and_form_guids(stock: SandboxHandle) -> None:
    http = _session(stock)
    assert stock.sandbox is not None
    pid = stock.sandbox.portal_id
    defs = http.get(stock.base_url + "/events/v3/event-definitions", timeout=30).json()
    assert {d["fullyQualifiedName"] for d in defs["results"]} == {
        f"pe{pid}_webinar_attended",
        f"pe{pid}_social_engagement",
        f"pe{pid}_support_complaint",
    }
    log = stock.sandbox.population.hubspot
    want = sum(1 for k in log.kind if k == KIND["webinar_attended"])
    seen, after = 0, None
    while True:
        params: dict[str, str | int] = {"eventType": f"pe{pid}_webinar_attended", "limit": 100}
        resp = http.get(
            stock.base_url + "/events/v3/events",
            params={**params, **({"after": after} if after else {})},
            timeout=30,
        )
        assert resp.status_code == 200
        check_schema("events", "CollectionResponseExternalUnifiedEvent", resp.json())
        assert all(e["eventType"] == f"pe{pid}_webinar_attended" for e in resp.json()["results"])
        seen += len(resp.json()["results"])
        after = (resp.json().get("paging") or {}).get("next", {}).get("after")
        if after is None:
            break
    assert seen == want > 0
    old = http.get(
        stock.base_url + "/events/v3/events", params={"eventType": "pe_webinar_attended"}
    )
    assert old.status_code == 400
    forms = {f["id"] for f in http.get(stock.base_url + "/marketing/v3/forms").json()["results"]}
    submitted = http.get(
        stock.base_url + "/events/v3/events",
        params={"eventType": "e_submitted_form", "limit": "50"},
    ).json()["results"]
    assert submitted
    for event in submitted:
        form_id = event["properties"]["hs_form_id"]
        assert form_id in forms and str(uuid.UUID(form_id)) == form_id


def test_stock_portal_needs_the_product_properties_created(stock: SandboxHandle) -> None:
    http = _session(stock)
    names = {
        p["name"]
        for p in http.get(stock.base_url + "/crm/v3/properties/contacts", timeout=30).json()[
            "results"
        ]
    }
    assert "email" in names and not any(n.startswith("mqlsync_") for n in names)
    task_names = {
        p["name"] for p in http.get(stock.base_url + "/crm/v3/properties/tasks").json()["results"]
    }
    assert "mqlsync_handoff_key" not in task_names
    refused = http.patch(
        f"{stock.base_url}/crm/v3/objects/contacts/{CONTACT}",
        json={"properties": {"mqlsync_score": "42"}},
        timeout=30,
    )
    assert refused.status_code == 400 and "PROPERTY_DOESNT_EXIST" in refused.json()["message"]

    group = http.post(
        stock.base_url + "/crm/v3/properties/contacts/groups",
        json={"name": "mqlsync", "label": "Lead scoring", "displayOrder": 5},
        timeout=30,
    )
    assert group.status_code == 201
    check_schema("properties", "PropertyGroup", group.json())
    again = http.post(
        stock.base_url + "/crm/v3/properties/contacts/groups",
        json={"name": "mqlsync", "label": "Lead scoring"},
    )
    assert again.status_code == 409

    create = {
        "name": "mqlsync_score",
        "label": "MQL score",
        "type": "number",
        "fieldType": "number",
        "groupName": "mqlsync",
    }
    made = http.post(stock.base_url + "/crm/v3/properties/contacts", json=create, timeout=30)
    assert made.status_code == 201, made.text
    check_schema("properties", "Property", made.json())
    assert made.json()["groupName"] == "mqlsync" and made.json()["hasUniqueValue"] is False
    dup = http.post(stock.base_url + "/crm/v3/properties/contacts", json=create, timeout=30)
    assert dup.status_code == 409
    check_schema("properties", "Error", dup.json())
    assert dup.json()["category"] == "OBJECT_ALREADY_EXISTS"

    key = {
        "name": "mqlsync_handoff_key",
        "label": "Handoff key",
        "type": "string",
        "fieldType": "text",
        "groupName": "taskinformation",
        "hasUniqueValue": True,
    }
    made_key = http.post(stock.base_url + "/crm/v3/properties/tasks", json=key, timeout=30)
    assert made_key.status_code == 201 and made_key.json()["hasUniqueValue"] is True
    read = http.get(stock.base_url + "/crm/v3/properties/tasks/mqlsync_handoff_key")
    assert read.json()["hasUniqueValue"] is True

    bad = http.post(
        stock.base_url + "/crm/v3/properties/contacts",
        json={**create, "name": "mqlsync_grade", "groupName": "nope"},
    )
    assert bad.status_code == 400

    accepted = http.patch(
        f"{stock.base_url}/crm/v3/objects/contacts/{CONTACT}",
        json={"properties": {"mqlsync_score": "42"}},
        timeout=30,
    )
    assert accepted.status_code == 200, accepted.text
    got = http.get(
        f"{stock.base_url}/crm/v3/objects/contacts/{CONTACT}",
        params={"properties": "mqlsync_score"},
    )
    assert got.json()["properties"]["mqlsync_score"] == "42"


def test_missing_scopes_answer_403_with_the_scope() -> None:
    granted = sorted(HUBSPOT_PRODUCT_SCOPES - {"content", "forms"})
    with running_sandbox(contacts=60, seed=3, scopes=granted) as sb:
        http = _session(sb)
        resp = http.get(sb.base_url + "/email/public/v1/events", timeout=30)
        assert resp.status_code == 403
        body = resp.json()
        check_schema("properties", "Error", body)
        assert body["category"] == "MISSING_SCOPES"
        assert body["errors"][0]["context"]["requiredGranularScopes"] == ["content"]
        forms = http.get(sb.base_url + "/marketing/v3/forms", timeout=30)
        assert forms.json()["errors"][0]["context"]["requiredGranularScopes"] == ["forms"]
        assert http.get(sb.base_url + "/crm/v3/objects/contacts", timeout=30).status_code == 200
        info = http.post(
            sb.base_url + "/oauth/v2/private-apps/get/access-token-info",
            json={"tokenKey": sb.hubspot_token},
        ).json()
        assert sorted(info["scopes"]) == granted

        # The admin API changes them at run time.
        admin = trusting_session(sb.ca_file)
        put = admin.put(
            sb.base_url + "/_sandbox/hubspot/scopes",
            json={"scopes": ["crm.objects.contacts.read"]},
            timeout=30,
        )
        assert put.status_code == 200 and put.json()["granted"] == ["crm.objects.contacts.read"]
        write = http.patch(
            f"{sb.base_url}/crm/v3/objects/contacts/{CONTACT}",
            json={"properties": {"firstname": "Ada"}},
        )
        assert write.status_code == 403
        assert write.json()["errors"][0]["context"]["requiredGranularScopes"] == [
            "crm.objects.contacts.write"
        ]
        admin.put(
            sb.base_url + "/_sandbox/hubspot/scopes",
            json={"scopes": sorted(HUBSPOT_PRODUCT_SCOPES)},
        )
        assert http.get(sb.base_url + "/email/public/v1/events").status_code == 200


def test_stock_process_from_the_command_line() -> None:
    with sandbox_process(contacts=40, seed=2, tier="starter", profile="stock") as sb:
        http = _session(sb)
        account = trusting_session(sb.ca_file).get(sb.base_url + "/_sandbox/hubspot/account")
        assert account.json()["profile"] == "stock" and account.json()["tier"] == "starter"
        assert http.get(sb.base_url + "/events/v3/events").status_code == 403
        details = http.get(sb.base_url + "/account-info/v3/details").json()
        assert details["portalId"] == account.json()["portalId"]
