"""Realistic answer times: seeded log-normal delays per endpoint family, off by default.

The checks read the delays the sandbox chose and when it waited (its own record, on its
monotonic clock), never the client's elapsed time, so a busy machine cannot break them.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import sandbox.__main__ as sandbox_main
from sandbox.latency import (
    DEFAULT_MEDIANS_MS,
    DEFAULT_SIGMA,
    HUBSPOT,
    HUBSPOT_BATCH_WRITE,
    HUBSPOT_SEARCH,
    SALESFORCE,
    SALESFORCE_COMPOSITE_WRITE,
    Latency,
    family_of,
)
from sandbox.testing import SandboxHandle, running_sandbox, sandbox_process

REST = "/services/data/v59.0"
SEARCH = "/crm/v3/objects/contacts/search"
# Small enough that hundreds of waits take a few seconds, large enough that the chosen
# delays are well above the event loop's timer resolution.
FAST_SCALE = 0.04
P95_OVER_MEDIAN = math.exp(1.645 * DEFAULT_SIGMA)


def _hubspot_session(sb: SandboxHandle) -> requests.Session:
    session = sb.salesforce_session()  # trusts the sandbox CA, ignores the environment
    session.headers["Authorization"] = f"Bearer {sb.hubspot_token}"
    return session


def _salesforce_session(sb: SandboxHandle) -> requests.Session:
    session = sb.salesforce_session()
    session.headers["Authorization"] = f"Bearer {sb.salesforce_session_id}"
    return session


def _get_contact(session: requests.Session, sb: SandboxHandle, contact_id: str) -> None:
    session.get(
        f"{sb.base_url}/crm/v3/objects/contacts/{contact_id}", timeout=60
    ).raise_for_status()


def _search(session: requests.Session, sb: SandboxHandle) -> None:
    body: dict[str, Any] = {"filterGroups": [], "limit": 1}
    session.post(sb.base_url + SEARCH, json=body, timeout=60).raise_for_status()


def _salesforce_limits(session: requests.Session, sb: SandboxHandle) -> None:
    session.get(f"{sb.base_url}{REST}/limits", timeout=60).raise_for_status()


def _delays_ms(sb: SandboxHandle, family: str) -> list[float]:
    return [w["delay_ms"] for w in sb.admin.latency_waits(family)]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _peak_overlap(waits: list[dict[str, Any]]) -> int:
    """The most waits in progress at one instant, from their recorded starts and ends."""
    edges = [(w["started"], 1) for w in waits] + [(w["ended"], -1) for w in waits]
    peak = current = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # ends before starts on ties
        current += step
        peak = max(peak, current)
    return peak


@pytest.fixture
def latency_restored(sb: SandboxHandle) -> Iterator[None]:
    """The session sandbox's latency profile back as it was (off), afterwards."""
    before = sb.admin.latency()
    yield
    sb.admin.set_latency(
        **{k: before[k] for k in ("enabled", "scale", "sigma", "medians_ms", "seed")}
    )


@pytest.fixture(scope="module")
def fast_latency_sb() -> Iterator[SandboxHandle]:
    # Switched on by the start-up keyword, with every median scaled down.
    with running_sandbox(
        contacts=40,
        seed=5,
        latency=FAST_SCALE,
        hubspot_per_10s=100_000,
        hubspot_search_per_s=100_000,
    ) as h:
        yield h


def test_off_by_default(sb: SandboxHandle) -> None:
    sb.admin.reset()
    profile = sb.admin.latency()
    assert profile["enabled"] is False
    _get_contact(_hubspot_session(sb), sb, sb.admin.expected("hubspot")["contacts"][0])
    assert sb.admin.latency_waits() == []
    assert sb.admin.latency()["drawn"] == 0
    assert sb.admin.stats()["latency_seconds"] == {}


