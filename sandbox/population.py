"""The synthetic population: people, their companies and owners, activity journeys and
a hidden outcome for each person.

Each person has a latent intent and a fit drawn from their persona, company and country.
A journey is one process, the same before `as_of` as after it, so that a model learned
from the past is judged on a present that looks like it:

- a quiet background of mostly cold activity (page views, email opens) over the whole
  life, a little more of it with more intent;
- buying episodes: outside one, a person begins one at a rate that rises a little with
  intent; it lasts two to six weeks of hot activity (demo requests, downloads, pricing
  views), as hard as the episode's heat (drawn for each) makes it, and ends in SQL with
  a chance that rises with the person's fit and the episode's heat. After SQL no new
  episode begins.

The CRMs show the past of that process. Who became SQL before `as_of` is at SQL (or,
for `CUSTOMER_SHARE` of them, customer), dated as the CRMs date it: SQL at the end of the
episode that converted, MQL 1 to 21 days before it, customer between SQL and `as_of`. The
others are subscribers, leads or MQLs. The hidden propensity is the chance to become SQL
within 90 days after `as_of` given the state at `as_of` (an episode under way and its
heat, or none), and the hidden outcome is drawn from it: the admin API shows both, so
that scoring can be judged against them. The past's dates come from a stream of their
own.

Storage is compact because 100,000 people and 2,000,000 activities must fit one process:
people are `__slots__` objects whose repeated strings are shared, and activities are
four parallel `array`s per CRM (contact, kind, time, detail), sorted by time.
"""

from __future__ import annotations

import itertools
import math
import random
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from statistics import NormalDist

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
# Before as_of, the stage of those who did not become SQL: subscriber, lead, MQL (the old
# fixed weights 30/60/5 among them).
_OPEN_STAGE_CUTS = (30 / 95, 90 / 95)
# Buying episodes: outside one, a person begins one at this rate per day on average
# (log-normal in their intent, spread `RATE_SPREAD`); it lasts a whole number of days in
# this range, uniform.
EPISODE_RATE = 0.0035
RATE_SPREAD = 0.2
EPISODE_DAYS = range(14, 43)
# The log-odds that an episode ends in SQL: this, plus 0.9 times fit, plus `HEAT_ODDS`
# times the episode's heat (a standard normal).
CONVERSION_BIAS = -1.0
HEAT_ODDS = 1.2
# The window the hidden outcome looks at, after as_of.
HORIZON_DAYS = 90
# Activities per day at the default 20 per person: the quiet background over the whole
# life (log-normal in intent, spread `BACKGROUND_SPREAD`), and the burst through each
# episode (log-normal in intent and, spread `HEAT_SPREAD`, in the episode's heat).
BACKGROUND_PER_DAY = 0.035
BACKGROUND_SPREAD = 0.5
EPISODE_PER_DAY = 1.2
HEAT_SPREAD = 0.8
# Heat's standard normal at 16 equal-mass points, to average an episode's chance over it.
_HEAT_NODES = tuple(NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16))
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


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method; a normal approximation for large means)."""
    if lam <= 0.0:
        return 0
    if lam > 50.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _episodes(
    rng: random.Random, created_ms: int, as_of_ms: int, rate: float, fit_odds: float
) -> tuple[list[tuple[int, int, float]], int | None, tuple[int, float] | None]:
    """A person's buying episodes before as_of: (start, end, heat) of each, the SQL time
    if one of them converted, and the end and conversion chance of the one still open.

    Outside an episode, one begins at `rate` per day; it lasts `EPISODE_DAYS` and ends in
    SQL with a chance that rises with the person's fit and the episode's heat (how hard
    they engage in it). After SQL no new episode begins."""
    episodes: list[tuple[int, int, float]] = []
    t = created_ms
    while True:
        t += int(rng.expovariate(rate) * DAY_MS)
        if t >= as_of_ms:
            return episodes, None, None
        end = t + rng.randrange(EPISODE_DAYS[0] * DAY_MS, (EPISODE_DAYS[-1] + 1) * DAY_MS)
        heat = rng.gauss(0.0, 1.0)
        episodes.append((t, end, heat))
        chance = _sigmoid(fit_odds + HEAT_ODDS * heat)
        if end >= as_of_ms:
            return episodes, None, (end, chance)
        if rng.random() < chance:
            return episodes, end, None
        t = end


def _mean_chance(fit_odds: float) -> float:
    """An episode's conversion chance averaged over its heat (a standard normal)."""
    return sum(_sigmoid(fit_odds + HEAT_ODDS * z) for z in _HEAT_NODES) / len(_HEAT_NODES)


def _next_episode_chance(rate: float, days: float) -> float:
    """The chance that an episode begins and ends within `days` (durations uniform over
    `EPISODE_DAYS`, starts at `rate` per day)."""
    return sum(1.0 - math.exp(-rate * (days - d)) for d in EPISODE_DAYS if d < days) / len(
        EPISODE_DAYS
    )


def _future_chance(
    fit_odds: float, rate: float, open_episode: tuple[int, float] | None, as_of_ms: int
) -> float:
    """The chance of SQL within `HORIZON_DAYS` after as_of, given the state at as_of: the
    open episode converting at its end, else (or after it failed) the next one in time."""
    later = _mean_chance(fit_odds)
    if open_episode is None:
        return later * _next_episode_chance(rate, HORIZON_DAYS)
    end_ms, chance = open_episode
    left = HORIZON_DAYS - (end_ms - as_of_ms) / DAY_MS
    return chance + (1.0 - chance) * later * _next_episode_chance(rate, left)


