"""Acceptance: under each injected fault kind at a 10% rate, a pull and a write-back
leave exactly what a clean run leaves, on both CRMs; and no secret reaches a log line
or an exception."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from bench.workload import pull, write_back, written_state
from connectors.config import ThrottleSettings
from connectors.errors import ConnectorError
from scoring.records import Crm
from scoring.writes import OutcomeStatus, PropertyUpdate
from tests.connectors.conftest import make_connector

PEOPLE = 3_000
SEED = 5
KINDS = ["429", "500", "502", "503", "reset", "slow", "partial", "expired", "lost_write"]
FAST = ThrottleSettings(rate=10_000, burst=1_000)
# A client timeout below the sandbox's slow delay, and a settle time past it, so a slow
# create lands before the connector looks for it.
TIMEOUT_S = 0.5
SLOW_S = 1.0
LIMITS: dict[str, Any] = {"hubspot_search_per_s": 10_000, "hubspot_per_10s": 1_000_000}


def _run(handle: Any, crm: str) -> dict[str, Any]:
    connector = make_connector(
        crm,
        handle,
        throttle=FAST,
        search_throttle=FAST,
        timeout_s=TIMEOUT_S,
        settle_s=SLOW_S * 1.5,
    )
    pulled = pull(connector)
    writes = write_back(connector, pulled.contacts)
    handle.admin.clear_faults()
    return {
        "contacts": sorted((c.model_dump() for c in pulled.contacts), key=lambda c: c["crm_id"]),
        "activities": sorted(a.crm_id for a in pulled.activities),
        "deletions": sorted(d.crm_id for d in pulled.deletions),
        "issues": pulled.issues,
        "outcomes": [(o.target, o.status) for o in writes.outcomes],
        "written": written_state(handle, crm, [c.crm_id for c in pulled.contacts]),
    }


@pytest.fixture(scope="module")
def clean() -> dict[str, dict[str, Any]]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=PEOPLE, seed=SEED, **LIMITS) as handle:
        return {crm: _run(handle, crm) for crm in ("hubspot", "salesforce")}


# 429 is HubSpot's answer; Salesforce has no short-term limit (its daily one is a 403).
CASES = [(crm, kind) for crm in ("hubspot", "salesforce") for kind in KINDS]
CASES.remove(("salesforce", "429"))


@pytest.mark.slow
@pytest.mark.parametrize(("crm_name", "kind"), CASES)
def test_a_faulted_run_ends_as_a_clean_one(
    crm_name: str, kind: str, clean: dict[str, dict[str, Any]]
) -> None:
    crm = crm_name
    from sandbox.testing import running_sandbox

    rule = {"kind": kind, "rate": 0.1, "crm": crm, "seconds": SLOW_S}
    with running_sandbox(contacts=PEOPLE, seed=SEED, **LIMITS) as handle:
        handle.admin.set_faults([rule], seed=SEED)
        result = _run(handle, crm)
        faulted = handle.admin.stats()["faulted"]
    fired = sum(n for kinds in faulted.values() for n in kinds.values())
    print(f"\n{crm} {kind}: {fired} faults fired")
    assert fired, f"no {kind} fault fired"
    reference = clean[crm]
    assert result["issues"] == reference["issues"] == []
    for key in ("contacts", "activities", "deletions", "outcomes", "written"):
        assert result[key] == reference[key], key
    assert {status for _, status in result["outcomes"]} == {OutcomeStatus.OK}


# --- secrets ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty_sandbox() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=200, seed=SEED, **LIMITS) as handle:
        yield handle


def _secrets(handle: Any) -> list[str]:
    return [
        handle.hubspot_token,
        handle.salesforce_session_id,
        handle.salesforce_client_secret,
    ]


def test_secrets_stay_out_of_logs_and_errors(
    crm: str, faulty_sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sb = faulty_sandbox
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    connector = make_connector(crm, sb, throttle=FAST, search_throttle=FAST, timeout_s=TIMEOUT_S)
    mixed = [
        {"kind": kind, "rate": 0.15, "crm": crm, "seconds": SLOW_S}
        for kind in ("429", "500", "503", "reset", "expired", "partial", "lost_write")
    ]
    sb.admin.set_faults(mixed, seed=SEED)
    pulled = pull(connector)
    write_back(connector, pulled.contacts)
    # Then failures that exhaust the retries, so the exceptions themselves are seen.
    for kind in ("500", "expired", "reset"):
        sb.admin.set_faults([{"kind": kind, "count": 100, "crm": crm}])
        try:
            connector.update_properties(
                [
                    PropertyUpdate(
                        crm=Crm(crm), crm_id=pulled.contacts[0].crm_id, values={"score": 1}
                    )
                ]
            )
            next(iter(connector.pull_contacts(None)))
        except ConnectorError as exc:
            texts.append("".join(traceback.format_exception(exc)))
            texts.append(repr(exc))
        else:
            raise AssertionError(f"{kind} x100 did not fail")
    sb.admin.clear_faults()
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.args) for r in caplog.records]
    assert len(texts) > 6
    for secret in _secrets(sb):
        leaks = [t for t in texts if secret in t]
        assert not leaks, leaks[:1]
