"""Everything one running sandbox holds, built from a population spec."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.auth import Credentials
from sandbox.faults import Faults
from sandbox.hubspot_access import PROFILES, portal_id_for
from sandbox.hubspot_properties import apply_profile
from sandbox.hubspot_store import HubSpotPortal
from sandbox.latency import Latency
from sandbox.limits import Limiter, Limits
from sandbox.population import Population, PopulationSpec, generate
from sandbox.salesforce_schema import OrgOptions
from sandbox.salesforce_store import Org

_NUMERIC = re.compile(r"^\d+$")
_SF_ID = re.compile(r"^[0-9a-zA-Z]{3}5g[0-9a-zA-Z]{10}(?:[A-Z0-5]{3})?$")
_LOCATOR = re.compile(r"^01g[0-9a-zA-Z]+-\d+$")


def endpoint_label(method: str, path: str) -> str:
    """`METHOD /path` with ids replaced by placeholders, the key of the request counts."""
    parts = []
    for seg in path.rstrip("/").split("/"):
        if _LOCATOR.match(seg):
            parts.append("{locator}")
        elif _NUMERIC.match(seg) or _SF_ID.match(seg):
            parts.append("{id}")
        else:
            parts.append(seg)
    return f"{method} {'/'.join(parts) or '/'}"


@dataclass
class Stats:
    """Request counts by endpoint, and which were throttled or faulted."""

    requests: Counter[str] = field(default_factory=Counter)
    # Time spent serving, by endpoint: the sandbox's own cost, for benchmarks.
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    # Time spent in the latency profile's waits, by endpoint (none while it is off).
    waited: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    throttled: Counter[str] = field(default_factory=Counter)
    policies: Counter[str] = field(default_factory=Counter)
    faulted: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def reset(self) -> None:
        self.requests.clear()
        self.seconds.clear()
        self.waited.clear()
        self.throttled.clear()
        self.policies.clear()
        self.faulted.clear()

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "server_seconds": {k: round(v, 6) for k, v in self.seconds.items()},
            "latency_seconds": {k: round(v, 6) for k, v in self.waited.items()},
            "throttled": dict(self.throttled),
            "throttled_by_policy": dict(self.policies),
            "faulted": {k: dict(v) for k, v in self.faulted.items()},
            "totals": {
                "requests": sum(self.requests.values()),
                "throttled": sum(self.throttled.values()),
                "faulted": sum(sum(v.values()) for v in self.faulted.values()),
            },
        }


@dataclass
class Sandbox:
    """The population, both CRMs' state, and the machinery around them."""

    spec: PopulationSpec
    population: Population
    portal: HubSpotPortal
    org: Org
    credentials: Credentials
    limiter: Limiter
    faults: Faults
    stats: Stats
    build_seconds: float
    base_url: str = ""
    ca_file: str = ""
    # The private key that signs Salesforce JWT bearer assertions (written by the server).
    jwt_key_file: str = ""
    # Test facility, not CRM behaviour: called as on_request(method, path, n, phase) for
    # the n-th CRM request (n counts every CRM request since start), phase "before" right
    # after it is counted and "after" once it has been served (not for one that was
    # throttled or faulted). Runs on the server's event loop: keep it short.
    on_request: Callable[[str, str, int, str], None] | None = None
    crm_requests: int = 0
    # Test facility: a list here makes sandbox.recorder append every HubSpot exchange.
    exchanges: list[Any] | None = None
    # "configured": the product's development portal and org (its properties and fields
    # exist, every API is served on every tier); "stock": a HubSpot portal and a Salesforce
    # org as they come (see hubspot_access, salesforce_schema.org_fields).
    profile: str = "configured"
    portal_id: int = 0
    # Realistic answer times (sandbox.latency); off unless asked for.
    latency: Latency = field(default_factory=Latency)


def build_sandbox(
    spec: PopulationSpec,
    limits: Limits | None = None,
    faults: Faults | None = None,
    credentials: Credentials | None = None,
    profile: str = "configured",
    scopes: Iterable[str] | None = None,
    salesforce_can_customize: bool = True,
    salesforce_hidden_fields: Iterable[str] | None = None,
    salesforce_converted_share: float = 1.0,
    salesforce_all_day_share: float = 0.2,
    latency: Latency | None = None,
) -> Sandbox:
    """Generate the population and render the HubSpot portal and the Salesforce org.

    `profile` is "configured" or "stock" (both CRMs); `scopes`, if given, are all the
    HubSpot token is granted (default: every scope the product needs). The Salesforce
    options: `salesforce_can_customize=False` takes "Customize Application" from the
    integration user (Tooling API creates are refused); `salesforce_hidden_fields` are
    "Object.Field" names field-level security hides from them; the shares are of the live
    leads whose person became SQL before as_of that were converted, and of events that
    are all-day, picked by seed. `latency` is the answer-time profile (default: off).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}")
    options = OrgOptions(
        profile=profile,
        can_customize=salesforce_can_customize,
        hidden_fields=frozenset(salesforce_hidden_fields or ()),
        converted_share=salesforce_converted_share,
        all_day_share=salesforce_all_day_share,
    )
    started = time.perf_counter()
    population = generate(spec)
    portal = HubSpotPortal(population)
    apply_profile(portal, profile)
    org = Org(population, options)
    credentials = credentials or Credentials()
    if scopes is not None:
        credentials.set_hubspot_scopes(scopes)
    return Sandbox(
        spec,
        population,
        portal,
        org,
        credentials,
        Limiter(limits or Limits()),
        faults or Faults(),
        Stats(),
        time.perf_counter() - started,
        profile=profile,
        portal_id=portal_id_for(spec.seed),
        latency=latency if latency is not None else Latency(seed=spec.seed),
    )
