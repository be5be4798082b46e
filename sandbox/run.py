"""The sandbox's public entry point: start one and reach it.

The demo, the benchmarks and `python -m sandbox` start a sandbox and talk to it through
this module alone; `serve` is what `python -m sandbox` and `mqlsync sandbox serve` run.
(`sandbox.testing` re-exports it for the tests.)

with running_sandbox(contacts=500, seed=7, hubspot_search_per_s=1000) as sb:  # in-process
    hs = sb.hubspot_client()            # hubspot-api-client, pointed at the sandbox
    sf = sb.salesforce_client()         # simple-salesforce, trusting the sandbox CA
    sb.admin.set_faults([{"kind": "500", "count": 1}])
    sb.admin.stats()["requests"]

with running_sandbox(latency=0.5) as sb:  # real CRMs' answer times, every median halved
    sb.admin.latency_waits()            # the delays the sandbox chose, and when

with sandbox_process(contacts=20000, seed=1) as sb:  # a `python -m sandbox` subprocess
    ...

serve(port, contacts, seed, ...)  # build one and serve it in the foreground
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import requests

from sandbox.auth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_HUBSPOT_CLIENT_ID,
    DEFAULT_HUBSPOT_CLIENT_SECRET,
    DEFAULT_HUBSPOT_REFRESH_TOKEN,
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_SALESFORCE_SESSION,
    DEFAULT_SALESFORCE_USERNAME,
)
from sandbox.faults import FaultRule, Faults, parse_spec
from sandbox.latency import Latency, latency_from
from sandbox.limits import Limits
from sandbox.population import PopulationSpec
from sandbox.salesforce_schema import API_VERSION
from sandbox.server import SandboxServer, serve
from sandbox.state import Sandbox, build_sandbox

__all__ = [
    "AdminClient",
    "SandboxHandle",
    "running_sandbox",
    "sandbox_process",
    "serve",
    "trusting_session",
]


def trusting_session(ca_file: str) -> requests.Session:
    """A requests session that trusts the sandbox CA.

    `trust_env = False` matters: with REQUESTS_CA_BUNDLE set in the environment, requests
    would otherwise let it override `verify`.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    return session


