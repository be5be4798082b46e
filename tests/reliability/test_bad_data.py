"""One bad CRM value is one bad record, never a stopped sync.

A corpus of values CRM users, imports and integrations really produce goes through the
translation of both CRMs (unit layer), then a few of them are planted in a sandbox and
pulled over HTTPS into SQLite and PostgreSQL stores by the real connectors (end to end):
every planted bad record is reported with its id, field and value, every other contact
arrives, and nothing raises. Hypothesis adds arbitrary payloads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine

from connectors.mapping import ContactSource, Mapping, default_mapping
from connectors.paging import RecordIssue
from connectors.translate import (
    MAX_COMPANY_SIZE,
    MAX_ID,
    MAX_KEY,
    MAX_TEXT,
    RecordError,
    issue_id,
    last_numeric_id,
    parse_datetime,
    properties_of,
    record_id,
    show,
    to_activity,
    to_contact,
    validation_error,
)
from scoring.records import Activity, ActivityType, Contact, Crm
from store import audit, mirror
from store.audit import AuditEvent
from tests.connectors.conftest import make_connector

HUBSPOT = default_mapping(Crm.HUBSPOT)
SALESFORCE = default_mapping(Crm.SALESFORCE)
MAPPINGS = {"hubspot": HUBSPOT, "salesforce": SALESFORCE}
LONG = "Head of Growth " * 6_700  # about 100 kB
WHEN = "2026-01-31T09:00:00Z"
AT = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
OK = object()  # "passes, whatever the canonical value"


def _lead(mapping: Mapping) -> ContactSource:
    return mapping.contacts[0]  # HubSpot contacts, Salesforce Leads


def crm_field(mapping: Mapping, field: str) -> str:
    source = _lead(mapping)
    if field == "lifecycle_stage":
        return mapping.stage.field
    return {**source.fields, **source.properties}[field]


def assert_names(exc: RecordError, field: str, crm: str | None, value: Any) -> None:
    message = str(exc)
    assert "\n" not in message
    assert f"field {field}" in message, message
    if crm is not None and crm != field:
        assert crm in message, message
    assert show(value) in message, message
    assert len(message) < 400, message


# --- the corpus: contacts -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    field: str
    value: Any
    # A RecordError expected (True), or the canonical value expected (OK: any).
    error: bool
    expected: Any = OK

    @property
    def id(self) -> str:
        return f"{self.field}={show(self.value)[:30]}"


CONTACT_CASES = [
    # Company size: overflow, NaN/inf, negative, absurd, bools and lists where numbers go.
    Case("company_size", "1e400", True),
    Case("company_size", "1e30", True),
    Case("company_size", 10**30, True),
    Case("company_size", 2**31, True),
    Case("company_size", "2147483648", True),
    Case("company_size", MAX_COMPANY_SIZE + 1, True),
    Case("company_size", "-5", True),
    Case("company_size", -5, True),
    Case("company_size", -0.5, True),
    Case("company_size", "nan", True),
    Case("company_size", math.nan, True),
    Case("company_size", "inf", True),
    Case("company_size", -math.inf, True),
    Case("company_size", True, True),
    Case("company_size", "lots", True),
    Case("company_size", ",,,", True),
    Case("company_size", "9" * 5_000, True),
    Case("company_size", [250], True),
    Case("company_size", {"value": 250}, True),
    Case("company_size", "10000+", False, 10_000),
    Case("company_size", "25-50", False, 25),
    Case("company_size", "5,000-10,000", False, 5_000),
    Case("company_size", " 250 ", False, 250),
    Case("company_size", 250.0, False, 250),
    Case("company_size", "0", False, 0),
    Case("company_size", "", False, None),
    Case("company_size", "   ", False, None),
    # Timestamps: impossible days, placeholders, words, epoch strings, out of range.
    Case("created_at", "2026-02-30", True),
    Case("created_at", "0000-00-00", True),
    Case("created_at", "yesterday", True),
    Case("created_at", "12345678901234567890", True),
    Case("created_at", 10**20, True),
    Case("created_at", -(10**20), True),
    Case("created_at", math.inf, True),
    Case("created_at", "0001-01-01T00:00:00+01:00", True),
    Case("created_at", "9999-12-31T23:59:59-05:00", True),
    Case("created_at", "10000-01-01T00:00:00Z", True),
    Case("created_at", True, True),
    Case("created_at", ["2026-01-31"], True),
    Case("created_at", "2026-01-31T09:00:00", False, AT),  # no zone: read as UTC
    Case("created_at", "2026-01-31T09:00:00.000+0000", False, AT),
    Case("created_at", "1769850000000", False, AT),
    Case("created_at", 1769850000000, False, AT),
    Case("created_at", "2026-01-31", False, datetime(2026, 1, 31, tzinfo=UTC)),
    Case("created_at", "", False, None),
    # Free text: huge values are cut, control characters dropped, Unicode kept.
    Case("job_title", LONG, False, OK),
    Case("job_title", "VP\x00Marketing", False, "VPMarketing"),
    Case("job_title", "Head\x07of\x1b Sales\x7f", False, "Headof Sales"),
    Case("job_title", "Head of Sales\u0085", False, "Head of Sales"),
    Case("job_title", "lone \ud800 surrogate", False, "lone \ufffd surrogate"),
    Case("job_title", "Директор по маркетингу 👩‍💼", False, "Директор по маркетингу 👩‍💼"),
    Case("job_title", "מנהלת שיווק", False, "מנהלת שיווק"),
    Case("job_title", "مدير التسويق\u200f", False, "مدير التسويق\u200f"),
    Case("job_title", "   ", False, None),
    Case("job_title", "", False, None),
    Case("job_title", 42, False, "42"),
    Case("job_title", ["VP", "Marketing"], True),
    Case("job_title", {"title": "VP"}, True),
    Case("job_title", False, True),
    Case("job_title", math.nan, True),
    Case("first_name", "Zoë 🦄", False, "Zoë 🦄"),
    Case("last_name", "\t\n", False, None),
    # Identifiers are never cut: a shortened email is somebody else's.
    Case("email", "x" * 300 + "@example.com", True),
    Case("email", "ann@example.com\x00", False, "ann@example.com"),
    Case("email", ["ann@example.com"], True),
    Case("owner_id", {"id": 7}, True),
    Case("lead_status", True, True),
    Case("lifecycle_stage", ["lead"], True),
    # Custom properties: scalars only, finite, and text cleaned like text.
    Case("business_license_number", math.nan, True),
    Case("business_license_number", 10**30, True),
    Case("business_license_number", ["BL-1"], True),
    Case("business_license_number", "BL\x00-1", False, "BL-1"),
    Case("business_license_number", LONG, False, OK),
    Case("business_license_number", 12345, False, 12345),
]


def _contact_record(crm: str, field: str, value: Any) -> dict[str, Any]:
    mapping = MAPPINGS[crm]
    name = crm_field(mapping, field)
    base: dict[str, Any] = {crm_field(mapping, "email"): "base@example.com"}
    if "." in name:
        head, _, rest = name.partition(".")
        base[head] = {rest: value}
    else:
        base[name] = value
    return base


def _canonical(contact: Contact, field: str) -> Any:
    return contact.field_value(field)


def test_the_corpus_is_large_enough() -> None:
    assert len(CONTACT_CASES) >= 30
    assert len({c.id for c in CONTACT_CASES}) == len(CONTACT_CASES)


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
@pytest.mark.parametrize("case", CONTACT_CASES, ids=lambda c: c.id)
def test_contact_value(crm: str, case: Case) -> None:
    mapping = MAPPINGS[crm]
    record = _contact_record(crm, case.field, case.value)
    if case.error:
        with pytest.raises(RecordError) as caught:
            to_contact(mapping, _lead(mapping), "rec-1", record)
        name = crm_field(mapping, case.field)
        # Salesforce's Lead.Status holds both the lead status and the stage: read first
        # as the lead status, it is refused under that name.
        field = next((f for f, n in _lead(mapping).fields.items() if n == name), case.field)
        assert_names(caught.value, field, name, case.value)
        assert caught.value.field == field
        return
    contact = to_contact(mapping, _lead(mapping), "rec-1", record)
    value = _canonical(contact, case.field)
    if case.expected is OK:
        assert isinstance(value, str) and len(value) <= MAX_TEXT and value.endswith("…")
        assert value.startswith(case.value[:100])
    else:
        assert value == case.expected
    assert_storable(contact)


def test_huge_text_is_cut_to_the_limit_and_says_so() -> None:
    contact = to_contact(HUBSPOT, _lead(HUBSPOT), "1", {"jobtitle": LONG, "company": "x" * 1001})
    assert contact.job_title is not None and len(contact.job_title) == MAX_TEXT
    assert contact.company == "x" * (MAX_TEXT - 1) + "…"
    assert to_contact(HUBSPOT, _lead(HUBSPOT), "1", {"company": "x" * 1000}).company == "x" * 1000


def test_the_message_repr_shows_control_characters_and_is_short() -> None:
    with pytest.raises(RecordError) as caught:
        to_contact(HUBSPOT, _lead(HUBSPOT), "1", {"numemployees": "12\x00" + "9" * 200})
    message = str(caught.value)
    assert "\\x00" in message and "\x00" not in message
    assert "(203 chars)" in message
    assert message.startswith("field company_size (numemployees): value '12\\x00999")


def test_the_example_message_of_a_negative_size() -> None:
    with pytest.raises(RecordError) as caught:
        to_contact(HUBSPOT, _lead(HUBSPOT), "1", {"numemployees": -5})
    assert str(caught.value) == "field company_size (numemployees): value -5: must be >= 0"


def test_salesforce_relationship_fields_are_named_with_their_path() -> None:
    source = SALESFORCE.source("Contact")
    row = {"Account": {"Name": "Acme", "NumberOfEmployees": 10**12}}
    with pytest.raises(RecordError) as caught:
        to_contact(SALESFORCE, source, "003x", row)
    assert_names(caught.value, "company_size", "Account.NumberOfEmployees", 10**12)
    assert to_contact(SALESFORCE, source, "003x", {"Account": None}).company is None


@pytest.mark.parametrize(
    ("crm_id", "why"),
    [("", "missing"), ("x" * (MAX_ID + 1), "longer than 64"), ("00Q\x00", "control")],
)
def test_contact_ids_are_refused_not_repaired(crm_id: str, why: str) -> None:
    with pytest.raises(RecordError, match=why):
        to_contact(HUBSPOT, _lead(HUBSPOT), crm_id, {})


def test_a_record_that_is_no_object_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="expected an object"):
        to_contact(HUBSPOT, _lead(HUBSPOT), "1", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="expected an object"):
        to_activity(HUBSPOT, "e_visited_page", "e1", "1", WHEN, "junk")  # type: ignore[arg-type]


def test_pydantic_errors_become_one_line_naming_field_and_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Contact(crm=Crm.HUBSPOT, crm_id="1", company_size=-5, lifecycle_stage="nope")  # type: ignore[arg-type]
    error = validation_error(caught.value, {"company_size": "numemployees"})
    message = str(error)
    assert "\n" not in message
    assert "field company_size (numemployees): value -5: must be >= 0" in message
    assert "field lifecycle_stage: value 'nope': must be one of" in message
    assert error.field == "company_size"


# --- the corpus: activities -----------------------------------------------------------


@dataclass(frozen=True)
class ActivityCase:
    name: str
    crm_id: Any = "act-1"
    contact_id: Any = "101"
    occurred_at: Any = WHEN
    subject: Any = "Pricing"
    kind: Any = None  # the type field (HubSpot eventType / Salesforce Task.Type)
    error: str | None = None  # canonical field named in the RecordError
    value: Any = None  # the value the message must show


ACTIVITY_CASES = [
    ActivityCase(
        "impossible day", occurred_at="2026-02-30", error="occurred_at", value="2026-02-30"
    ),
    ActivityCase(
        "placeholder date", occurred_at="0000-00-00", error="occurred_at", value="0000-00-00"
    ),
    ActivityCase("a word", occurred_at="yesterday", error="occurred_at", value="yesterday"),
    ActivityCase("20-digit epoch", occurred_at="9" * 20, error="occurred_at", value="9" * 20),
    ActivityCase("epoch ms beyond datetime", occurred_at=2**62, error="occurred_at", value=2**62),
    ActivityCase("NaN time", occurred_at=math.nan, error="occurred_at", value=math.nan),
    ActivityCase("bool time", occurred_at=True, error="occurred_at", value=True),
    ActivityCase("no time", occurred_at=None, error="occurred_at"),
    ActivityCase("empty time", occurred_at="  ", error="occurred_at"),
    ActivityCase("zoneless time", occurred_at="2026-01-31T09:00:00"),
    ActivityCase("epoch ms", occurred_at=1769850000000),
    ActivityCase("no contact", contact_id=None, error="contact_id"),
    ActivityCase("empty contact", contact_id="", error="contact_id"),
    ActivityCase("long contact id", contact_id="1" * 65, error="contact_id", value="1" * 65),
    ActivityCase("list contact id", contact_id=["101"], error="contact_id", value=["101"]),
    ActivityCase("bool contact id", contact_id=True, error="contact_id", value=True),
    ActivityCase("NUL in contact id", contact_id="10\x001", error="contact_id", value="10\x001"),
    ActivityCase("int contact id", contact_id=101),
    ActivityCase("no id", crm_id="", error="crm_id", value=""),
    ActivityCase("huge subject", subject=LONG),
    ActivityCase("NUL subject", subject="\x00"),
    ActivityCase("RTL and emoji subject", subject="עמוד מחירים 💸"),
    ActivityCase("list subject", subject=["a"], error="subject", value=["a"]),
    ActivityCase("dict subject", subject={"a": 1}, error="subject", value={"a": 1}),
    ActivityCase("bool subject", subject=False, error="subject", value=False),
    ActivityCase("unknown type", kind="Carrier Pigeon"),
    ActivityCase("unknown huge type", kind="T" * 100_000),
    ActivityCase("unknown type with NUL", kind="Call\x00"),
    ActivityCase("empty type", kind=""),
]


def _activity_args(crm: str, case: ActivityCase) -> tuple[str, dict[str, Any]]:
    if crm == "hubspot":
        source = "e_visited_page" if case.kind is None else f"e_{case.kind}"
        return source, {"hs_url": "https://example.com/pricing", "hs_page_title": case.subject}
    kind = "Web Visit" if case.kind is None else case.kind
    return "Task", {"Type": kind, "Subject": case.subject}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
@pytest.mark.parametrize("case", ACTIVITY_CASES, ids=lambda c: c.name)
def test_activity_value(crm: str, case: ActivityCase) -> None:
    mapping = MAPPINGS[crm]
    source, record = _activity_args(crm, case)

    def translate() -> Activity | None:
        return to_activity(mapping, source, case.crm_id, case.contact_id, case.occurred_at, record)

    if case.error is not None:
        with pytest.raises(RecordError) as caught:
            translate()
        message = str(caught.value)
        assert f"field {case.error}" in message and "\n" not in message
        assert caught.value.field == case.error
        if case.value is not None:
            assert show(case.value) in message
        if case.error == "subject":
            assert ("hs_page_title" if crm == "hubspot" else "Subject") in message
        if case.error == "occurred_at":
            assert ("occurredAt" if crm == "hubspot" else "CreatedDate") in message
        return
    activity = translate()
    assert activity is not None
    assert activity.contact_id == str(case.contact_id)
    assert activity.occurred_at == AT
    if case.kind is None:
        assert activity.type is ActivityType.PAGE_VIEW
        subject = activity.subject
        assert subject is None or (len(subject) <= MAX_TEXT and "\x00" not in subject)
        if case.name == "RTL and emoji subject":
            assert subject == case.subject
    else:
        # Unknown types are kept as `other` with their raw type, never dropped.
        assert activity.type is ActivityType.OTHER
        assert activity.raw_type is not None
        assert len(activity.raw_type) <= MAX_TEXT and "\x00" not in activity.raw_type
        expected = "e_Call" if crm == "hubspot" else "Task:Call"
        if case.kind == "Call\x00":
            assert activity.raw_type == expected
    assert_storable(activity)


def test_unknown_types_keep_their_raw_type() -> None:
    hs = to_activity(HUBSPOT, "pe123_custom_event", "e1", "101", WHEN, {})
    sf = to_activity(SALESFORCE, "Task", "00T1", "00Q1", WHEN, {"Type": "Carrier Pigeon"})
    assert hs is not None and (hs.type, hs.raw_type) == (ActivityType.OTHER, "pe123_custom_event")
    assert sf is not None and (sf.type, sf.raw_type) == (ActivityType.OTHER, "Task:Carrier Pigeon")


def test_handoff_tasks_are_still_skipped_before_any_check() -> None:
    row = {"Type": "MQL Handoff"}
    assert to_activity(SALESFORCE, "Task", "00T1", None, None, row) is None


# --- the per-record helpers the connectors use -----------------------------------------


def test_record_ids() -> None:
    assert record_id({"id": "101"}, "id") == "101"
    assert record_id({"Id": 7}, "Id") == "7"
    for bad in ({}, {"id": None}, {"id": ""}, {"id": ["1"]}, {"id": True}, {"id": "x" * 65}):
        with pytest.raises(RecordError, match="field crm_id"):
            record_id(bad, "id")
    with pytest.raises(RecordError):
        record_id("not a record", "id")


def test_issue_ids_fit_the_audit_log() -> None:
    assert issue_id({"id": "101"}, "id") == "101"
    assert issue_id({}, "id") == "(no id)"
    assert issue_id(None, "id") == "(no id)"
    long = issue_id({"id": "9" * 500}, "id")
    assert len(long) <= MAX_ID
    assert "\x00" not in issue_id({"id": "1\x002"}, "id")
    assert issue_id({"id": ["a"]}, "id") == "['a']"


def test_properties_of_and_paging_ids() -> None:
    assert properties_of({"properties": None}) == {}
    assert properties_of({}) == {}
    with pytest.raises(RecordError, match="field properties"):
        properties_of({"properties": ["x"]})
    assert last_numeric_id([{"id": "5"}, {"id": "7"}]) == 7
    assert last_numeric_id([{"id": "5"}, {}, {"id": "x"}]) == 5  # page on past bad ones
    assert last_numeric_id([]) is None
    with pytest.raises(RecordError):
        last_numeric_id([{"id": None}])


def test_parse_datetime_names_the_crm_field_when_given() -> None:
    with pytest.raises(RecordError, match=r"field SystemModstamp: value 'soon'"):
        parse_datetime("soon", "SystemModstamp")
    assert parse_datetime("2026-01-31T09:00:00.000+0000") == AT


# --- what "storable" means ------------------------------------------------------------


def _texts(record: Contact | Activity) -> Iterator[str]:
    for value in record.model_dump().values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from (v for v in value.values() if isinstance(v, str))


def assert_storable(record: Contact | Activity) -> None:
    """What the store's columns and the scorer need of every record that passes."""
    for text in _texts(record):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates
        assert len(text) <= max(MAX_TEXT, MAX_KEY)
    assert len(record.crm_id) <= MAX_ID
    if isinstance(record, Contact):
        size = record.company_size
        assert size is None or 0 <= size <= MAX_COMPANY_SIZE
        for value in record.properties.values():
            assert not isinstance(value, float) or math.isfinite(value)
            assert not isinstance(value, list | dict)
        for stamp in (record.created_at, record.updated_at):
            assert stamp is None or 1900 <= stamp.astimezone(UTC).year < 2200
    else:
        assert len(record.contact_id) <= MAX_ID
        assert 1900 <= record.occurred_at.astimezone(UTC).year < 2200


