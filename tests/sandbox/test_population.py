"""The synthetic population: deterministic, believable, split across both CRMs, and
with outcomes that only the admin API tells."""

from __future__ import annotations

from collections import Counter

from sandbox.population import KINDS, PopulationSpec, generate
from sandbox.testing import SandboxHandle


def _fingerprint(seed: int) -> tuple:
    pop = generate(PopulationSpec(contacts=300, seed=seed))
    people = tuple(
        (p.email, p.title, p.company.name, p.created_ms, p.became_sql) for p in pop.people
    )
    return people, tuple(pop.hubspot.ts), tuple(pop.salesforce.kind)


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert _fingerprint(4) == _fingerprint(4)
    assert _fingerprint(4) != _fingerprint(5)


def test_population_is_varied_and_journeys_span_months() -> None:
    pop = generate(PopulationSpec(contacts=3000, seed=2))
    assert len({p.persona for p in pop.people}) >= 10
    assert len({p.company.industry for p in pop.people}) >= 8
    assert len({p.company.country for p in pop.people}) >= 10
    sizes = sorted(p.company.size for p in pop.people)
    assert sizes[len(sizes) // 10] < 50 < 1000 < sizes[-len(sizes) // 50]  # heavy-tailed
    kinds = Counter(KINDS[k] for k in [*pop.hubspot.kind, *pop.salesforce.kind])
    assert set(kinds) == set(KINDS)
    mean = (len(pop.hubspot) + len(pop.salesforce)) / len(pop.people)
    assert 15 < mean < 25
    span_days = (max(pop.hubspot.ts) - min(pop.hubspot.ts)) / 86_400_000
    assert span_days > 150
    assert list(pop.hubspot.ts) == sorted(pop.hubspot.ts)


def test_outcomes_follow_propensity() -> None:
    pop = generate(PopulationSpec(contacts=4000, seed=3))
    rate = sum(p.became_sql for p in pop.people) / len(pop.people)
    assert 0.08 < rate < 0.25
    by_persona = {
        key: [p for p in pop.people if p.persona == key] for key in ("marketing_leader", "student")
    }
    leaders = sum(p.became_sql for p in by_persona["marketing_leader"]) / len(
        by_persona["marketing_leader"]
    )
    students = sum(p.became_sql for p in by_persona["student"]) / len(by_persona["student"])
    assert leaders > 3 * students
    # Outcomes lie after as_of, where no CRM data reaches.
    future = [p.sql_at_ms for p in pop.people if p.sql_at_ms is not None]
    assert future and min(future) > pop.spec.as_of_ms


def test_outcomes_through_the_admin_api_match_both_crms(sb: SandboxHandle) -> None:
    outcomes = sb.admin.outcomes()
    assert len(outcomes) == 1200
    hubspot = [o for o in outcomes if o["crm"] == "hubspot"]
    expected_hs = sb.admin.expected("hubspot")
    assert {o["id"] for o in hubspot} == set(expected_hs["contacts"]) | set(
        expected_hs["archived_contacts"]
    )
    salesforce = sb.admin.outcomes("salesforce")
    expected_sf = sb.admin.expected("salesforce")
    assert {o["id"] for o in salesforce} == set(
        expected_sf["leads"] + expected_sf["contacts"] + expected_sf["deleted"]
    )
    assert all(0 <= o["propensity"] < 1 for o in outcomes)


def test_crm_data_does_not_carry_the_outcome(sb: SandboxHandle) -> None:
    cid = sb.admin.expected("hubspot")["contacts"][0]
    stored = sb.admin.hubspot_contact(cid)["properties"]
    assert not any("sql" in name or "propensity" in name for name in stored)
    lead = sb.admin.expected("salesforce")["leads"][0]
    fields = sb.admin.salesforce_record(lead)["fields"]
    assert not any("propensity" in name.lower() for name in fields)
