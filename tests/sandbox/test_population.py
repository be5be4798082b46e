"""The synthetic population: deterministic, believable, split across both CRMs, and
with outcomes that only the admin API tells."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from statistics import mean

from sandbox.clock import DAY_MS
from sandbox.population import HORIZON_DAYS, KINDS, Person, PopulationSpec, generate
from sandbox.testing import SandboxHandle

PAST = ("salesqualifiedlead", "customer")


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
    open_at_as_of = [p for p in pop.people if p.stage not in PAST]
    rate = sum(p.became_sql for p in open_at_as_of) / len(open_at_as_of)
    assert 0.08 < rate < 0.18
    by_persona = {
        key: [p for p in pop.people if p.persona == key] for key in ("marketing_leader", "student")
    }
    leaders = sum(p.became_sql for p in by_persona["marketing_leader"]) / len(
        by_persona["marketing_leader"]
    )
    students = sum(p.became_sql for p in by_persona["student"]) / len(by_persona["student"])
    assert leaders > 3 * students
    # The outcomes of those not yet at SQL lie after as_of, where no CRM data reaches.
    future = [p.sql_at_ms for p in open_at_as_of if p.sql_at_ms is not None]
    assert future and min(future) > pop.spec.as_of_ms
    assert max(future) < pop.spec.as_of_ms + HORIZON_DAYS * DAY_MS


def test_the_past_converts_at_the_presents_rate() -> None:
    """Buying episodes put about 15% at SQL or later by as_of, and the 90 days before
    as_of convert the people open then at the rate the 90 days after it convert those
    open at as_of: a model learned from the past meets a present like it."""
    for seed in (7, 42):
        pop = generate(PopulationSpec(contacts=20_000, seed=seed, activities_per_contact=2))
        share = sum(p.stage in PAST for p in pop.people) / len(pop.people)
        assert 0.13 < share < 0.18, (seed, share)
        customers = sum(p.stage == "customer" for p in pop.people)
        assert 0.3 < customers / sum(p.stage in PAST for p in pop.people) < 0.5
        stages = Counter(p.stage for p in pop.people if p.stage not in PAST)
        # The others keep the old relative weights, subscriber 30, lead 60, MQL 5.
        total = sum(stages.values())
        assert abs(stages["subscriber"] / total - 30 / 95) < 0.02
        assert abs(stages["lead"] / total - 60 / 95) < 0.02
        assert abs(stages["marketingqualifiedlead"] / total - 5 / 95) < 0.01

        as_of = pop.spec.as_of_ms
        back = as_of - HORIZON_DAYS * DAY_MS
        then = [
            p
            for p in pop.people
            if p.created_ms <= back and (p.sql_at_ms is None or p.sql_at_ms >= back)
        ]
        past_rate = sum(p.sql_at_ms is not None and p.sql_at_ms < as_of for p in then) / len(then)
        now = [p for p in pop.people if p.stage not in PAST]
        future_rate = sum(p.became_sql for p in now) / len(now)
        assert abs(past_rate / future_rate - 1) < 0.15, (seed, past_rate, future_rate)


def test_who_reached_sql_before_as_of_follows_fit_and_time() -> None:
    pop = generate(PopulationSpec(contacts=20_000, seed=7, activities_per_contact=2))

    def past_share(people: list[Person]) -> float:
        return sum(p.stage in PAST for p in people) / len(people)

    leaders = [p for p in pop.people if p.persona == "marketing_leader"]
    students = [p for p in pop.people if p.persona == "student"]
    assert past_share(leaders) > 2.5 * past_share(students)
    # Those who existed longer had more time to get there.
    old = [p for p in pop.people if pop.spec.as_of_ms - p.created_ms > 180 * DAY_MS]
    new = [p for p in pop.people if pop.spec.as_of_ms - p.created_ms < 90 * DAY_MS]
    assert past_share(old) > past_share(new)
    assert all(p.became_sql for p in pop.people if p.stage in PAST)


def test_conversions_follow_bursts_of_engagement() -> None:
    """Before and after as_of alike, who becomes SQL does so at the end of a burst: the
    six weeks before a past SQL date, and the last two weeks before as_of of those who
    become SQL after it, hold several times the activity of the others."""
    pop = generate(PopulationSpec(contacts=6000, seed=3))
    as_of = pop.spec.as_of_ms
    people = pop.people
    before_sql: Counter[int] = Counter()
    lately: Counter[int] = Counter()
    life: Counter[int] = Counter()
    for log in (pop.hubspot, pop.salesforce):
        for index, ts in zip(log.person, log.ts, strict=True):
            sql = people[index].sql_at_ms
            life[index] += 1
            if sql is not None and sql < as_of and sql - 42 * DAY_MS <= ts < sql:
                before_sql[index] += 1
            if ts >= as_of - 14 * DAY_MS:
                lately[index] += 1
    past = [p for p in people if p.stage in PAST]
    never = [p for p in people if not p.became_sql]
    burst = sum(before_sql[p.index] for p in past) / (42 * len(past))
    quiet = sum(life[p.index] for p in never) / sum((as_of - p.created_ms) / DAY_MS for p in never)
    assert burst > 5 * quiet
    coming = [p for p in people if p.stage not in PAST and p.became_sql]
    staying = [p for p in people if p.stage not in PAST and not p.became_sql]
    assert mean(lately[p.index] for p in coming) > 3 * mean(lately[p.index] for p in staying)


def test_past_stages_are_dated_in_order() -> None:
    pop = generate(PopulationSpec(contacts=6000, seed=3, activities_per_contact=2))
    as_of = pop.spec.as_of_ms
    past = [p for p in pop.people if p.stage in PAST]
    assert any(p.stage == "customer" for p in past) and any(
        p.stage == "salesqualifiedlead" for p in past
    )
    for p in past:
        assert p.sql_at_ms is not None and p.mql_at_ms is not None
        # An episode of two weeks at the least ended before as_of.
        assert p.created_ms + 14 * DAY_MS <= p.sql_at_ms < as_of
        assert p.created_ms <= p.mql_at_ms < p.sql_at_ms <= p.mql_at_ms + 21 * DAY_MS
        if p.stage == "customer":
            assert p.customer_at_ms is not None and p.sql_at_ms < p.customer_at_ms < as_of
        else:
            assert p.customer_at_ms is None
        # Reaching the stage changed the record.
        assert (p.customer_at_ms or p.sql_at_ms) <= p.modified_ms <= as_of
    for p in pop.people:
        if p.stage == "marketingqualifiedlead":
            assert p.mql_at_ms is not None and p.created_ms <= p.mql_at_ms <= p.modified_ms
        elif p.stage not in PAST:
            assert p.mql_at_ms is None and p.customer_at_ms is None


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
    # Past SQL dates are there too, before as_of; MQL dates come before them.
    as_of = datetime.fromtimestamp(sb.sandbox.population.spec.as_of_ms / 1000, tz=UTC)
    dated = [o for o in outcomes if o["became_sql"]]
    assert all(o["sql_at"] for o in dated)
    past = [o for o in dated if datetime.fromisoformat(o["sql_at"]) < as_of]
    assert past and all(o["mql_at"] for o in past)
    assert all(
        datetime.fromisoformat(o["mql_at"]) < datetime.fromisoformat(o["sql_at"]) for o in past
    )
    assert {o["crm"] for o in past} == {"hubspot", "salesforce"}
    assert all(o["sql_at"].endswith("Z") for o in past if o["crm"] == "hubspot")
    assert all(o["sql_at"].endswith("+0000") for o in past if o["crm"] == "salesforce")


def test_crm_data_does_not_carry_the_outcome(sb: SandboxHandle) -> None:
    # The CRMs show the past (a stage reached before as_of, with its date), never the
    # propensity or a future SQL date.
    as_of = sb.sandbox.population.spec.as_of_ms
    # The last such HubSpot contact: other tests of this session's sandbox write to the
    # first contacts, and a stage they set is dated by the clock.
    future = [p for p in sb.sandbox.population.people[:600] if p.sql_at_ms and p.sql_at_ms > as_of][
        -1
    ]
    stored = sb.admin.hubspot_contact(str(100_001 + future.index))["properties"]
    assert not any("propensity" in name for name in stored)
    stages = {n: v for n, v in stored.items() if n.startswith("hs_lifecyclestage_")}
    assert stages["hs_lifecyclestage_salesqualifiedlead_date"] is None
    assert all(v is None or v < "2026-11-01" for v in stages.values())
    lead = sb.admin.expected("salesforce")["leads"][0]
    fields = sb.admin.salesforce_record(lead)["fields"]
    assert not any("propensity" in name.lower() for name in fields)