# --- hypothesis: any payload is a record or a RecordError, nothing else -----------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["1e400", "nan", "-5", "10000+", "2026-02-30", "9" * 20, "\x00", " "])
)
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=5), SCALARS)


def _keys(mapping: Mapping) -> list[str]:
    names = {mapping.stage.field}
    for source in mapping.contacts:
        names |= {f.partition(".")[0] for f in source.crm_fields()}
    return sorted(names)


PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(
    st.sampled_from(["hubspot", "salesforce"]).flatmap(
        lambda crm: st.tuples(
            st.just(crm),
            st.sampled_from(range(len(MAPPINGS[crm].contacts))),
            st.dictionaries(
                st.sampled_from(_keys(MAPPINGS[crm])) | st.text(max_size=8),
                VALUES | st.fixed_dictionaries({"NumberOfEmployees": VALUES, "Name": VALUES}),
                max_size=12,
            ),
        )
    ),
    st.one_of(st.text(max_size=70), st.integers()),
)
def test_any_contact_payload_is_a_contact_or_a_record_error(
    payload: tuple[str, int, dict[str, Any]], crm_id: Any
) -> None:
    crm, index, record = payload
    mapping = MAPPINGS[crm]
    try:
        contact = to_contact(mapping, mapping.contacts[index], crm_id, record)
    except RecordError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2_000
        return
    assert_storable(contact)


