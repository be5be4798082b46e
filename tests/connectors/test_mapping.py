from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import MappingError
from connectors.mapping import MAPPABLE_CONTACT_FIELDS, default_mapping, load_mapping
from scoring.records import ActivityType, Crm, LifecycleStage
from scoring.writes import WRITE_FIELDS

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"


@pytest.mark.parametrize("crm", list(Crm))
def test_every_canonical_field_is_mapped_or_knowingly_left_out(crm: Crm) -> None:
    mapping = default_mapping(crm)
    coverage = mapping.coverage()
    assert set(coverage) == MAPPABLE_CONTACT_FIELDS
    missing = [name for name, state in coverage.items() if state == "missing"]
    assert missing == [], f"{crm}: map these or list them under not_mapped: {missing}"
    assert set(mapping.write_back) == WRITE_FIELDS


@pytest.mark.parametrize("crm", list(Crm))
def test_every_activity_type_has_a_source(crm: Crm) -> None:
    mapping = default_mapping(crm)
    produced = {rule.type for rule in mapping.activities}
    assert produced == set(ActivityType) - {ActivityType.OTHER}


def test_stage_values_read_back() -> None:
    hubspot = default_mapping(Crm.HUBSPOT)
    assert hubspot.stage.from_crm("marketingqualifiedlead") is LifecycleStage.MQL
    assert hubspot.stage.from_crm("other") is None
    salesforce = default_mapping(Crm.SALESFORCE)
    assert salesforce.stage.from_crm("Recycled") is LifecycleStage.LEAD
    assert salesforce.lead_status.values["recycled"] == "Recycled"
    assert salesforce.lead_status.key_for("Unqualified") == "rejected"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = (SHIPPED / "hubspot.yaml").read_text()
    assert old in text
    return _write(tmp_path, text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_unknown_canonical_field_names_file_and_line(tmp_path: Path) -> None:
    path = _edited(tmp_path, "      job_title: jobtitle", "      job_titel: jobtitle")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert f"{path}:{_line_of(path, 'job_titel')}:" in str(info.value)
    assert "job_titel" in str(info.value)


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = _edited(
        tmp_path, "      country: country\n", "      country: country\n      email: email2\n"
    )
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert f"{path}:{_line_of(path, 'email2')}: duplicate key 'email'" in str(info.value)


def test_crm_field_mapped_twice_is_an_error(tmp_path: Path) -> None:
    path = _edited(tmp_path, "      industry: industry", "      industry: company")
    with pytest.raises(MappingError, match="mapped twice"):
        load_mapping(path)


def test_wrong_type_names_line(tmp_path: Path) -> None:
    path = _edited(tmp_path, "    type: page_view", "    type: [page_view]")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert f"{path}:{_line_of(path, 'type: [page_view]')}:" in str(info.value)


def test_unknown_activity_type_and_missing_write_field(tmp_path: Path) -> None:
    path = _edited(tmp_path, "    type: page_view", "    type: page_visit")
    with pytest.raises(MappingError, match="page_visit"):
        load_mapping(path)
    path = _edited(tmp_path, "  grade: mqlsync_grade\n", "")
    with pytest.raises(MappingError, match="grade"):
        load_mapping(path)


def test_custom_property_is_added_by_editing_the_file(tmp_path: Path) -> None:
    path = _edited(
        tmp_path,
        "      real_estate_license: real_estate_license\n",
        "      real_estate_license: real_estate_license\n      favourite_colour: fav_colour\n",
    )
    mapping = load_mapping(path)
    assert "fav_colour" in mapping.contacts[0].crm_fields()


# --- HubSpot activity sources: kinds and what their rules may match ---------------------


def test_the_shipped_hubspot_sources_have_kinds() -> None:
    sources = default_mapping(Crm.HUBSPOT).activity_sources
    kinds = {name: decl.kind for name, decl in sources.items()}
    assert kinds["e_visited_page"] == "events_api"
    assert kinds["marketing_email"] == "email_events"
    assert kinds["forms"] == "form_submissions"
    assert kinds["webinars"] == "marketing_events"
    assert {sources[n].object for n, k in kinds.items() if k == "crm_object"} == {
        "meetings",
        "calls",
        "emails",
        "communications",
    }
    assert all(d.kind is None for d in default_mapping(Crm.SALESFORCE).activity_sources.values())


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        # A source of the old format, without a kind.
        (
            "  e_visited_page:                 # Events API type (Enterprise)\n"
            "    kind: events_api\n",
            "  e_visited_page: {}\n",
            "e_visited_page: {}",
            ["needs a kind", "events_api"],
        ),
        ("    kind: form_submissions", "    kind: form_submission", "form_submission", ["kind"]),
        (
            "    object: calls\n",
            "",
            "  calls:",
            ["crm_object needs object"],
        ),
        (
            "event_types: [OPEN, CLICK, BOUNCE, STATUSCHANGE]",
            "event_types: [OPEN, CLIK, BOUNCE, STATUSCHANGE]",
            "CLIK",
            ["unknown email event type 'CLIK'", "did you mean `CLICK`"],
        ),
        (
            "    when: {type: BOUNCE}",
            "    when: {type: BOUNSE}",
            "BOUNSE",
            ["type 'BOUNSE' never occurs", "did you mean `BOUNCE`"],
        ),
        (
            "    when: {type: BOUNCE}",
            "    when: {type: DELIVERED}",
            "DELIVERED",
            ["reads only", "'DELIVERED' never arrives"],
        ),
        (
            "    when: {state: ATTENDED}",
            "    when: {state: ATTEND}",
            "ATTEND}",
            ["state 'ATTEND' never occurs", "did you mean `ATTENDED`"],
        ),
        (
            "    when: {form: Request a demo}",
            "    when: {from: Request a demo}",
            "from: Request",
            ["form_submissions source 'forms' has no field 'from'", "did you mean `form`"],
        ),
    ],
    ids=[
        "no-kind",
        "bad-kind",
        "no-object",
        "email-type",
        "rule-type",
        "unread-type",
        "state",
        "form-field",
    ],
)
def test_a_bad_source_or_rule_names_file_and_line(
    tmp_path: Path, old: str, new: str, needle: str, words: list[str]
) -> None:
    path = _edited(tmp_path, old, new)
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    message = str(info.value)
    assert f"{path}:{_line_of(path, needle)}:" in message, message
    for word in words:
        assert word in message, message


