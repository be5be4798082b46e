"""A spent daily API budget stops a sync cleanly: HubSpot's 429 `policyName: DAILY` and
Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`. The run exits non-zero saying so (no
traceback), does not spin on the limit, keeps its cursors, and once the limit is raised
the next run goes on and ends as a clean run ends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability.conftest import run_cli
from tests.reliability.test_fault_matrix import Reference, assert_like_clean_run, clean

__all__ = ["clean"]  # the module-scoped clean-run reference, used as a fixture here

LIMIT_FIELD = {"hubspot": "hubspot_daily", "salesforce": "salesforce_daily"}
REJECTION = {"hubspot": "DAILY", "salesforce": "REQUEST_LIMIT_EXCEEDED"}
SHARE_SETTING = {
    "hubspot": "MQLSYNC_HUBSPOT_DAILY_BUDGET_SHARE",
    "salesforce": "MQLSYNC_SALESFORCE_DAILY_BUDGET_SHARE",
}


def cursor_rows() -> list[tuple[Any, ...]]:
    from sqlalchemy import select

    from flows import runtime
    from store.tables import CursorRow

    with runtime.store_engine().connect() as connection:
        return sorted(tuple(r) for r in connection.execute(select(CursorRow)).all())


def used_today(sb: Any, crm: str) -> int:
    return int(sb.admin.stats()["limits"][crm]["used_today"])


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
@pytest.mark.parametrize("left", ["few", "most"], ids=["spent-in-the-pull", "spent-in-writes"])
def test_a_spent_daily_budget_stops_the_run_cleanly_and_the_next_run_goes_on(
    crm_env: Any,
    clean: dict[str, Reference],
    crm: str,
    left: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sb = crm_env
    # The CRM's own refusal is what this test meets: the run's share guard is tested below.
    monkeypatch.setenv(SHARE_SETTING[crm], "1")
    # Budget for a few requests (preflight and the first pull pages) or for all but the
    # last few of what a clean run needs (the writes and handoffs).
    needed = sum(n for endpoint, n in clean[crm].requests.items() if _crm_of(endpoint) == crm)
    budget = 3 if left == "few" else needed - 3
    sb.admin.set_limits(**{LIMIT_FIELD[crm]: used_today(sb, crm) + budget})
    before = cursor_rows()

    stopped = run_cli("sync", crm)

    assert stopped.exit_code != 0, stopped.output
    assert "daily API budget is spent" in stopped.output, stopped.output
    assert "Traceback" not in stopped.output, stopped.output
    assert cursor_rows() == before, "the cursors moved in a run that did not finish"
    # Stopped, not spinning: no request was retried against the spent budget more than
    # once per task that met it.
    refused = sb.admin.stats()["throttled_by_policy"].get(REJECTION[crm], 0)
    assert 1 <= refused <= 6, sb.admin.stats()["throttled_by_policy"]

    sb.admin.set_limits(**{LIMIT_FIELD[crm]: 1_000_000})
    resumed = run_cli("sync", crm)
    assert resumed.exit_code == 0, resumed.output
    assert_like_clean_run(sb, crm, clean[crm])


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_run_stops_at_its_share_of_the_quota_before_the_crm_refuses(
    crm_env: Any, clean: dict[str, Reference], crm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default share (half the account's daily quota, read from HubSpot's
    rate-limit headers or Salesforce's Sforce-Limit-Info), a run that would need more
    stops itself, cursors kept, before the CRM refuses anything; the account's other
    integrations keep the other half."""
    sb = crm_env
    needed = sum(n for e, n in clean[crm].requests.items() if _crm_of(e) == crm)
    # A quota the run would spend two thirds of: half of it is spent first.
    sb.admin.set_limits(**{LIMIT_FIELD[crm]: used_today(sb, crm) + needed * 3 // 2})
    before = cursor_rows()
    stopped = run_cli("sync", crm)
    assert stopped.exit_code != 0, stopped.output
    assert "share (50%) of the daily API budget is spent" in stopped.output, stopped.output
    assert "Traceback" not in stopped.output, stopped.output
    assert cursor_rows() == before, "the cursors moved in a run that did not finish"
    assert sb.admin.stats()["throttled_by_policy"].get(REJECTION[crm], 0) == 0

    monkeypatch.setenv(SHARE_SETTING[crm], "1")
    sb.admin.set_limits(**{LIMIT_FIELD[crm]: 1_000_000})
    resumed = run_cli("sync", crm)
    assert resumed.exit_code == 0, resumed.output
    assert_like_clean_run(sb, crm, clean[crm])


def _crm_of(endpoint: str) -> str:
    path = endpoint.split(" ", 1)[1]
    if path.startswith("/_sandbox"):
        return "admin"
    return "salesforce" if path.startswith("/services/") else "hubspot"