@PROFILE
@given(
    st.sampled_from(["hubspot", "salesforce"]),
    st.data(),
    VALUES,
    VALUES,
    VALUES,
    st.dictionaries(st.text(max_size=12), VALUES, max_size=6),
)
def test_any_activity_payload_is_an_activity_none_or_a_record_error(
    crm: str, data: st.DataObject, crm_id: Any, contact_id: Any, occurred_at: Any, record: Any
) -> None:
    mapping = MAPPINGS[crm]
    source = data.draw(st.sampled_from(sorted(mapping.activity_sources)) | st.text(max_size=20))
    fields = mapping.activity_fields(source) if source in mapping.activity_sources else []
    for name in fields:
        if data.draw(st.booleans()):
            record[name.partition(".")[0]] = data.draw(VALUES)
    try:
        activity = to_activity(mapping, source, crm_id, contact_id, occurred_at, record)
    except RecordError as exc:
        assert "\n" not in str(exc)
        return
    if activity is not None:
        assert_storable(activity)


# --- end to end: planted bad values, real connectors, real stores -----------------------

POPULATION = 120  # the first half in HubSpot, the rest in Salesforce
SEED = 23

# (raw values as a CRM user typed them, the canonical field refused or None when they pass)
HUBSPOT_PLANTS: list[tuple[dict[str, Any], str | None]] = [
    ({"numemployees": "1e400"}, "company_size"),
    ({"numemployees": "1e30"}, "company_size"),
    ({"numemployees": "-5"}, "company_size"),
    ({"numemployees": "lots"}, "company_size"),
    ({"email": "a" * 300 + "@example.com"}, "email"),
    ({"numemployees": "10000+"}, None),
    ({"jobtitle": LONG}, None),
    ({"jobtitle": "VP\x00 Sales\x07"}, None),
    ({"firstname": "Zoë 🦄", "lastname": "כהן"}, None),
    ({"company": "   ", "industry": ""}, None),
]
SALESFORCE_PLANTS: list[tuple[dict[str, Any], str | None]] = [
    ({"NumberOfEmployees": "1e400"}, "company_size"),
    ({"NumberOfEmployees": 10**30}, "company_size"),
    ({"NumberOfEmployees": -5}, "company_size"),
    ({"NumberOfEmployees": True}, "company_size"),
    ({"Title": ["VP", "Sales"]}, "job_title"),
    ({"Email": {"address": "x@example.com"}}, "email"),
    ({"NumberOfEmployees": "10000+"}, None),
    ({"Title": LONG}, None),
    ({"Title": "VP\x00 Sales\x07"}, None),
    ({"FirstName": "Zoë 🦄", "LastName": "كريم"}, None),
]


