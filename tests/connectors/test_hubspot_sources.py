"""HubSpot activity sources on portals as they come: tiers, scopes, GUID forms, custom
event names, and the first pull's lookback, over TLS against the sandbox."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.workload import Pulled
from connectors.config import HubSpotConfig, ThrottleSettings
from connectors.hubspot import HubSpotConnector
from connectors.mapping import Mapping, load_mapping
from scoring.records import ActivityType
from tests.connectors.conftest import FAST, TEST_RETRY

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "hubspot.yaml"
SEED = 11
PEOPLE = 400
# Scopes of a token that can read contacts and their schema, and nothing of marketing.
CONTACTS_ONLY = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
]


def _connector(handle: Any, mapping: Mapping | None = None, **config: Any) -> HubSpotConnector:
    return HubSpotConnector(
        HubSpotConfig(
            access_token=handle.hubspot_token,
            host=handle.base_url,
            ca_file=handle.ca_file,
            timeout_s=5.0,
            throttle=FAST,
            search_throttle=ThrottleSettings(rate=4.5, burst=5),
            retry=TEST_RETRY,
            **config,
        ),
        mapping,
    )


def _activities(handle: Any, mapping: Mapping | None = None, **config: Any) -> Pulled:
    connector = _connector(handle, mapping, **config)
    out = Pulled()
    for page in connector.pull_activities(None):
        out.activities += page.records
        out.issues += [f"{e.crm_id}: {e.message}" for e in page.errors]
        out.warnings += page.warnings
        if page.cursor is not None:
            out.cursors["activities"] = page.cursor
    return out


def _types(pulled: Pulled) -> Counter[ActivityType]:
    return Counter(a.type for a in pulled.activities)


def _sandbox(**options: Any) -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=PEOPLE, seed=SEED, **options) as handle:
        yield handle


@pytest.fixture(scope="module")
def configured() -> Iterator[Any]:
    yield from _sandbox()


@pytest.fixture(scope="module")
def starter() -> Iterator[Any]:
    yield from _sandbox(profile="stock", tier="starter")


@pytest.fixture(scope="module")
def enterprise() -> Iterator[Any]:
    yield from _sandbox(profile="stock", tier="enterprise")


@pytest.fixture(scope="module")
def reference(configured: Any) -> Pulled:
    """The configured portal's activities: every source served."""
    return _activities(configured)


# At 4, sources and their slices of time are read at once: a refusal is still one warning.
@pytest.mark.parametrize("concurrency", [1, 4])
def test_below_enterprise_the_events_api_is_one_warning_and_the_rest_runs(
    starter: Any, reference: Pulled, concurrency: int
) -> None:
    pulled = _activities(starter, concurrency=concurrency)
    assert pulled.issues == []
    (warning,) = pulled.warnings
    assert "Events API" in warning and "Enterprise" in warning
    assert "e_visited_page, social_engagement, support_complaint" in warning
    assert pulled.cursors.get("activities") is not None  # the cursor still moves
    got, want = _types(pulled), _types(reference)
    # What only the Events API carries is missing; everything else arrives as it does on
    # the configured portal, form rules matching the stock portal's forms by name.
    only_events_api = {
        ActivityType.PAGE_VIEW,
        ActivityType.SOCIAL_ENGAGEMENT,
        ActivityType.SUPPORT_COMPLAINT,
    }
    assert not set(got) & only_events_api
    assert got == Counter({t: n for t, n in want.items() if t not in only_events_api})


@pytest.mark.parametrize("concurrency", [1, 4])
def test_missing_scopes_switch_their_sources_off_with_one_warning_each(
    enterprise: Any, reference: Pulled, concurrency: int
) -> None:
    enterprise.admin.http.put(
        enterprise.admin.base + "/hubspot/scopes", json={"scopes": CONTACTS_ONLY}, timeout=30
    ).raise_for_status()
    try:
        pulled = _activities(enterprise, concurrency=concurrency)
    finally:
        enterprise.admin.http.put(
            enterprise.admin.base + "/hubspot/scopes",
            json={"scopes": sorted(_product_scopes())},
            timeout=30,
        ).raise_for_status()
    assert pulled.issues == []
    assert len(pulled.warnings) == len(set(pulled.warnings)) == 4
    needs = {
        "social_engagement, support_complaint": "behavioral_events.event_definitions.read_write",
        "marketing_email": "the content scope",
        "forms": "the forms scope",
        "webinars": "crm.objects.marketing_events.read",
    }
    for sources, scope in needs.items():
        (warning,) = [w for w in pulled.warnings if f"source(s) {sources} off" in w]
        assert "MISSING_SCOPES" in warning and scope in warning
    got = _types(pulled)
    assert got[ActivityType.PAGE_VIEW] == _types(reference)[ActivityType.PAGE_VIEW]
    assert got[ActivityType.MEETING_BOOKED] > 0
    assert pulled.cursors.get("activities") is not None


def _product_scopes() -> frozenset[str]:
    from sandbox.auth import HUBSPOT_PRODUCT_SCOPES

    return HUBSPOT_PRODUCT_SCOPES


def test_custom_events_are_named_by_their_short_name(enterprise: Any, reference: Pulled) -> None:
    pulled = _activities(enterprise)
    assert pulled.warnings == [] and pulled.issues == []
    # The portal calls them pe{portalId}_social_engagement; the mapping does not.
    expected = enterprise.admin.expected("hubspot")["events"]
    got = _types(pulled)
    assert got[ActivityType.SOCIAL_ENGAGEMENT] == len(expected["pe_social_engagement"]) > 0
    assert got[ActivityType.SUPPORT_COMPLAINT] == len(expected["pe_support_complaint"]) > 0
    assert got == _types(reference)