def test_a_salesforce_source_has_no_kind(tmp_path: Path) -> None:
    text = (SHIPPED / "salesforce.yaml").read_text()
    path = _write(tmp_path, text.replace("  Task:\n", "  Task:\n    kind: events_api\n", 1))
    with pytest.raises(MappingError, match="is a HubSpot source"):
        load_mapping(path)


def test_a_form_rule_matches_the_guid_or_the_name() -> None:
    from connectors.translate import to_activity

    mapping = default_mapping(Crm.HUBSPOT)
    record = {
        "form": ("0b6c5a1e-0000-4000-8000-000000000001", "Request a demo"),
        "form_name": "Request a demo",
        "page_url": "https://example.com/demo",
    }
    activity = to_activity(mapping, "forms", "c1", "101", 1769850000000, record)
    assert activity is not None and activity.type is ActivityType.DEMO_REQUEST
    assert (activity.form, activity.url) == ("Request a demo", "https://example.com/demo")
    unknown = {**record, "form": ("0b6c5a1e-0000-4000-8000-000000000002", "Newsletter")}
    other = to_activity(mapping, "forms", "c2", "101", 1769850000000, unknown)
    assert other is not None and other.type is ActivityType.OTHER
    assert other.raw_type == "forms:0b6c5a1e-0000-4000-8000-000000000002 / Newsletter"
