"""The Salesforce sandbox is as strict as a real org: the stock profile, converted leads,
the Collections chunk rule, both REQUEST_LIMIT_EXCEEDED answers and Sforce-Limit-Info,
the JWT bearer flow, the Tooling API, field-level security and all-day events.

Over real HTTPS with `requests` (to see status codes, bodies and headers as sent) and
simple-salesforce where the client's own handling matters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.exceptions import SalesforceExpiredSession

from sandbox.faults import FaultRule, parse_spec
from sandbox.population import PopulationSpec
from sandbox.salesforce_schema import CUSTOMIZABLE
from sandbox.state import build_sandbox
from sandbox.testing import SandboxHandle, running_sandbox, sandbox_process

DATA = "/services/data/v59.0"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
STOCK_STATUSES = [
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Closed - Converted", True, False),
    ("Closed - Not Converted", False, False),
]
CONVERTED_ERROR = {
    "statusCode": "CANNOT_UPDATE_CONVERTED_LEAD",
    "message": "cannot reference converted lead",
    "fields": [],
}


class Api:
    """Salesforce REST calls with the answer as sent: status, body and headers."""

    def __init__(self, sb: SandboxHandle, session_id: str | None = None) -> None:
        self.base = sb.base_url
        self.http = sb.salesforce_session()
        self.http.headers["Authorization"] = f"Bearer {session_id or sb.salesforce_session_id}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base + path, params=params or None, timeout=30)

    def send(self, method: str, path: str, body: Any) -> requests.Response:
        return self.http.request(method, self.base + path, json=body, timeout=30)

    def query(self, soql: str) -> requests.Response:
        return self.get(DATA + "/query", q=soql)

    def rows(self, soql: str) -> list[dict[str, Any]]:
        resp = self.query(soql)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["records"])

    def create(self, sobject: str, body: dict[str, Any]) -> str:
        resp = self.send("POST", f"{DATA}/sobjects/{sobject}", body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def collection(self, method: str, records: list[dict[str, Any]]) -> requests.Response:
        return self.send(method, DATA + "/composite/sobjects", {"records": records})

    def create_field(self, full_name: str, **metadata: Any) -> requests.Response:
        body = {"FullName": full_name, "Metadata": {"label": full_name, **metadata}}
        return self.send("POST", DATA + "/tooling/sobjects/CustomField", body)


# Converted leads are the leads already past SQL at as_of (~5%): 300 people give several
# (6 for seed 7, 5 of them campaign members).
ORG_CONTACTS = 300


@pytest.fixture(scope="module")
def org() -> Iterator[SandboxHandle]:
    """The configured org, big enough to hold several converted leads."""
    with running_sandbox(contacts=ORG_CONTACTS, seed=7) as handle:
        yield handle


@pytest.fixture(scope="module")
def stock() -> Iterator[SandboxHandle]:
    with running_sandbox(contacts=ORG_CONTACTS, seed=7, profile="stock") as handle:
        yield handle


def _error(resp: requests.Response) -> dict[str, Any]:
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1, body
    return dict(body[0])


def _leads(sb: SandboxHandle) -> list[str]:
    expected = sb.admin.expected("salesforce")
    converted = set(expected["converted_leads"])
    return [lead for lead in expected["leads"] if lead not in converted]


# -- 1. the stock profile -----------------------------------------------------------------


def test_a_stock_org_has_no_custom_fields(stock: SandboxHandle) -> None:
    api = Api(stock)
    for sobject in CUSTOMIZABLE:
        described = api.get(f"{DATA}/sobjects/{sobject}/describe").json()
        assert not [f["name"] for f in described["fields"] if f["name"].endswith("__c")], sobject
    resp = api.query("SELECT Id, MQL_Score__c FROM Lead")
    assert resp.status_code == 400 and _error(resp)["errorCode"] == "INVALID_FIELD"
    resp = api.query("SELECT Id, Url__c FROM Task")
    assert resp.status_code == 400 and _error(resp)["errorCode"] == "INVALID_FIELD"
    lead = _leads(stock)[0]
    resp = api.collection(
        "PATCH", [{"attributes": {"type": "Lead"}, "id": lead, "MQL_Score__c": 40}]
    )
    assert resp.status_code == 200
    assert resp.json()[0]["errors"][0]["statusCode"] == "INVALID_FIELD"
    task = {"attributes": {"type": "Task"}, "WhoId": lead, "Handoff_Key__c": "k"}
    assert api.collection("POST", [task]).json()[0]["errors"][0]["statusCode"] == "INVALID_FIELD"


def test_a_stock_org_has_the_stock_lead_statuses(stock: SandboxHandle) -> None:
    api = Api(stock)
    rows = api.rows(
        "SELECT Id, ApiName, MasterLabel, IsConverted, IsDefault, SortOrder FROM LeadStatus "
        "ORDER BY SortOrder"
    )
    assert [(r["ApiName"], r["IsConverted"], r["IsDefault"]) for r in rows] == STOCK_STATUSES
    assert [r["MasterLabel"] for r in rows] == [s for s, _, _ in STOCK_STATUSES]
    assert [r["SortOrder"] for r in rows] == [1, 2, 3, 4]
    assert all(r["Id"].startswith("01J") for r in rows)
    described = api.get(f"{DATA}/sobjects/Lead/describe").json()
    status = next(f for f in described["fields"] if f["name"] == "Status")
    assert {v["value"] for v in status["picklistValues"]} == {s for s, _, _ in STOCK_STATUSES}
    used = {r["Status"] for r in api.rows("SELECT Status FROM Lead")}
    assert used <= {s for s, _, _ in STOCK_STATUSES}
    assert {"Open - Not Contacted", "Working - Contacted", "Closed - Converted"} <= used


def test_a_stock_org_keeps_standard_task_fields_and_the_activity_types(
    stock: SandboxHandle,
) -> None:
    rows = Api(stock).rows(
        "SELECT Id, Subject, Type, TaskSubtype, ActivityDate, Status, WhoId FROM Task"
    )
    assert rows and all(r["Subject"] and r["WhoId"] and r["ActivityDate"] for r in rows)
    assert {"Web Visit", "Email Open"} <= {r["Type"] for r in rows}


def test_the_configured_org_keeps_its_statuses_and_fields(org: SandboxHandle) -> None:
    api = Api(org)
    rows = api.rows(
        "SELECT Id, ApiName, MasterLabel, IsConverted, IsDefault, SortOrder FROM LeadStatus"
    )
    labels = {r["ApiName"] for r in rows}
    assert {"Marketing Qualified", "Sales Qualified", "Recycled", "Unqualified"} <= labels
    assert [r["ApiName"] for r in rows if r["IsConverted"]] == ["Closed - Converted"]
    assert [r["ApiName"] for r in rows if r["IsDefault"]] == ["Open - Not Contacted"]
    fields = {f["name"]: f for f in api.get(f"{DATA}/sobjects/Lead/describe").json()["fields"]}
    assert fields["MQL_Score__c"]["updateable"] and fields["Business_License__c"]["custom"]
    assert api.rows("SELECT Id, Url__c, Handoff_Key__c FROM Task LIMIT 1")


# -- 2. converted leads -------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["configured", "stock"])
def test_converted_leads_point_at_a_contact_for_the_same_person(
    profile: str, org: SandboxHandle, stock: SandboxHandle
) -> None:
    sb = org if profile == "configured" else stock
    api = Api(sb)
    converted = sb.admin.expected("salesforce")["converted_leads"]
    assert converted
    rows = api.rows(
        "SELECT Id, Email, FirstName, LastName, Status, IsConverted, ConvertedContactId, "
        "ConvertedAccountId, ConvertedDate FROM Lead WHERE IsConverted = true"
    )
    assert sorted(r["Id"] for r in rows) == sorted(converted)
    for lead in rows:
        assert lead["Status"] == "Closed - Converted"
        datetime.strptime(lead["ConvertedDate"], "%Y-%m-%d")
        contact = api.get(f"{DATA}/sobjects/Contact/{lead['ConvertedContactId']}").json()
        assert (contact["Email"], contact["FirstName"], contact["LastName"]) == (
            lead["Email"],
            lead["FirstName"],
            lead["LastName"],
        )
        assert lead["ConvertedAccountId"] == contact["AccountId"]
    unconverted = api.rows("SELECT Status, ConvertedContactId FROM Lead WHERE IsConverted = false")
    assert all(
        r["Status"] != "Closed - Converted" and not r["ConvertedContactId"] for r in unconverted
    )


def test_a_converted_leads_activities_belong_to_its_contact(org: SandboxHandle) -> None:
    api = Api(org)
    leads = api.rows("SELECT Id, ConvertedContactId FROM Lead WHERE IsConverted = true")
    contact_of = {r["Id"]: r["ConvertedContactId"] for r in leads}
    whos = {r["WhoId"] for r in api.rows("SELECT WhoId FROM Task")}
    whos |= {r["WhoId"] for r in api.rows("SELECT WhoId FROM Event")}
    assert not whos & set(contact_of)
    members = api.rows("SELECT LeadId, ContactId FROM CampaignMember WHERE LeadId != null")
    of_converted = [m for m in members if m["LeadId"] in contact_of]
    assert of_converted, "no converted lead is a campaign member"
    assert all(m["ContactId"] == contact_of[m["LeadId"]] for m in of_converted)
    assert all(m["ContactId"] is None for m in members if m["LeadId"] not in contact_of)


def test_writes_to_a_converted_lead_are_refused(org: SandboxHandle) -> None:
    api = Api(org)
    converted = org.admin.expected("salesforce")["converted_leads"][0]
    live = _leads(org)[0]
    resp = api.send("PATCH", f"{DATA}/sobjects/Lead/{converted}", {"FirstName": "X"})
    assert resp.status_code == 400
    assert _error(resp) == {
        "message": "cannot reference converted lead",
        "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
    }
    resp = api.collection(
        "PATCH",
        [
            {"attributes": {"type": "Lead"}, "id": converted, "MQL_Score__c": 5},
            {"attributes": {"type": "Lead"}, "id": live, "MQL_Score__c": 5},
        ],
    )
    assert resp.json() == [
        {"id": converted, "success": False, "errors": [CONVERTED_ERROR]},
        {"id": live, "success": True, "errors": []},
    ]
    task = {"attributes": {"type": "Task"}, "WhoId": converted, "Subject": "Call"}
    assert api.collection("POST", [task]).json() == [
        {"success": False, "errors": [CONVERTED_ERROR]}
    ]


def test_the_admin_api_converts_a_lead_as_a_user_would(org: SandboxHandle) -> None:
    api = Api(org)
    lead = next(
        r["WhoId"]
        for r in api.rows("SELECT WhoId FROM Task ORDER BY WhoId")
        if r["WhoId"].startswith("00Q")
    )
    before = api.rows(f"SELECT Id, Email, SystemModstamp FROM Lead WHERE Id = '{lead}'")[0]
    tasks = {r["Id"] for r in api.rows(f"SELECT Id FROM Task WHERE WhoId = '{lead}'")}
    assert tasks
    contact = org.admin.convert_lead(lead)
    assert isinstance(contact, str) and contact.startswith("003")
    after = api.rows(
        "SELECT Status, IsConverted, ConvertedContactId, ConvertedDate, SystemModstamp "
        f"FROM Lead WHERE Id = '{lead}'"
    )[0]
    assert after["IsConverted"] and after["Status"] == "Closed - Converted"
    assert after["ConvertedContactId"] == contact
    assert after["ConvertedDate"] == datetime.now(UTC).strftime("%Y-%m-%d")
    assert after["SystemModstamp"] > before["SystemModstamp"]
    row = api.rows(f"SELECT Email, SystemModstamp FROM Contact WHERE Id = '{contact}'")[0]
    assert row["Email"] == before["Email"] and row["SystemModstamp"] >= after["SystemModstamp"]
    assert api.rows(f"SELECT Id FROM Task WHERE WhoId = '{lead}'") == []
    moved = {r["Id"] for r in api.rows(f"SELECT Id FROM Task WHERE WhoId = '{contact}'")}
    assert tasks <= moved
    assert contact in org.admin.expected("salesforce")["contacts"]
    with pytest.raises(requests.HTTPError, match="400"):
        org.admin.convert_lead(lead)


def test_the_default_converted_share_is_stable_by_seed() -> None:
    def converted(seed: int) -> tuple[list[str], int]:
        spec = PopulationSpec(contacts=1500, seed=seed, activities_per_contact=2)
        people = build_sandbox(spec).org.people.values()
        live = [r for r in people if r.sobject == "Lead" and not r.deleted]
        return [r.id for r in live if r.conversion is not None], len(live)

    (first, live), (again, _), (other, _) = converted(4), converted(4), converted(5)
    assert first == again and first != other
    assert 0.10 < len(first) / live < 0.20  # the leads past SQL, as in the population


def test_the_converted_leads_are_the_leads_past_sql_on_their_sql_day() -> None:
    spec = PopulationSpec(contacts=3000, seed=9, activities_per_contact=2)
    org = build_sandbox(spec).org
    live = [r for r in org.people.values() if r.sobject == "Lead" and not r.deleted]
    past = {r.id for r in live if r.person.sql_at_ms and r.person.sql_at_ms < spec.as_of_ms}
    converted = {r.id for r in live if r.conversion is not None}
    assert past and converted == past
    for rec in live:
        if rec.conversion is not None:
            sql_at = rec.person.sql_at_ms
            assert sql_at is not None
            assert rec.conversion.date_ms == sql_at // 86_400_000 * 86_400_000
            assert rec.conversion.date_ms <= rec.modified_ms  # conversion changed the lead
            assert org.value("Lead", rec, "ConvertedDate") == rec.conversion.date_ms
    # Who converted is who reached SQL in the population, which follows fit and buying
    # episodes (tests/sandbox/test_population.py).


def test_the_converted_share_scales_the_past_sql_leads_converted() -> None:
    spec = PopulationSpec(contacts=3000, seed=9, activities_per_contact=2)

    def converted(share: float) -> set[str]:
        people = build_sandbox(spec, salesforce_converted_share=share).org.people.values()
        return {r.id for r in people if r.conversion is not None}

    every, half, none = converted(1.0), converted(0.5), converted(0.0)
    assert none == set()
    assert half < every and 0.3 < len(half) / len(every) < 0.7


# -- 3. the sObject Collections chunk rule --------------------------------------------------


def _alternating(org: SandboxHandle, chunks: int) -> list[dict[str, Any]]:
    leads = _leads(org)
    contacts = org.admin.expected("salesforce")["contacts"]
    records = []
    for i in range(chunks):
        sobject, ids = ("Lead", leads) if i % 2 == 0 else ("Contact", contacts)
        records.append({"attributes": {"type": sobject}, "id": ids[i // 2], "Score_Grade__c": "B"})
    return records


def test_collections_refuse_more_than_ten_chunks(org: SandboxHandle) -> None:
    api = Api(org)
    resp = api.collection("PATCH", _alternating(org, 11))
    assert resp.status_code == 400
    assert _error(resp) == {
        "message": "Cannot have more than 10 chunks in a single operation. "
        "Please rearrange the data to reduce chunking.",
        "errorCode": "LIMIT_EXCEEDED",
    }
    records = _alternating(org, 10)
    resp = api.collection("PATCH", records)
    assert resp.status_code == 200
    assert [r["id"] for r in resp.json()] == [r["id"] for r in records]
    assert all(r["success"] for r in resp.json())
    # The same records grouped by type: two chunks.
    grouped = sorted(_alternating(org, 10), key=lambda r: r["attributes"]["type"])
    assert api.collection("PATCH", grouped).status_code == 200
    tasks = [
        {"attributes": {"type": "Task" if i % 2 else "Lead"}, "Subject": "x"} for i in range(11)
    ]
    assert _error(api.collection("POST", tasks))["errorCode"] == "LIMIT_EXCEEDED"


def test_setup_and_other_objects_are_not_created_in_one_call(org: SandboxHandle) -> None:
    records = [
        {"attributes": {"type": "Task"}, "Subject": "x"},
        {"attributes": {"type": "PermissionSet"}, "Name": "mixed", "Label": "mixed"},
    ]
    resp = Api(org).collection("POST", records)
    assert resp.status_code == 400 and _error(resp)["errorCode"] == "MIXED_DML_OPERATION"


# -- 4. REQUEST_LIMIT_EXCEEDED and Sforce-Limit-Info --------------------------------------


def test_the_concurrent_limit_is_a_fault_kind(org: SandboxHandle) -> None:
    rules, _ = parse_spec(f"concurrent=1.0@{DATA}/query,count=2")
    assert rules == [FaultRule("concurrent", rate=1.0, count=2, path=f"{DATA}/query")]
    org.admin.set_faults(rules)
    api = Api(org)
    try:
        assert api.get(f"{DATA}/limits").status_code == 200  # another path
        for _ in range(2):
            resp = api.query("SELECT Id FROM User")
            assert resp.status_code == 403
            assert resp.json() == [
                {
                    "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                    "errorCode": "REQUEST_LIMIT_EXCEEDED",
                }
            ]
            assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
        assert api.query("SELECT Id FROM User").status_code == 200
        org.admin.set_faults([{"kind": "concurrent", "count": 1}])
        hubspot = org.hubspot_client().crm.contacts.basic_api.get_page(limit=1)
        assert hubspot.results  # a Salesforce-only kind never fires on HubSpot
        assert api.get("/services/oauth2/userinfo").status_code == 200  # nor on OAuth
        assert api.query("SELECT Id FROM User").status_code == 403
    finally:
        org.admin.clear_faults()


def test_daily_and_concurrent_limits_say_which_limit(org: SandboxHandle) -> None:
    org.admin.set_limits(salesforce_daily=1)
    try:
        api = Api(org)
        api.query("SELECT Id FROM User")
        resp = api.query("SELECT Id FROM User")
        assert resp.status_code == 403
        assert _error(resp)["message"] == "TotalRequests Limit exceeded."
        assert resp.headers["Sforce-Limit-Info"] == "api-usage=1/1"
    finally:
        org.admin.set_limits(salesforce_daily=100_000)


def test_every_rest_answer_carries_the_usage_header(org: SandboxHandle) -> None:
    api = Api(org)
    answers = [
        api.query("SELECT Id FROM User"),
        api.query("SELECT Nope FROM User"),  # 400
        api.get(f"{DATA}/sobjects/Nope/describe"),  # 404
        api.send("PATCH", f"{DATA}/sobjects/Lead/00Q5g0000000000", {"x": 1}),  # 400
        api.get(f"{DATA}/tooling/query", q="SELECT Id FROM CustomField"),
    ]
    org.admin.set_faults([{"kind": "500", "count": 1, "crm": "salesforce"}])
    answers.append(api.query("SELECT Id FROM User"))
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 400, 404, 400, 200, 500]
    usage = [int(a.headers["Sforce-Limit-Info"].split("=")[1].split("/")[0]) for a in answers]
    assert usage == sorted(usage) and len(set(usage)) == len(usage)
    # Outside the REST API's limits: the OAuth endpoints and the versions list.
    token = api.http.post(
        org.base_url + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": org.salesforce_client_id,
            "client_secret": org.salesforce_client_secret,
        },
        timeout=30,
    )
    others = [token, api.get("/services/oauth2/userinfo"), api.get("/services/data")]
    assert [a.status_code for a in others] == [200, 200, 200]
    assert not any("Sforce-Limit-Info" in a.headers for a in others)
    refused = Api(org, session_id="nope").query("SELECT Id FROM User")
    assert refused.status_code == 401 and "Sforce-Limit-Info" not in refused.headers


# -- 5. OAuth: the JWT bearer flow ----------------------------------------------------------


def _assertion(sb: SandboxHandle, key: bytes | None = None, **claims: Any) -> str:
    payload = {
        "iss": sb.salesforce_client_id,
        "sub": sb.salesforce_username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 170,
        **claims,
    }
    signing = key if key is not None else Path(sb.salesforce_jwt_key_file).read_bytes()
    return jwt.encode(payload, signing, algorithm="RS256")


def _token(sb: SandboxHandle, assertion: str) -> requests.Response:
    return sb.salesforce_session().post(
        sb.base_url + "/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": assertion},
        timeout=30,
    )


def test_the_jwt_bearer_flow_mints_a_session(org: SandboxHandle) -> None:
    assert Path(org.salesforce_jwt_key_file).is_file()
    assert org.salesforce_username == "integration@sandbox.example"
    for aud in ("https://login.salesforce.com", "https://test.salesforce.com", org.base_url):
        # exp as a string of digits, as Salesforce's example and simple-salesforce send it
        resp = _token(org, _assertion(org, aud=aud, exp=str(int(time.time()) + 179)))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {
            "access_token",
            "instance_url",
            "id",
            "token_type",
            "scope",
            "issued_at",
            "signature",
        }
        assert body["instance_url"] == org.base_url and body["token_type"] == "Bearer"
        user_id = body["id"].rsplit("/", 1)[1]
        assert user_id.startswith("005")
        sf = org.salesforce_client(session_id=body["access_token"])
        assert sf.query("SELECT Id FROM User")["totalSize"] > 0
        assert sf.oauth2("userinfo")["user_id"] == user_id


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"iss": "someone-else"}, "invalid_client_id", "client identifier invalid"),
        ({"aud": "https://example.com"}, "invalid_grant", "audience is invalid"),
        # `exp` in seconds from when the test runs: collection may be long before it.
        ({"exp": -5}, "invalid_grant", "expired authorization code"),
        ({"exp": 600}, "invalid_grant", "invalid assertion"),
        ({"sub": "nobody@sandbox.example"}, "invalid_grant", "user hasn't approved this consumer"),
    ],
)
def test_the_jwt_bearer_flow_checks_the_claims(
    org: SandboxHandle, claims: dict[str, Any], error: str, description: str
) -> None:
    if "exp" in claims:
        claims = {**claims, "exp": int(time.time()) + claims["exp"]}
    resp = _token(org, _assertion(org, **claims))
    assert resp.status_code == 400
    assert resp.json() == {"error": error, "error_description": description}


def test_the_jwt_bearer_flow_checks_the_signature(org: SandboxHandle) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for assertion in (_assertion(org, key=pem), "not-a-jwt", ""):
        resp = _token(org, assertion)
        assert resp.status_code == 400
        assert resp.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_expiring_sessions_revokes_both_flows() -> None:
    with running_sandbox(contacts=20, seed=2) as sb:
        by_jwt = sb.salesforce_client(session_id=sb.new_salesforce_jwt_session())
        by_client = sb.salesforce_client(session_id=sb.new_salesforce_session())
        assert by_jwt.query("SELECT Id FROM User")["totalSize"] > 0
        sb.admin.expire_sessions()
        for sf in (by_jwt, by_client):
            with pytest.raises(SalesforceExpiredSession) as err:
                sf.query("SELECT Id FROM User")
            assert err.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


# -- 6 and 7. the Tooling API and field-level security --------------------------------------


def _grant(api: Api, fields: list[str], edit: bool = True, name: str = "grants") -> str:
    """A permission set granting `fields` ("Object.Field"), assigned to the user."""
    found = api.rows(f"SELECT Id, Name FROM PermissionSet WHERE Name = '{name}'")
    permset = (
        found[0]["Id"] if found else api.create("PermissionSet", {"Name": name, "Label": name})
    )
    for field in fields:
        obj = field.partition(".")[0]
        body = {"ParentId": permset, "SobjectType": obj, "Field": field, "PermissionsRead": True}
        api.create("FieldPermissions", {**body, "PermissionsEdit": edit})
    user = api.get("/services/oauth2/userinfo").json()["user_id"]
    soql = (
        "SELECT Id FROM PermissionSetAssignment "
        f"WHERE AssigneeId = '{user}' AND PermissionSetId = '{permset}'"
    )
    if not api.rows(soql):
        api.create("PermissionSetAssignment", {"AssigneeId": user, "PermissionSetId": permset})
    return permset


def _described(api: Api, sobject: str) -> dict[str, dict[str, Any]]:
    fields = api.get(f"{DATA}/sobjects/{sobject}/describe").json()["fields"]
    return {f["name"]: f for f in fields}


def test_tooling_creates_fields_the_user_sees_only_once_granted(stock: SandboxHandle) -> None:
    api = Api(stock)
    resp = api.create_field("Lead.Tool_Score__c", type="Number", precision=18, scale=0)
    assert resp.status_code == 201
    assert set(resp.json()) == {"id", "success", "errors", "warnings", "infos"}
    assert resp.json()["id"].startswith("00N") and resp.json()["success"] is True
    created = [
        api.create_field("Lead.Tool_Grade__c", type="Text", length=10, externalId=True),
        api.create_field("Lead.Tool_Reasons__c", type="LongTextArea", length=32768, visibleLines=5),
        api.create_field("Lead.Tool_Flag__c", type="Checkbox", defaultValue=False),
    ]
    assert [r.status_code for r in created] == [201, 201, 201]
    names = ["Tool_Score__c", "Tool_Grade__c", "Tool_Reasons__c", "Tool_Flag__c"]
    assert not set(names) & set(_described(api, "Lead"))
    resp = api.query("SELECT Id, Tool_Score__c FROM Lead")
    assert resp.status_code == 400 and _error(resp)["errorCode"] == "INVALID_FIELD"
    lead = _leads(stock)[1]
    resp = api.send("PATCH", f"{DATA}/sobjects/Lead/{lead}", {"Tool_Score__c": 1})
    assert _error(resp)["errorCode"] == "INVALID_FIELD"
    listed = api.get(
        f"{DATA}/tooling/query",
        q="SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId = 'Lead'",
    ).json()["records"]
    assert {r["DeveloperName"] for r in listed} >= {n.removesuffix("__c") for n in names}

    _grant(api, [f"Lead.{n}" for n in names], name="tooling_grants")
    described = _described(api, "Lead")
    assert {n: described[n]["type"] for n in names} == {
        "Tool_Score__c": "double",
        "Tool_Grade__c": "string",
        "Tool_Reasons__c": "textarea",
        "Tool_Flag__c": "boolean",
    }
    assert all(described[n]["custom"] and described[n]["updateable"] for n in names)
    assert (
        api.send("PATCH", f"{DATA}/sobjects/Lead/{lead}", {"Tool_Score__c": 61}).status_code == 204
    )
    row = api.rows(f"SELECT Tool_Score__c, Tool_Flag__c FROM Lead WHERE Id = '{lead}'")[0]
    assert (row["Tool_Score__c"], row["Tool_Flag__c"]) == (61.0, False)


@pytest.mark.parametrize(
    ("full_name", "metadata", "code"),
    [
        ("Lead.No_Suffix", {"type": "Text", "length": 5}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Bad__Name__c", {"type": "Text", "length": 5}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Kind__c", {"type": "Formula"}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Short__c", {"type": "Text"}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Long__c", {"type": "LongTextArea", "length": 300}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Num__c", {"type": "Number", "precision": 18}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Box__c", {"type": "Checkbox"}, "FIELD_INTEGRITY_EXCEPTION"),
        (
            "Lead.Ext__c",
            {"type": "Number", "precision": 5, "scale": 0, "externalId": True},
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        ("Task.Key__c", {"type": "Text", "length": 5}, "FIELD_INTEGRITY_EXCEPTION"),
        ("Lead.Email__c", {"type": "Text", "length": 5}, None),  # the first one is made
        ("lead.EMAIL__c", {"type": "Text", "length": 5}, "DUPLICATE_DEVELOPER_NAME"),
    ],
)
def test_tooling_refuses_bad_fields(
    stock: SandboxHandle, full_name: str, metadata: dict[str, Any], code: str | None
) -> None:
    resp = Api(stock).create_field(full_name, **metadata)
    if code is None:
        assert resp.status_code == 201
    else:
        assert resp.status_code == 400 and _error(resp)["errorCode"] == code


def test_activity_fields_are_made_on_activity_for_tasks_and_events(stock: SandboxHandle) -> None:
    api = Api(stock)
    assert api.create_field("Activity.Handoff_Key__c", type="Text", length=80).status_code == 201
    assert api.create_field("Activity.Handoff_Key__c", type="Text", length=80).status_code == 400
    _grant(api, ["Task.Handoff_Key__c", "Event.Handoff_Key__c"], name="activity_grants")
    assert "Handoff_Key__c" in _described(api, "Task")
    assert "Handoff_Key__c" in _described(api, "Event")
    listed = api.get(
        f"{DATA}/tooling/query",
        q="SELECT DeveloperName FROM CustomField WHERE TableEnumOrId = 'Activity'",
    ).json()["records"]
    assert [r["DeveloperName"] for r in listed] == ["Handoff_Key"]


def test_a_read_only_grant_allows_reads_not_writes(stock: SandboxHandle) -> None:
    api = Api(stock)
    assert api.create_field("Contact.Ro_Score__c", type="Number", precision=5, scale=1).ok
    permset = _grant(api, ["Contact.Ro_Score__c"], edit=False, name="read_only")
    contact = stock.admin.expected("salesforce")["contacts"][0]
    assert api.rows(f"SELECT Ro_Score__c FROM Contact WHERE Id = '{contact}'")
    resp = api.send("PATCH", f"{DATA}/sobjects/Contact/{contact}", {"Ro_Score__c": 2})
    assert _error(resp)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert not _described(api, "Contact")["Ro_Score__c"]["updateable"]
    perms = api.rows(f"SELECT Id, Field FROM FieldPermissions WHERE ParentId = '{permset}'")
    assert [p["Field"] for p in perms] == ["Contact.Ro_Score__c"]
    patch = {"PermissionsEdit": True}
    assert api.send("PATCH", f"{DATA}/sobjects/FieldPermissions/{perms[0]['Id']}", patch).ok
    assert api.send("PATCH", f"{DATA}/sobjects/Contact/{contact}", {"Ro_Score__c": 2}).ok


def test_grant_records_are_checked_and_unique(stock: SandboxHandle) -> None:
    api = Api(stock)
    permset = api.create("PermissionSet", {"Name": "checked", "Label": "Checked"})
    dup = api.send("POST", f"{DATA}/sobjects/PermissionSet", {"Name": "checked", "Label": "x"})
    assert _error(dup)["errorCode"] == "DUPLICATE_VALUE"
    bad = {"ParentId": permset, "SobjectType": "Lead", "Field": "Lead.Nope__c"}
    resp = api.send("POST", f"{DATA}/sobjects/FieldPermissions", bad)
    assert _error(resp)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    edit_only = {
        "ParentId": permset,
        "SobjectType": "Lead",
        "Field": "Lead.Industry",
        "PermissionsRead": False,
        "PermissionsEdit": True,
    }
    resp = api.send("POST", f"{DATA}/sobjects/FieldPermissions", edit_only)
    assert _error(resp)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    user = api.get("/services/oauth2/userinfo").json()
    assert user["preferred_username"] == stock.salesforce_username
    assert user["organization_id"].startswith("00D")
    assignment = {"AssigneeId": user["user_id"], "PermissionSetId": permset}
    api.create("PermissionSetAssignment", assignment)
    resp = api.send("POST", f"{DATA}/sobjects/PermissionSetAssignment", assignment)
    assert _error(resp)["errorCode"] == "DUPLICATE_VALUE"
    nobody = {"AssigneeId": "0055g00000000ZZZZZ", "PermissionSetId": permset}
    resp = api.send("POST", f"{DATA}/sobjects/PermissionSetAssignment", nobody)
    assert _error(resp)["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_without_customize_application_tooling_creates_are_refused() -> None:
    with running_sandbox(contacts=20, seed=2, salesforce_can_customize=False) as sb:
        resp = Api(sb).create_field("Lead.Denied__c", type="Text", length=5)
        assert resp.status_code == 403
        assert _error(resp) == {
            "message": "insufficient access rights on entity",
            "errorCode": "INSUFFICIENT_ACCESS",
        }


def test_hidden_standard_fields_are_absent_until_granted() -> None:
    with running_sandbox(contacts=40, seed=2, salesforce_hidden_fields={"Lead.Industry"}) as sb:
        api = Api(sb)
        assert "Industry" not in _described(api, "Lead")
        resp = api.query("SELECT Id, Industry FROM Lead")
        assert resp.status_code == 400 and _error(resp)["errorCode"] == "INVALID_FIELD"
        lead = _leads(sb)[0]
        resp = api.send("PATCH", f"{DATA}/sobjects/Lead/{lead}", {"Industry": "Retail"})
        assert _error(resp)["errorCode"] == "INVALID_FIELD"
        _grant(api, ["Lead.Industry"])
        assert "Industry" in _described(api, "Lead")
        assert api.rows("SELECT Id, Industry FROM Lead LIMIT 1")


# -- 8. all-day events -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["configured", "stock"])
def test_some_events_are_all_day(profile: str, org: SandboxHandle, stock: SandboxHandle) -> None:
    sb = org if profile == "configured" else stock
    rows = Api(sb).rows(
        "SELECT Id, IsAllDayEvent, ActivityDateTime, ActivityDate, DurationInMinutes, "
        "StartDateTime FROM Event"
    )
    all_day = [r for r in rows if r["IsAllDayEvent"]]
    timed = [r for r in rows if not r["IsAllDayEvent"]]
    assert all_day and timed
    for r in all_day:
        assert r["ActivityDateTime"] is None and r["DurationInMinutes"] == 1440
        assert r["StartDateTime"].startswith(r["ActivityDate"] + "T00:00:00")
    for r in timed:
        assert r["ActivityDateTime"].startswith(r["ActivityDate"])
        assert 0 < r["DurationInMinutes"] < 1440


# -- 9. the options through `python -m sandbox` ---------------------------------------------


def test_the_command_line_serves_the_options_and_the_jwt_key() -> None:
    with sandbox_process(
        contacts=40,
        seed=2,
        profile="stock",
        salesforce_hidden_fields=["Lead.Title"],
        salesforce_can_customize=False,
    ) as proc:
        assert Path(proc.salesforce_jwt_key_file).is_file()
        api = Api(proc, session_id=proc.new_salesforce_jwt_session())
        described = _described(api, "Lead")
        assert "Title" not in described and not [n for n in described if n.endswith("__c")]
        assert api.create_field("Lead.X__c", type="Text", length=5).status_code == 403
        assert proc.admin.info()["salesforce_jwt_key_file"] == proc.salesforce_jwt_key_file