class AdminClient:
    """The `/_sandbox/` admin API (plain JSON over HTTPS)."""

    def __init__(self, base_url: str, ca_file: str) -> None:
        self.base = base_url + "/_sandbox"
        self.http = trusting_session(ca_file)

    def _get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(self.base + path, params=params or None, timeout=60)
        resp.raise_for_status()
        return resp.json()

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, self.base + path, json=body, timeout=60)
        resp.raise_for_status()
        return resp.json()

    def info(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self._get("/info"))

    def stats(self) -> dict[str, Any]:
        """{"requests": {"POST /crm/v3/objects/contacts/search": n, ...}, "throttled": {...},
        "throttled_by_policy": {...}, "faulted": {endpoint: {kind: n}}, "totals": {...}}"""
        return cast("dict[str, Any]", self._get("/stats"))

    def reset(self) -> None:
        """Zero the request counters and the rate-limit windows."""
        self._send("POST", "/reset")

    def set_faults(self, rules: list[dict[str, Any] | FaultRule], seed: int | None = None) -> Any:
        """Replace the fault rules (dicts with FaultRule's fields, or FaultRules)."""
        items = [r if isinstance(r, dict) else r.__dict__ for r in rules]
        return self._send("PUT", "/faults", {"rules": items, "seed": seed})

    def clear_faults(self) -> None:
        self._send("DELETE", "/faults")

    def set_hubspot_scopes(self, scopes: list[str]) -> Any:
        """Grant the HubSpot tokens exactly these scopes (a private app's scopes edited)."""
        return self._send("PUT", "/hubspot/scopes", {"scopes": scopes})

    def set_limits(self, **limits: Any) -> Any:
        """Change limit sizes at run time (Limits' fields); also resets the windows."""
        return self._send("PUT", "/limits", limits)

    def expire_sessions(self) -> None:
        """Expire every Salesforce session: the next call answers INVALID_SESSION_ID."""
        self._send("POST", "/sessions/expire")

    def latency(self) -> dict[str, Any]:
        """The latency profile: {"enabled", "scale", "sigma", "seed", "medians_ms",
        "effective_median_ms", "effective_p95_ms", "drawn", "waiting", "peak_waiting"}."""
        return cast("dict[str, Any]", self._get("/latency"))

    def set_latency(self, **settings: Any) -> dict[str, Any]:
        """Change the latency profile at run time: enabled, scale, sigma, seed (reseeds
        and forgets the record), medians_ms ({family: ms}, merged)."""
        return cast("dict[str, Any]", self._send("PUT", "/latency", settings))

    def latency_waits(self, family: str | None = None) -> list[dict[str, Any]]:
        """The recorded waits, oldest first: [{"number", "family", "endpoint",
        "delay_ms", "started", "ended"}], times on the server's monotonic clock."""
        answer = self._get("/latency/waits", **({"family": family} if family else {}))
        return cast("list[dict[str, Any]]", answer["waits"])

    def hubspot_contact(self, contact_id: str | int) -> dict[str, Any]:
        """{"id", "archived", "properties": {all stored values}, "tasks": [...]}."""
        return cast("dict[str, Any]", self._get(f"/hubspot/contacts/{contact_id}"))

    def hubspot_tasks(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._get("/hubspot/tasks"))

    def set_hubspot_owner_active(self, owner_id: str | int, active: bool) -> dict[str, Any]:
        """Deactivate (or reactivate) a HubSpot owner, as removing a user's seat does:
        an inactive owner is listed only with `archived=true` and cannot own records."""
        return cast(
            "dict[str, Any]",
            self._send("PUT", f"/hubspot/owners/{owner_id}", {"active": active}),
        )

    def salesforce_record(self, record_id: str) -> dict[str, Any]:
        """{"sobject", "fields": {all fields}, "tasks": [tasks created with this WhoId]}."""
        return cast("dict[str, Any]", self._get(f"/salesforce/records/{record_id}"))

    def salesforce_tasks(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._get("/salesforce/tasks"))

    def convert_lead(self, lead_id: str) -> str:
        """Convert a live lead as a user would; returns the id of its contact."""
        answer = self._send("POST", "/salesforce/convert", {"lead_id": lead_id})
        return str(answer["contact_id"])

    def expected(self, crm: str) -> dict[str, Any]:
        """Every id a complete read of `crm` ("hubspot" | "salesforce") should return."""
        return cast("dict[str, Any]", self._get(f"/expected/{crm}"))

    def outcomes(self, crm: str | None = None) -> list[dict[str, Any]]:
        """Hidden outcomes: [{"crm", "id", "persona", "became_sql", "sql_at", "mql_at",
        "propensity"}]; `sql_at` and `mql_at` in the CRM's datetime format, or None."""
        return cast("list[dict[str, Any]]", self._get("/outcomes", **({"crm": crm} if crm else {})))

    def advance(self, days: int) -> dict[str, Any]:
        """Move the data's clock `days` forward (1..365): sales works the open tasks, people
        reach SQL and keep engaging. {"as_of", "days", "tasks_worked", "accepted",
        "rejected", "accepted_without_task", "activities"}."""
        return cast("dict[str, Any]", self._send("POST", "/advance", {"days": days}))