def test_a_form_rule_may_name_the_form_by_guid(
    starter: Any, tmp_path: Path, reference: Pulled
) -> None:
    from sandbox.hubspot_marketing import form_guid

    text = SHIPPED.read_text()
    old = "when: {form: Request a demo}"
    assert old in text
    path = tmp_path / "hubspot.yaml"
    path.write_text(text.replace(old, f"when: {{form: {form_guid(SEED, 'demo-request')}}}"))
    pulled = _activities(starter, load_mapping(path))
    demos = [a for a in pulled.activities if a.type is ActivityType.DEMO_REQUEST]
    assert len(demos) == _types(reference)[ActivityType.DEMO_REQUEST] > 0
    assert {a.form for a in demos} == {"Request a demo"}


def test_the_first_pull_reaches_back_only_the_lookback(configured: Any, reference: Pulled) -> None:
    # The sandbox's data ends at its anchor date: reach back 30 days before it.
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    floor = as_of - timedelta(days=30)
    days = (datetime.now(UTC) - floor) / timedelta(days=1)
    pulled = _activities(configured, activity_lookback_days=days)
    assert pulled.issues == [] and pulled.warnings == []
    assert pulled.activities and len(pulled.activities) < len(reference.activities)
    # Every source starts at the floor (a minute of slack for the clock between the two);
    # attendance by when it was recorded, which may be after the webinar.
    on_time = [a for a in pulled.activities if a.type is not ActivityType.WEBINAR_ATTENDED]
    assert min(a.occurred_at for a in on_time) >= floor - timedelta(minutes=1)
    recent = {a.crm_id for a in reference.activities if a.occurred_at >= floor}
    assert recent <= {a.crm_id for a in pulled.activities}
    assert {a.type for a in pulled.activities} >= {
        ActivityType.PAGE_VIEW,
        ActivityType.EMAIL_OPEN,
        ActivityType.MEETING_BOOKED,
    }


def test_an_incremental_pull_reads_the_overlap_of_every_source(
    configured: Any, reference: Pulled
) -> None:
    cursor = reference.cursors["activities"]
    assert cursor is not None
    connector = _connector(configured)
    again = list(connector.pull_activities(cursor))
    records = [a for page in again for a in page.records]
    assert len(records) < len(reference.activities)
    start = cursor - timedelta(minutes=connector._config.overlap_minutes)
    # Attendance is read by when HubSpot recorded it (below), every other source by time.
    on_time = [a for a in records if a.type is not ActivityType.WEBINAR_ATTENDED]
    assert records and all(a.occurred_at >= start for a in on_time)
    assert again[-1].cursor is not None and again[-1].cursor >= cursor


def test_attendance_recorded_after_the_webinar_is_read_when_it_arrives(
    configured: Any, reference: Pulled
) -> None:
    """A webinar tool reports attendance after the event: a pull whose window starts after
    the webinar but before the report still reads it (by the participation's createdAt)."""
    attended = [a for a in reference.activities if a.type is ActivityType.WEBINAR_ATTENDED]
    assert attended, "no attendance in the sandbox: the test proves nothing"
    late = max(attended, key=lambda a: a.occurred_at)
    # After the webinar (and the overlap), before the attendance reached HubSpot.
    since = late.occurred_at + timedelta(hours=12)
    pulled = [a for page in _connector(configured).pull_activities(since) for a in page.records]
    assert late.crm_id in {a.crm_id for a in pulled}
    assert next(a for a in pulled if a.crm_id == late.crm_id).occurred_at == late.occurred_at


def test_below_enterprise_page_views_arrive_as_rollups_a_fit_rule_can_score(
    starter: Any, enterprise: Any
) -> None:
    """A Starter portal serves no page-view events, but every contact carries HubSpot's
    rollups: the page-view count equals the page views an Enterprise portal's Events API
    lists for that contact, and a fit rule over it scores (scoring/models/default.yaml
    shows the rule)."""
    from scoring.engine import compile_model
    from scoring.model import parse_model

    contacts = [c for page in _connector(starter).pull_contacts(None) for c in page.records]
    assert contacts and all("page_views" in c.properties for c in contacts)
    events = _activities(enterprise, activity_lookback_days=None).activities
    viewed = Counter(a.contact_id for a in events if a.type is ActivityType.PAGE_VIEW)
    assert viewed, "no page views on the Enterprise portal: the comparison proves nothing"
    by_id = {c.crm_id: c for c in contacts}
    live = {cid: n for cid, n in viewed.items() if cid in by_id}  # archived ones aside
    assert len(live) > len(viewed) / 2
    for contact_id, n in live.items():
        assert float(by_id[contact_id].properties["page_views"]) == n, contact_id
    assert all(float(c.properties["page_views"]) == 0 for c in contacts if c.crm_id not in live)

    model = parse_model(
        "name: rollups\nversion: 1\nfit:\n  rules:\n"
        "    - {id: many-page-views, field: page_views, gte: 10, points: 5}\n"
        "  grades: {A: 40, B: 25, C: 10}\n"
        "engagement:\n  rules:\n    - {id: demo, activity: demo_request, points: 30}\n"
        "qualify: {threshold: 60}\n",
        "rollups.yaml",
    )
    now = datetime.now(UTC)
    scored = {c.crm_id: compile_model(model).score(c, [], now).fit for c in contacts}
    heavy = {cid for cid, n in live.items() if n >= 10}
    assert heavy, "no contact with 10 page views: the rule is not exercised"
    assert {cid for cid, fit in scored.items() if fit == 5} == heavy