def _date_the_past(p: Person, sql_ms: int, as_of_ms: int, rng: random.Random) -> None:
    """Dates for a person already at SQL or customer: SQL at the end of the episode that
    converted, MQL 1 to 21 days before it (never before creation), customer between SQL
    and as_of."""
    p.sql_at_ms = sql_ms
    p.mql_at_ms = sql_ms - rng.randrange(DAY_MS, min(21 * DAY_MS, sql_ms - p.created_ms) + 1)
    if p.stage == "customer":
        p.customer_at_ms = rng.randrange(sql_ms + 1, as_of_ms)


def _emit(
    log: ActivityLog,
    person: int,
    rng: random.Random,
    cum: list[float],
    pricing: float,
    span: tuple[int, int],
    n: int,
    until: int = 2**62,
) -> int:
    """Append `n` activities of `person`, kinds by `cum`, times uniform over `span` (those
    at or after `until` are dropped: an episode under way at as_of); the latest time
    appended (or the span's start)."""
    lo, hi = span
    last = lo
    rand = rng.random
    for k in rng.choices(range(len(KINDS)), cum_weights=cum, k=n):
        ts = lo + int((hi - lo) * rand())
        if ts >= until:
            continue
        if k == 0:
            d = 0 if rand() < pricing else 1 + int(rand() * (DETAIL_COUNT[0] - 1))
        else:
            d = int(rand() * DETAIL_COUNT[k])
        log.person.append(person)
        log.kind.append(k)
        log.ts.append(ts)
        log.detail.append(d)
        last = max(last, ts)
    return last


def generate(spec: PopulationSpec) -> Population:
    """Generate the population `spec` describes (deterministic in `spec`)."""
    rng = random.Random(spec.seed)
    # Dates of the past from a stream of their own.
    past = random.Random(f"past-sql:{spec.seed}")
    companies = _make_companies(rng, max(1, spec.contacts // 4))
    owners = _make_owners(min(50, 3 + spec.contacts // 5000))
    personas = catalog.PERSONAS
    persona_weights = [p.weight for p in personas]
    hubspot_count = round(spec.contacts * spec.hubspot_share)
    logs = (ActivityLog(), ActivityLog())
    span_max = spec.months * 30 * DAY_MS
    people: list[Person] = []
    cold, hot = list(itertools.accumulate(_COLD)), list(itertools.accumulate(_HOT))
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
        created = spec.as_of_ms - rng.randrange(30 * DAY_MS, span_max)
        p.created_ms = created
        fit_odds = CONVERSION_BIAS + 0.9 * fit
        rate = EPISODE_RATE * math.exp(RATE_SPREAD * intent - RATE_SPREAD**2 / 2)
        episodes, sql_ms, open_episode = _episodes(rng, created, spec.as_of_ms, rate, fit_odds)
        p.propensity = _future_chance(fit_odds, rate, open_episode, spec.as_of_ms)
        u = rng.random()
        if sql_ms is not None:
            stage = "customer" if u < CUSTOMER_SHARE else "salesqualifiedlead"
        else:
            stage = HUBSPOT_STAGES[sum(u >= cut for cut in _OPEN_STAGE_CUTS)]
        p.stage = stage
        p.lead_status = rng.choices(LEAD_STATUSES, weights=_STATUS_WEIGHTS)[0]
        if sql_ms is not None:
            p.became_sql = True  # already happened before as_of, visible in the CRM
            _date_the_past(p, sql_ms, spec.as_of_ms, past)
        else:
            p.became_sql = rng.random() < p.propensity
            if p.became_sql:
                # The open episode's own end when that is what converts, else a later one.
                if open_episode is not None and rng.random() * p.propensity < open_episode[1]:
                    p.sql_at_ms = open_episode[0]
                else:
                    p.sql_at_ms = spec.as_of_ms + rng.randrange(
                        EPISODE_DAYS[0] * DAY_MS, HORIZON_DAYS * DAY_MS
                    )
        p.deleted = rng.random() < spec.deleted_share

        # The journey: a quiet background over the whole life, cold in mix, and a burst of
        # hot activity through each episode.
        log = logs[0] if i < hubspot_count else logs[1]
        scale = spec.activities_per_contact / 20.0
        quiet = (
            BACKGROUND_PER_DAY
            * scale
            * math.exp(BACKGROUND_SPREAD * intent - BACKGROUND_SPREAD**2 / 2)
        )
        life = (created, spec.as_of_ms)
        n = poisson(rng, quiet * (spec.as_of_ms - created) / DAY_MS)
        last_ts = _emit(log, i, rng, cold, 0.1, life, n)
        burst = EPISODE_PER_DAY * scale * math.exp(0.3 * intent - 0.045)
        for start, end, heat in episodes:
            intensity = burst * math.exp(HEAT_SPREAD * heat - HEAT_SPREAD**2 / 2)
            n = poisson(rng, intensity * (end - start) / DAY_MS)
            last_ts = max(last_ts, _emit(log, i, rng, hot, 0.4, (start, end), n, spec.as_of_ms))
        # The CRM record was last touched at or after its latest activity, within a day and
        # never after as_of. Scaled rather than clamped: clamping put ~8% of records on the
        # one millisecond of as_of, a pile-up no real CRM shows.
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