@dataclass
class SandboxHandle:
    """Where a running sandbox listens and how to authenticate to it."""

    base_url: str
    ca_file: str
    hubspot_token: str
    salesforce_session_id: str
    salesforce_client_id: str
    salesforce_client_secret: str
    admin: AdminClient
    sandbox: Sandbox | None  # the in-process state (None when served by a subprocess)
    hubspot_client_id: str = DEFAULT_HUBSPOT_CLIENT_ID
    hubspot_client_secret: str = DEFAULT_HUBSPOT_CLIENT_SECRET
    hubspot_refresh_token: str = DEFAULT_HUBSPOT_REFRESH_TOKEN
    # JWT bearer flow: the private key that signs assertions (iss = salesforce_client_id,
    # sub = salesforce_username).
    salesforce_jwt_key_file: str = ""
    salesforce_username: str = DEFAULT_SALESFORCE_USERNAME

    @property
    def hubspot_base_url(self) -> str:
        return self.base_url

    @property
    def salesforce_instance_url(self) -> str:
        return self.base_url

    def hubspot_client(self, **kwargs: Any) -> Any:
        """A `hubspot.HubSpot` client for this sandbox (kwargs go to the client)."""
        from hubspot import HubSpot  # type: ignore[import-untyped]

        return HubSpot(
            access_token=self.hubspot_token, host=self.base_url, ssl_ca_cert=self.ca_file, **kwargs
        )

    def salesforce_session(self) -> requests.Session:
        return trusting_session(self.ca_file)

    def salesforce_client(self, session_id: str | None = None) -> Any:
        """A `simple_salesforce.Salesforce` client for this sandbox."""
        from simple_salesforce.api import Salesforce

        return Salesforce(
            instance_url=self.base_url,
            session_id=session_id or self.salesforce_session_id,
            version=API_VERSION,
            session=self.salesforce_session(),
        )

    def new_salesforce_session(self) -> str:
        """Mint a session with the client-credentials flow, as a connector would."""
        resp = self.salesforce_session().post(
            self.base_url + "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.salesforce_client_id,
                "client_secret": self.salesforce_client_secret,
            },
            timeout=30,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def new_salesforce_jwt_session(self, audience: str = "https://login.salesforce.com") -> str:
        """Mint a session with the JWT bearer flow, signed with the sandbox's key."""
        import jwt

        with open(self.salesforce_jwt_key_file, "rb") as key:
            assertion = jwt.encode(
                {
                    "iss": self.salesforce_client_id,
                    "sub": self.salesforce_username,
                    "aud": audience,
                    "exp": int(time.time()) + 170,
                },
                key.read(),
                algorithm="RS256",
            )
        resp = self.salesforce_session().post(
            self.base_url + "/services/oauth2/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
            timeout=30,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])


@contextmanager
def running_sandbox(
    contacts: int = 200,
    seed: int = 1,
    tier: str = "professional",
    faults: str | list[FaultRule] | None = None,
    activities_per_contact: float = 20.0,
    search_lag_s: float = 0.0,
    profile: str = "configured",
    scopes: Iterable[str] | None = None,
    salesforce_can_customize: bool = True,
    salesforce_hidden_fields: Iterable[str] | None = None,
    salesforce_converted_share: float = 1.0,
    salesforce_all_day_share: float = 0.2,
    latency: float | Latency | None = None,
    latency_seed: int | None = None,
    **limits: Any,
) -> Iterator[SandboxHandle]:
    """Start a sandbox in-process on a free port; stop it on exit.

    `faults` is a spec string (see sandbox.faults) or a list of FaultRule. `limits` are
    Limits' fields: hubspot_per_10s, hubspot_daily, hubspot_search_per_s,
    salesforce_daily, enabled. `search_lag_s` is how long HubSpot search takes to see a
    write (HubSpot: a few seconds; `Limits` and the server default to 3). It is 0 here
    unless asked for, so that a test searching right after a write sees it.
    `profile` is "configured" (the product's portal and org) or "stock" (both CRMs as
    they come); `scopes` are all the HubSpot token is granted (default: what the product
    needs). The `salesforce_*` options are build_sandbox's.
    `latency` switches realistic answer times on (see sandbox.latency): a scale for every
    median (1.0 as the real CRMs, 0.5 half as long) or a `Latency`; None or 0 is off.
    Its draws are seeded with `latency_seed`, by default the population's `seed`.
    """
    if isinstance(faults, str) or faults is None:
        rules, fault_seed = parse_spec(faults)
    else:
        rules, fault_seed = list(faults), 0
    spec = PopulationSpec(
        contacts=contacts, seed=seed, activities_per_contact=activities_per_contact
    )
    sandbox = build_sandbox(
        spec,
        Limits(hubspot_tier=tier, search_lag_s=search_lag_s, **limits),
        Faults(rules, fault_seed),
        profile=profile,
        scopes=scopes,
        salesforce_can_customize=salesforce_can_customize,
        salesforce_hidden_fields=salesforce_hidden_fields,
        salesforce_converted_share=salesforce_converted_share,
        salesforce_all_day_share=salesforce_all_day_share,
        latency=latency_from(latency, seed if latency_seed is None else latency_seed),
    )
    server = SandboxServer(sandbox)
    server.start()
    creds = sandbox.credentials
    try:
        yield SandboxHandle(
            base_url=server.base_url,
            ca_file=str(server.tls.ca_file),
            hubspot_token=creds.hubspot_token,
            salesforce_session_id=creds.salesforce_session_id,
            salesforce_client_id=creds.salesforce_client_id,
            salesforce_client_secret=creds.salesforce_client_secret,
            admin=AdminClient(server.base_url, str(server.tls.ca_file)),
            sandbox=sandbox,
            salesforce_jwt_key_file=str(server.tls.jwt_key_file),
            salesforce_username=creds.salesforce_username,
        )
    finally:
        server.stop()


