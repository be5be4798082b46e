"""The synthetic population: people, their companies and owners, activity journeys and
a hidden outcome for each person.

Each person has a latent intent and a fit drawn from their persona, company and country.
Intent shapes the journey (how many activities, which kinds, how recent); fit and intent
together give a hidden propensity: the chance to become SQL within 90 days after `as_of`.

The past follows the same propensity, so that a backtest before `as_of` has something to
learn. Read as a constant hazard, the propensity gives the chance of having become SQL
during the time a person has existed before `as_of`, `1 - (1 - propensity) ** (k * span /
90 days)` with `PAST_SQL_HAZARD` = k; those who did are at SQL (or, for `CUSTOMER_SHARE`
of them, customer), with the dates the CRMs show: an MQL date 1 to 21 days before the SQL
date, the SQL date between a week after creation and the day before `as_of`, and a
customer date between the SQL date and `as_of`. The others are subscribers, leads or MQLs
and draw their outcome: did they become SQL in the 90 days after `as_of`, and when. The
CRMs only ever see the journey and the past; the future outcome is for the admin API, so
that scoring can be judged against it. The stage takes the one draw of the main seeded
stream the fixed stage weights took, and the outcome its draws where they took them, so
that journeys, deletions and the rest are the same for a seed as before; the dates of
the past come from a stream of their own.

Storage is compact because 100,000 people and 2,000,000 activities must fit one process:
people are `__slots__` objects whose repeated strings are shared, and activities are
four parallel `array`s per CRM (contact, kind, time, detail), sorted by time.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

from sandbox import catalog
from sandbox.clock import DAY_MS, DEFAULT_AS_OF_MS

# Activity kinds, by index into the arrays. Names are the canonical activity types.
KINDS: tuple[str, ...] = (
    "page_view",
    "form_submission",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "email_open",
    "email_click",
    "email_reply",
    "email_unsubscribe",
    "email_bounce",
    "demo_request",
    "trial_signup",
    "meeting_booked",
    "social_engagement",
    "support_complaint",
)
KIND = {name: i for i, name in enumerate(KINDS)}
# Relative frequency of each kind for a cold (no intent) and a hot (high intent) person.
_COLD = (30, 2, 3, 1, 0.5, 35, 8, 0.5, 2, 1, 0.2, 0.3, 0.2, 1, 0.5)
_HOT = (30, 4, 6, 4, 3, 20, 10, 2, 0.2, 0.2, 3, 2, 2, 2, 0.3)
# How many details each kind has (index into the catalog table that kind uses).
DETAIL_COUNT = (
    len(catalog.PAGES),
    len(catalog.FORMS),
    len(catalog.ASSETS),
    len(catalog.WEBINARS),
    len(catalog.WEBINARS),
    len(catalog.EMAILS),
    len(catalog.EMAILS),
    len(catalog.EMAILS),
    len(catalog.EMAILS),
    len(catalog.EMAILS),
    1,
    1,
    len(catalog.MEETING_TITLES),
    len(catalog.SOCIAL),
    len(catalog.COMPLAINTS),
)

HUBSPOT_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")
# Before as_of, the stage of those who did not become SQL: subscriber, lead, MQL.
_OPEN_STAGE_CUTS = (30 / 95, 90 / 95)
# The share of the stage draw the fixed weights (30/60/5/3/2) gave below SQL.
_OLD_OPEN_SHARE = 0.95
# The propensity is a 90-day chance; the past runs at this fraction of its hazard (k).
# At k = 1 the past converts at the rate the future does, so a model learned from the
# conversions before as_of is judged on the same process after it: 15% of people are at
# SQL or customer at as_of (measured on 20,000 people: 15.2% seed 7, 15.0% seed 42). The
# fixed stage weights this replaced (30/60/5/3/2) had 5%, which needs k = 0.27: the past
# would then convert at a quarter of the future's rate.
PAST_SQL_HAZARD = 1.0
# Of the people who became SQL before as_of, the share who are customers by then.
CUSTOMER_SHARE = 0.4
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
    "UNQUALIFIED",
    "OPEN_DEAL",
)
_STATUS_WEIGHTS = (40, 20, 10, 10, 8, 5, 5, 2)


@dataclass(frozen=True)
class PopulationSpec:
    """What to generate. The same spec always yields the same population."""

    contacts: int = 1000
    seed: int = 1
    activities_per_contact: float = 20.0
    hubspot_share: float = 0.5  # the first share of people live in HubSpot, the rest in SF
    lead_share: float = 0.7  # of Salesforce people: Leads; the rest are Contacts
    months: int = 9  # how far back journeys go
    as_of_ms: int = DEFAULT_AS_OF_MS
    deleted_share: float = 0.01  # archived in HubSpot / IsDeleted in Salesforce


class Company:
    __slots__ = ("country", "domain", "index", "industry", "name", "size")

    def __init__(
        self, index: int, name: str, domain: str, size: int, industry: str, country: str
    ) -> None:
        self.index, self.name, self.domain = index, name, domain
        self.size, self.industry, self.country = size, industry, country


class Person:
    """One synthetic person. `created_ms`/`modified_ms` are as the CRM first shows them."""

    __slots__ = (
        "became_sql",
        "business_license",
        "company",
        "created_ms",
        "customer_at_ms",
        "deleted",
        "email",
        "first",
        "index",
        "last",
        "lead_status",
        "modified_ms",
        "mql_at_ms",
        "owner",
        "persona",
        "propensity",
        "real_estate_license",
        "sql_at_ms",
        "stage",
        "title",
    )

    index: int
    persona: str
    title: str
    first: str
    last: str
    email: str
    company: Company
    owner: int
    stage: str  # HubSpot lifecycle value the journey model starts from
    lead_status: str  # HubSpot hs_lead_status value
    created_ms: int
    modified_ms: int
    deleted: bool
    propensity: float  # hidden
    became_sql: bool  # hidden outcome: SQL by as_of + 90 days (before as_of included)
    # When they became SQL: before as_of (CRM data: the stage's date) or after it (hidden);
    # None if they did not by as_of + 90 days.
    sql_at_ms: int | None
    mql_at_ms: int | None  # when they became MQL (before as_of), None if not by then
    customer_at_ms: int | None  # when they became a customer (before as_of)
    business_license: str | None
    real_estate_license: str | None

    def __init__(self) -> None:
        self.business_license = None
        self.real_estate_license = None
        self.sql_at_ms = None
        self.mql_at_ms = None
        self.customer_at_ms = None


@dataclass
class ActivityLog:
    """Activities of one CRM as parallel arrays, sorted by `ts` (epoch ms)."""

    person: array[int] = field(default_factory=lambda: array("i"))
    kind: array[int] = field(default_factory=lambda: array("b"))
    ts: array[int] = field(default_factory=lambda: array("q"))
    detail: array[int] = field(default_factory=lambda: array("b"))

    def __len__(self) -> int:
        return len(self.ts)

    def sort(self) -> None:
        """Reorder all arrays by time (stable, so generation order breaks ties)."""
        order = sorted(range(len(self.ts)), key=self.ts.__getitem__)
        for name in ("person", "kind", "ts", "detail"):
            old = getattr(self, name)
            setattr(self, name, array(old.typecode, [old[i] for i in order]))

    def since(self, ts_ms: int) -> int:
        """The first position whose time is ≥ ts_ms."""
        return bisect_left(self.ts, ts_ms)


@dataclass
class Owner:
    index: int
    first: str
    last: str
    email: str


@dataclass
class Population:
    spec: PopulationSpec
    people: list[Person]
    companies: list[Company]
    owners: list[Owner]
    hubspot_count: int  # people[:hubspot_count] are HubSpot contacts
    hubspot: ActivityLog
    salesforce: ActivityLog

    @property
    def salesforce_people(self) -> list[Person]:
        return self.people[self.hubspot_count :]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _make_companies(rng: random.Random, count: int) -> list[Company]:
    companies = []
    for i in range(count):
        stem = catalog.COMPANY_STEMS[i % len(catalog.COMPANY_STEMS)]
        suffix = rng.choice(catalog.COMPANY_SUFFIXES)
        name = f"{stem} {suffix}" + (f" {i // len(catalog.COMPANY_STEMS)}" if i >= 22 else "")
        domain = name.lower().replace(" ", "") + ".example"
        # Company sizes are heavy-tailed: many small firms, a few very large ones.
        size = max(1, int(math.exp(rng.gauss(4.0, 1.6))))
        industry = rng.choice(catalog.INDUSTRIES)
        country = rng.choices(catalog.COUNTRIES, weights=catalog.COUNTRY_WEIGHTS)[0]
        companies.append(Company(i, name, domain, size, industry, country))
    return companies


def _make_owners(count: int) -> list[Owner]:
    owners = []
    for i in range(count):
        first = catalog.FIRST_NAMES[(i * 7) % len(catalog.FIRST_NAMES)]
        last = catalog.LAST_NAMES[(i * 11) % len(catalog.LAST_NAMES)]
        owners.append(Owner(i, first, last, f"{first}.{last}.{i}@sales.example".lower()))
    return owners


def _past_sql_chance(propensity: float, span_ms: int) -> float:
    """The chance of having become SQL during `span_ms` before as_of, the 90-day
    propensity read as a constant hazard running at `PAST_SQL_HAZARD` of its rate."""
    return 1.0 - math.pow(1.0 - propensity, PAST_SQL_HAZARD * span_ms / (90 * DAY_MS))


def _date_the_past(p: Person, as_of_ms: int, rng: random.Random) -> None:
    """Dates for a person already at SQL or customer: MQL 1 to 21 days before SQL, SQL
    between a week after creation and the day before as_of, customer between SQL and
    as_of."""
    sql = rng.randrange(p.created_ms + 7 * DAY_MS, as_of_ms - DAY_MS)
    p.sql_at_ms = sql
    # Never before the record existed (SQL is at least a week after creation).
    p.mql_at_ms = sql - rng.randrange(DAY_MS, min(21 * DAY_MS, sql - p.created_ms) + 1)
    if p.stage == "customer":
        p.customer_at_ms = rng.randrange(sql + 1, as_of_ms)


def generate(spec: PopulationSpec) -> Population:
    """Generate the population `spec` describes (deterministic in `spec`)."""
    rng = random.Random(spec.seed)
    # Dates of the past from their own stream, so that the main one stays as it was.
    past = random.Random(f"past-sql:{spec.seed}")
    companies = _make_companies(rng, max(1, spec.contacts // 4))
    owners = _make_owners(min(50, 3 + spec.contacts // 5000))
    personas = catalog.PERSONAS
    persona_weights = [p.weight for p in personas]
    hubspot_count = round(spec.contacts * spec.hubspot_share)
    logs = (ActivityLog(), ActivityLog())
    span_max = spec.months * 30 * DAY_MS
    people: list[Person] = []
    kinds_range = range(len(KINDS))
    for i in range(spec.contacts):
        p = Person()
        p.index = i
        persona_i = rng.choices(range(len(personas)), weights=persona_weights)[0]
        persona = personas[persona_i]
        p.persona = persona.key
        p.title = rng.choice(persona.titles)
        p.first = rng.choice(catalog.FIRST_NAMES)
        p.last = rng.choice(catalog.LAST_NAMES)
        company = companies[rng.randrange(len(companies))]
        p.company = company
        p.email = f"{p.first}.{p.last}.{i}@{company.domain}".lower()
        p.owner = rng.randrange(len(owners))
        if persona.key == "buyer" and rng.random() < 0.4:
            p.business_license = f"BL-{rng.randrange(10**6):06d}"
        if persona.key == "agent" and rng.random() < 0.6:
            p.real_estate_license = f"RE-{rng.randrange(10**7):07d}"
        fit = (
            persona.fit
            + catalog.INDUSTRY_FIT.get(company.industry, 0.0)
            + catalog.COUNTRY_FIT.get(company.country, 0.0)
            + (0.4 if 50 <= company.size <= 5000 else -0.2)
        )
        intent = rng.gauss(0.0, 1.0)
        p.propensity = _sigmoid(-3.6 + 0.9 * fit + 1.3 * intent)
        created = spec.as_of_ms - rng.randrange(30 * DAY_MS, span_max)
        p.created_ms = created
        # One draw decides the stage, as the fixed weights before it did: below the
        # past-SQL chance the person is SQL or customer, above it the rest of the draw
        # picks among subscriber, lead and MQL.
        u = rng.random()
        p_past = _past_sql_chance(p.propensity, spec.as_of_ms - created)
        if u < p_past:
            stage = "customer" if u < CUSTOMER_SHARE * p_past else "salesqualifiedlead"
        else:
            v = (u - p_past) / (1.0 - p_past)
            stage = HUBSPOT_STAGES[sum(v >= cut for cut in _OPEN_STAGE_CUTS)]
        p.stage = stage
        p.lead_status = rng.choices(LEAD_STATUSES, weights=_STATUS_WEIGHTS)[0]
        # The fixed weights drew the outcome below SQL's share of the draw only; drawing it
        # from the main stream exactly then, and from the other stream otherwise, keeps
        # every later draw (deletion, journey) as it was.
        outcome = rng if u < _OLD_OPEN_SHARE else past
        will = outcome.random() < p.propensity
        future = outcome.randrange(DAY_MS, 90 * DAY_MS) if will else 0
        if stage in ("salesqualifiedlead", "customer"):
            p.became_sql = True  # already happened before as_of, visible in the CRM
            _date_the_past(p, spec.as_of_ms, past)
        else:
            p.became_sql = will
            if will:
                p.sql_at_ms = spec.as_of_ms + future
        p.deleted = rng.random() < spec.deleted_share

        # The journey: intent sets volume, mix and recency.
        heat = _sigmoid(1.5 * intent)
        volume = spec.activities_per_contact * math.exp(0.6 * intent - 0.18)
        n = int(volume * rng.uniform(0.5, 1.5) + rng.random())
        cum, total = [], 0.0
        for c, h in zip(_COLD, _HOT, strict=True):
            total += c + (h - c) * heat
            cum.append(total)
        span = spec.as_of_ms - created
        recency = 1.0 / (1.0 + 2.0 * heat)  # u**recency skews hot journeys to recent
        log = logs[0] if i < hubspot_count else logs[1]
        kinds = rng.choices(kinds_range, cum_weights=cum, k=n)
        rand = rng.random
        pricing = 0.1 + 0.4 * heat
        last_ts = created
        for k in kinds:
            ts = created + int(span * rand() ** recency)
            if k == 0:
                d = 0 if rand() < pricing else 1 + int(rand() * (DETAIL_COUNT[0] - 1))
            else:
                d = int(rand() * DETAIL_COUNT[k])
            log.person.append(i)
            log.kind.append(k)
            log.ts.append(ts)
            log.detail.append(d)
            last_ts = max(last_ts, ts)
        # The CRM record was last touched at or after its latest activity, within a day and
        # never after as_of. Scaled rather than clamped: clamping put ~8% of records on the
        # one millisecond of as_of, a pile-up no real CRM shows. One draw either way, so the
        # rest of the population is unchanged.
        touch = rng.randrange(0, DAY_MS)
        room = max(0, min(DAY_MS, spec.as_of_ms - last_ts))
        p.modified_ms = last_ts + touch * room // DAY_MS
        if stage == "marketingqualifiedlead":
            # Qualified by marketing after they were created, by their last change.
            p.mql_at_ms = past.randrange(created, p.modified_ms + 1)
        elif stage in ("salesqualifiedlead", "customer"):
            # Reaching a stage changed the record: it was modified then or later.
            reached = p.customer_at_ms if p.customer_at_ms is not None else p.sql_at_ms
            p.modified_ms = max(p.modified_ms, reached or 0)
        people.append(p)
    for log in logs:
        log.sort()
    return Population(spec, people, companies, owners, hubspot_count, logs[0], logs[1])