def test_each_endpoint_family_has_its_median() -> None:
    assert family_of("hubspot", "GET", "/crm/v3/objects/contacts/51") == HUBSPOT
    assert family_of("hubspot", "POST", "/crm/v3/objects/contacts/batch/read") == HUBSPOT
    assert family_of("hubspot", "POST", SEARCH) == HUBSPOT_SEARCH
    assert family_of("hubspot", "POST", "/crm/v3/objects/tasks/batch/create") == (
        HUBSPOT_BATCH_WRITE
    )
    assert family_of("salesforce", "GET", REST + "/query") == SALESFORCE
    assert family_of("salesforce", "PATCH", REST + "/composite/sobjects") == (
        SALESFORCE_COMPOSITE_WRITE
    )
    assert family_of("salesforce", "GET", REST + "/composite/sobjects/Lead") == SALESFORCE
    # The slower families are slower than their CRM's default.
    medians = DEFAULT_MEDIANS_MS
    assert medians[HUBSPOT] == 250 and medians[SALESFORCE] == 400
    assert medians[HUBSPOT_SEARCH] > medians[HUBSPOT]
    assert medians[HUBSPOT_BATCH_WRITE] > medians[HUBSPOT]
    assert medians[SALESFORCE_COMPOSITE_WRITE] > medians[SALESFORCE]


def test_draws_follow_each_family_median_and_tail() -> None:
    # The generator alone, many draws: the distribution the requests are served with.
    profile = Latency(enabled=True, seed=1)
    for family, median_ms in DEFAULT_MEDIANS_MS.items():
        draws = [profile.draw(family, "-").delay_s * 1000 for _ in range(4000)]
        assert statistics.median(draws) == pytest.approx(median_ms, rel=0.05)
        p95 = _percentile(draws, 0.95)
        assert p95 / statistics.median(draws) == pytest.approx(P95_OVER_MEDIAN, rel=0.1)
        assert max(draws) <= median_ms * math.exp(4 * DEFAULT_SIGMA) + 1e-9


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_answer_times_have_the_configured_median(fast_latency_sb: SandboxHandle, crm: str) -> None:
    sb = fast_latency_sb
    profile = sb.admin.latency()
    assert profile["enabled"] is True and profile["scale"] == FAST_SCALE
    family = HUBSPOT if crm == "hubspot" else SALESFORCE
    expected_ms = DEFAULT_MEDIANS_MS[family] * FAST_SCALE
    assert profile["effective_median_ms"][family] == pytest.approx(expected_ms)
    sb.admin.reset()  # forgets earlier waits
    if crm == "hubspot":
        session, contact = _hubspot_session(sb), sb.admin.expected("hubspot")["contacts"][0]
        for _ in range(200):
            _get_contact(session, sb, contact)
    else:
        session = _salesforce_session(sb)
        for _ in range(200):
            _salesforce_limits(session, sb)
    waits = sb.admin.latency_waits(family)
    assert len(waits) == 200
    delays = [w["delay_ms"] for w in waits]
    # Log-normal, sigma 0.5, 200 draws: the sample median is within ~9% two times in
    # three standard errors; 15% leaves room without hiding a wrong median.
    assert statistics.median(delays) == pytest.approx(expected_ms, rel=0.15)
    assert _percentile(delays, 0.95) / statistics.median(delays) == pytest.approx(
        P95_OVER_MEDIAN, rel=0.3
    )
    # Each request really waited (at least) its chosen delay, on the server's clock.
    assert all(w["ended"] - w["started"] >= w["delay_ms"] / 1000 * 0.99 for w in waits)
    waited = sb.admin.stats()["latency_seconds"]
    assert sum(waited.values()) == pytest.approx(sum(delays) / 1000, rel=1e-3)


def test_slower_families_wait_longer_over_http(fast_latency_sb: SandboxHandle) -> None:
    sb = fast_latency_sb
    sb.admin.reset()
    session = _hubspot_session(sb)
    contact = sb.admin.expected("hubspot")["contacts"][0]
    for _ in range(60):
        _search(session, sb)
        _get_contact(session, sb, contact)
    searches, reads = _delays_ms(sb, HUBSPOT_SEARCH), _delays_ms(sb, HUBSPOT)
    assert len(searches) == len(reads) == 60
    assert statistics.median(searches) == pytest.approx(
        DEFAULT_MEDIANS_MS[HUBSPOT_SEARCH] * FAST_SCALE, rel=0.25
    )
    assert statistics.median(searches) > statistics.median(reads)


def _mixed_sequence(sb: SandboxHandle) -> list[tuple[str, float]]:
    hubspot, salesforce = _hubspot_session(sb), _salesforce_session(sb)
    contact = sb.admin.expected("hubspot")["contacts"][0]
    for _ in range(8):
        _get_contact(hubspot, sb, contact)
        _search(hubspot, sb)
        _salesforce_limits(salesforce, sb)
    return [(w["family"], w["delay_ms"]) for w in sb.admin.latency_waits()]