@contextmanager
def sandbox_process(
    contacts: int = 200,
    seed: int = 1,
    tier: str = "professional",
    faults: str | None = None,
    startup_timeout: float = 120.0,
    profile: str = "configured",
    scopes: Iterable[str] | None = None,
    salesforce_can_customize: bool = True,
    salesforce_hidden_fields: Iterable[str] | None = None,
    salesforce_converted_share: float | None = None,
    salesforce_all_day_share: float | None = None,
    latency: float | None = None,
    latency_seed: int | None = None,
) -> Iterator[SandboxHandle]:
    """Serve a sandbox from a `python -m sandbox` subprocess on a free port.

    Keeps the sandbox's CPU off the caller's process (benchmarks), and exercises the
    command line the CLI wraps. The default credentials apply. The `salesforce_*`
    options become the command's flags (None: its default); `latency` and
    `latency_seed` become `--latency` and `--latency-seed` (as in running_sandbox).
    """
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        "0",
        "--contacts",
        str(contacts),
        "--seed",
        str(seed),
        "--tier",
        tier,
    ]
    if faults:
        cmd += ["--faults", faults]
    if profile != "configured":
        cmd += ["--profile", profile]
    if scopes is not None:
        cmd += ["--scopes", ",".join(scopes)]
    if latency:
        cmd += ["--latency", str(latency)]
    if latency_seed is not None:
        cmd += ["--latency-seed", str(latency_seed)]
    cmd += _salesforce_flags(
        salesforce_can_customize,
        salesforce_hidden_fields,
        salesforce_converted_share,
        salesforce_all_day_share,
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + startup_timeout
        assert proc.stdout is not None
        while not {"CA file", "HubSpot base URL", "JWT key file"} <= set(found):
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox process did not start (exit {proc.poll()})")
            label, sep, value = line.partition(":")
            if sep:
                found[label.strip()] = value.strip().split()[0]
        base, ca = found["HubSpot base URL"], found["CA file"]
        yield SandboxHandle(
            base_url=base,
            ca_file=ca,
            hubspot_token=DEFAULT_HUBSPOT_TOKEN,
            salesforce_session_id=DEFAULT_SALESFORCE_SESSION,
            salesforce_client_id=DEFAULT_CLIENT_ID,
            salesforce_client_secret=DEFAULT_CLIENT_SECRET,
            admin=AdminClient(base, ca),
            sandbox=None,
            salesforce_jwt_key_file=found["JWT key file"],
        )
    finally:
        proc.terminate()  # only the process started here
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _salesforce_flags(
    can_customize: bool,
    hidden_fields: Iterable[str] | None,
    converted_share: float | None,
    all_day_share: float | None,
) -> list[str]:
    """`python -m sandbox` flags for the Salesforce org's options."""
    flags = [] if can_customize else ["--salesforce-no-customize"]
    if hidden_fields:
        flags += ["--salesforce-hidden-fields", ",".join(hidden_fields)]
    if converted_share is not None:
        flags += ["--salesforce-converted-share", str(converted_share)]
    if all_day_share is not None:
        flags += ["--salesforce-all-day-share", str(all_day_share)]
    return flags