@pytest.fixture(scope="module")
def planted() -> Iterator[Any]:
    """A small sandbox with the bad values planted, as the CRMs' users would type them."""
    from sandbox.testing import running_sandbox

    with running_sandbox(
        contacts=POPULATION, seed=SEED, activities_per_contact=4, hubspot_search_per_s=100
    ) as sb:
        hubspot_ids = sorted(sb.admin.expected("hubspot")["contacts"])
        expected = sb.admin.expected("salesforce")
        # Live leads only: a converted one is not pulled, so its plant would not be met.
        leads = sorted(set(expected["leads"]) - set(expected["converted_leads"]))
        plants = {
            "hubspot": dict(zip(hubspot_ids, HUBSPOT_PLANTS, strict=False)),
            "salesforce": dict(zip(leads, SALESFORCE_PLANTS, strict=False)),
        }
        assert len(plants["hubspot"]) == len(HUBSPOT_PLANTS)
        assert len(plants["salesforce"]) == len(SALESFORCE_PLANTS)
        for crm_id, (values, _) in plants["hubspot"].items():
            _plant(sb, f"/hubspot/contacts/{crm_id}/properties", {"properties": values})
        for crm_id, (values, _) in plants["salesforce"].items():
            _plant(sb, f"/salesforce/records/{crm_id}/fields", {"fields": values})
        yield sb, plants


