from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.mapping import default_mapping
from connectors.translate import RecordError, parse_datetime, to_activity, to_contact
from scoring.records import ActivityType, Crm, LifecycleStage

HUBSPOT = default_mapping(Crm.HUBSPOT)
SALESFORCE = default_mapping(Crm.SALESFORCE)


@pytest.mark.parametrize(
    "raw",
    [
        "2026-01-31T09:00:00Z",
        "2026-01-31T09:00:00.000Z",
        "2026-01-31T09:00:00.000+0000",
        "2026-01-31T09:00:00+00:00",
        "1769850000000",
    ],
)
def test_timestamps(raw: str) -> None:
    assert parse_datetime(raw) == datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def test_hubspot_contact() -> None:
    contact = to_contact(
        HUBSPOT,
        HUBSPOT.contacts[0],
        "101",
        {
            "email": "a@b.example",
            "numemployees": "250",
            "lifecyclestage": "marketingqualifiedlead",
            "hs_lead_status": "OPEN",
            "lastmodifieddate": "2026-01-31T09:00:00.000Z",
            "business_license_number": "BL-1",
        },
    )
    assert contact.company_size == 250
    assert contact.lifecycle_stage is LifecycleStage.MQL
    assert contact.lead_status == "OPEN"
    assert contact.properties["business_license_number"] == "BL-1"


def test_salesforce_contact_reads_relationship_fields() -> None:
    row = {
        "Id": "003x",
        "Email": "c@d.example",
        "Account": {"Name": "Acme", "NumberOfEmployees": 40, "Industry": "Retail"},
        "MailingCountry": "DE",
    }
    contact = to_contact(SALESFORCE, SALESFORCE.source("Contact"), "003x", row)
    assert (contact.company, contact.company_size, contact.country) == ("Acme", 40, "DE")
    assert contact.lifecycle_stage == "sql"  # the mapping's fixed stage for converted leads


def test_bad_number_is_a_record_error() -> None:
    with pytest.raises(RecordError):
        to_contact(HUBSPOT, HUBSPOT.contacts[0], "1", {"numemployees": "many"})


def test_the_form_decides_the_activity_type() -> None:
    submission = {
        "form": ("2f1c0d9e-0000-4000-8000-000000000003", "Download content"),
        "form_name": "Download content",
        "page_url": "https://www.example.com/forms/content-download",
        "values": {"email": "a@b.example"},
    }
    activity = to_activity(HUBSPOT, "forms", "conv1", "101", 1769850000000, submission)
    assert activity is not None
    assert activity.type is ActivityType.CONTENT_DOWNLOAD
    assert (activity.form, activity.url) == (
        "Download content",
        "https://www.example.com/forms/content-download",
    )
    # Webinar registrations come from participations: the form is skipped, not counted.
    webinar = {**submission, "form": ("x", "Webinar registration")}
    assert to_activity(HUBSPOT, "forms", "conv2", "101", 1769850000000, webinar) is None


def test_email_events_and_participations_by_type_and_state() -> None:
    click = {"type": "CLICK", "url": "https://example.com/pricing", "emailCampaignId": 310000001}
    activity = to_activity(HUBSPOT, "marketing_email", "1:e1", "101", 1769850000000, click)
    assert activity is not None and activity.type is ActivityType.EMAIL_CLICK
    assert (activity.url, activity.campaign) == ("https://example.com/pricing", "310000001")
    sent = to_activity(HUBSPOT, "marketing_email", "1:e2", "101", 1769850000000, {"type": "SENT"})
    assert sent is not None and sent.raw_type == "marketing_email:SENT"
    attended = {"state": "ATTENDED", "event_name": "Pricing 101"}
    webinar = to_activity(HUBSPOT, "webinars", "p1", "101", 1769850000000, attended)
    assert webinar is not None and webinar.type is ActivityType.WEBINAR_ATTENDED
    assert webinar.campaign == "Pricing 101"
    with pytest.raises(RecordError, match="recipient"):
        to_activity(HUBSPOT, "marketing_email", "1:e3", None, 1769850000000, click)


def test_unknown_activity_is_kept_as_other_with_raw_type() -> None:
    activity = to_activity(
        SALESFORCE, "Task", "00T1", "00Q1", "2026-01-31T09:00:00Z", {"Type": "Call"}
    )
    assert activity is not None
    assert activity.type is ActivityType.OTHER
    assert activity.raw_type == "Task:Call"
    unnamed = to_activity(HUBSPOT, "e_new_thing", "ev2", "101", "2026-01-31T09:00:00Z", {})
    assert unnamed is not None and unnamed.raw_type == "e_new_thing"


def test_campaign_member_and_handoff_tasks() -> None:
    row = {"Status": "Attended", "Campaign": {"Type": "Webinar", "Name": "Pricing 101"}}
    activity = to_activity(
        SALESFORCE, "CampaignMember", "00v1", "003x", "2026-01-31T09:00:00Z", row
    )
    assert activity is not None and activity.type is ActivityType.WEBINAR_ATTENDED
    assert activity.campaign == "Pricing 101"
    assert (
        to_activity(
            SALESFORCE, "Task", "00T2", "00Q1", "2026-01-31T09:00:00Z", {"Type": "MQL Handoff"}
        )
        is None
    )


@pytest.mark.parametrize(
    ("raw", "size"),
    [("250", 250), (120, 120), ("25-50", 25), ("1000+", 1000), ("5,000-10,000", 5000), ("", None)],
)
def test_company_size_reads_numbers_and_hubspot_bands(raw: str | int, size: int | None) -> None:
    from connectors.translate import _int

    assert _int(raw) == size


def test_a_company_size_that_is_no_number_is_a_record_error() -> None:
    from connectors.translate import RecordError, _int

    with pytest.raises(RecordError, match="lots"):
        _int("lots")