def test_the_same_seed_gives_the_same_delays(sb: SandboxHandle, latency_restored: None) -> None:
    sb.admin.set_latency(enabled=True, scale=0.02, seed=5)
    first = _mixed_sequence(sb)
    sb.admin.set_latency(seed=5)  # reseeds and forgets the record
    again = _mixed_sequence(sb)
    sb.admin.set_latency(seed=6)
    other = _mixed_sequence(sb)
    assert len(first) == 24
    assert again == first
    assert [f for f, _ in other] == [f for f, _ in first]
    assert [d for _, d in other] != [d for _, d in first]


def test_concurrent_requests_wait_at_once(sb: SandboxHandle, latency_restored: None) -> None:
    clients = 6
    contact = sb.admin.expected("hubspot")["contacts"][0]
    sessions = [_hubspot_session(sb) for _ in range(clients)]
    for session in sessions:  # connect and shake hands before the delays are on
        _get_contact(session, sb, contact)
    # A fixed, long delay (sigma 0): serialised waits could not overlap at all.
    sb.admin.set_latency(enabled=True, scale=1.0, sigma=0.0, medians_ms={HUBSPOT: 1500}, seed=1)
    start = threading.Barrier(clients)
    errors: list[BaseException] = []

    def one(session: requests.Session) -> None:
        try:
            start.wait(timeout=60)
            _get_contact(session, sb, contact)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    waits = sb.admin.latency_waits(HUBSPOT)
    assert len(waits) == clients
    assert all(w["delay_ms"] == 1500 for w in waits)
    assert _peak_overlap(waits) >= 2
    assert sb.admin.latency()["peak_waiting"] >= 2
    # Not serialised: the waits together cover less time than their sum.
    covered = max(w["ended"] for w in waits) - min(w["started"] for w in waits)
    assert covered < sum(w["delay_ms"] for w in waits) / 1000


def test_admin_switches_latency_on_and_off(sb: SandboxHandle, latency_restored: None) -> None:
    session = _hubspot_session(sb)
    contact = sb.admin.expected("hubspot")["contacts"][0]
    described = sb.admin.set_latency(enabled=True, scale=0.5, medians_ms={HUBSPOT: 40}, seed=2)
    assert described["effective_median_ms"][HUBSPOT] == 20
    assert described["effective_median_ms"][SALESFORCE] == 200  # the others keep theirs
    _get_contact(session, sb, contact)
    assert len(sb.admin.latency_waits()) == 1
    sb.admin.set_latency(enabled=False)
    _get_contact(session, sb, contact)
    assert len(sb.admin.latency_waits()) == 1
    for bad in (
        {"scale": 0},
        {"sigma": -1},
        {"medians_ms": {"teapot": 5}},
        {"medians_ms": [1]},
        {"enabled": "yes"},
    ):
        with pytest.raises(requests.HTTPError, match="400"):
            sb.admin.set_latency(**bad)
    assert sb.admin.latency()["enabled"] is False  # a refused change changed nothing


def test_latency_is_seeded_by_the_population_seed_unless_given() -> None:
    with running_sandbox(contacts=10, seed=13, latency=1.0) as handle:
        assert handle.admin.latency()["seed"] == 13
    with running_sandbox(contacts=10, seed=13, latency=0.5, latency_seed=4) as handle:
        profile = handle.admin.latency()
        assert (profile["seed"], profile["scale"]) == (4, 0.5)
        assert profile["effective_median_ms"][HUBSPOT] == 125


def test_command_line_option(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(sandbox_main, "serve", lambda *args, **kwargs: seen.append(kwargs))
    sandbox_main.main([])
    sandbox_main.main(["--latency"])
    sandbox_main.main(["--latency", "0.5", "--latency-seed", "3"])
    assert [(k["latency"], k["latency_seed"]) for k in seen] == [
        (None, None),
        (1.0, None),
        (0.5, 3),
    ]


def test_a_sandbox_process_serves_with_latency() -> None:
    with sandbox_process(contacts=10, seed=2, latency=0.5, latency_seed=8) as handle:
        profile = handle.admin.latency()
        assert profile["enabled"] is True
        assert (profile["scale"], profile["seed"]) == (0.5, 8)
        session = _hubspot_session(handle)
        _get_contact(session, handle, handle.admin.expected("hubspot")["contacts"][0])
        assert [w["family"] for w in handle.admin.latency_waits()] == [HUBSPOT]