def _plant(sb: Any, path: str, body: dict[str, Any]) -> None:
    response = sb.admin.http.post(sb.admin.base + path, json=body, timeout=60)
    assert response.status_code == 200, response.text


def _live_ids(sb: Any, crm: str) -> set[str]:
    expected = sb.admin.expected(crm)
    if crm == "hubspot":
        return set(expected["contacts"])
    # A converted lead is no live contact: the Contact it became is.
    return set(expected["leads"]) - set(expected["converted_leads"]) | set(expected["contacts"])


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_planted_bad_values_are_reported_and_the_rest_arrive(
    planted: Any, crm: str, engine: Engine
) -> None:
    sb, plants = planted
    connector = make_connector(crm, sb)
    now = datetime.now(UTC)
    issues: list[RecordIssue] = []
    for page in connector.pull_contacts(None):
        mirror.upsert_contacts(engine, page.records, now)
        issues += page.errors
    # As the sync's pull task does: each bad record becomes an audit row.
    audit.record(
        engine,
        [
            AuditEvent(crm, i.crm_id, "pull", "bad_contacts", "skipped", message=i.message)
            for i in issues
        ],
        None,
        now,
    )

    bad = {crm_id: plant for crm_id, plant in plants[crm].items() if plant[1] is not None}
    assert {i.crm_id for i in issues} == set(bad)
    mapping = MAPPINGS[crm]
    for issue in issues:
        values, field = bad[issue.crm_id]
        (value,) = values.values()
        (name,) = values
        label = field if name == field else f"{field} ({name})"
        assert issue.message.startswith(f"field {label}: "), issue.message
        assert show(value) in issue.message
        assert crm_field(mapping, field) == name

    stored = {c.crm_id: c for c in mirror.load_contacts(engine, Crm(crm))}
    assert set(stored) == _live_ids(sb, crm) - set(bad)
    for crm_id, (values, field) in plants[crm].items():
        if field is not None:
            continue
        contact = stored[crm_id]
        assert_storable(contact)
        for name, value in values.items():
            canonical = next(k for k, v in _lead(mapping).fields.items() if v == name)
            got = contact.field_value(canonical)
            if value == "10000+":
                assert got == 10_000
            elif value == LONG:
                assert got is not None and len(got) == MAX_TEXT and got.startswith("Head of")
            elif isinstance(value, str) and "\x00" in value:
                assert got == "VP Sales"
            elif isinstance(value, str) and value.strip():
                assert got == value  # emoji and right-to-left text pass unchanged
            else:
                assert got is None
    for crm_id in bad:
        assert audit.history(engine, crm, crm_id)[0]["action"] == "bad_contacts"


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_activities_of_the_planted_population_pull_into_the_store(
    planted: Any, crm: str, engine: Engine
) -> None:
    sb, _ = planted
    connector = make_connector(crm, sb)
    pulled = 0
    for page in connector.pull_activities(None):
        assert page.errors == []
        mirror.upsert_activities(engine, page.records)
        pulled += len(page.records)
    assert pulled > 0
    contacts = sorted(_live_ids(sb, crm))
    stored = mirror.load_activities(engine, Crm(crm), contacts)
    assert 0 < sum(len(v) for v in stored.values()) <= pulled


def test_an_incremental_pull_reports_a_value_planted_after_the_first(
    planted: Any, engine: Engine
) -> None:
    """A value typed between two syncs is reported by the next one, which goes on."""
    sb, plants = planted
    connector = make_connector("hubspot", sb)
    first = [page for page in connector.pull_contacts(None)]
    cursor = next(p.cursor for p in reversed(first) if p.cursor is not None)
    victim = sorted(_live_ids(sb, "hubspot") - set(plants["hubspot"]))[0]
    _plant(sb, f"/hubspot/contacts/{victim}/properties", {"properties": {"numemployees": "∞"}})
    try:
        issues, records = [], []
        for page in connector.pull_contacts(cursor):
            mirror.upsert_contacts(engine, page.records, datetime.now(UTC))
            issues += page.errors
            records += page.records
        assert victim in {i.crm_id for i in issues}
        assert victim not in {c.crm_id for c in records}
        message = next(i.message for i in issues if i.crm_id == victim)
        assert message == (
            "field company_size (numemployees): value '∞': not a number or a size band"
        )
    finally:
        _plant(sb, f"/hubspot/contacts/{victim}/properties", {"properties": {"numemployees": "12"}})


def test_the_sandbox_refuses_values_it_could_not_serve(planted: Any) -> None:
    sb, _ = planted
    hubspot_id = sorted(_live_ids(sb, "hubspot"))[-1]
    lead = sorted(sb.admin.expected("salesforce")["leads"])[-1]

    def status(path: str, body: dict[str, Any]) -> int:
        return int(sb.admin.http.post(sb.admin.base + path, json=body, timeout=60).status_code)

    hubspot = f"/hubspot/contacts/{hubspot_id}/properties"
    assert status(hubspot, {"properties": {"createdate": "yesterday"}}) == 400
    assert status(hubspot, {"properties": {"numemployees": 5}}) == 400  # HubSpot sends strings
    assert status(hubspot, {"properties": {"jobtitle": "\ud800"}}) == 400  # not UTF-8
    assert status("/hubspot/contacts/999/properties", {"properties": {}}) == 404
    salesforce = f"/salesforce/records/{lead}/fields"
    assert status(salesforce, {"fields": {"CreatedDate": "soon"}}) == 400
    assert status(salesforce, {"fields": {"Nope__c": 1}}) == 400
