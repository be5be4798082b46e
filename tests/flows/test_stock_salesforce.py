"""A stock Salesforce org from first contact to a finished sync: before `crm-setup` the
sync stops before its first query, naming the fields; after it, the sync runs to the end,
the stage going to the fallback field since the org has no "Marketing Qualified"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import runtime
from flows.demo import point_settings_at
from scoring.records import Crm

SETTINGS = (
    "MQLSYNC_HUBSPOT_HOST", "MQLSYNC_HUBSPOT_TOKEN", "MQLSYNC_SALESFORCE_INSTANCE_URL",
    "MQLSYNC_SALESFORCE_CLIENT_ID", "MQLSYNC_SALESFORCE_CLIENT_SECRET",
    "MQLSYNC_SALESFORCE_SESSION_ID", "MQLSYNC_CA_FILE", "MQLSYNC_DATABASE_URL",
)  # fmt: skip


@pytest.fixture
def stock_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api) -> Iterator[object]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=300, seed=3, profile="stock") as sb:
        for name in SETTINGS:
            monkeypatch.delenv(name, raising=False)
        point_settings_at(sb, f"sqlite:///{tmp_path / 'stock.db'}")
        yield sb
    runtime.reset()


def queries(sb) -> int:
    return sum(
        n
        for key, n in sb.admin.stats()["requests"].items()
        if key.startswith("GET") and "/query" in key
    )


def test_a_stock_org_is_refused_before_setup_and_synced_after(stock_env) -> None:
    from flows.doctor import run_setup
    from flows.sync import CrmName, sync

    sb = stock_env
    sb.admin.reset()
    state = sync(crm=CrmName.salesforce, return_state=True)
    assert state.is_failed()
    message = str(state.message)
    assert "Lead.MQL_Score__c" in message and "Task.Handoff_Key__c" in message, message
    assert queries(sb) == 0  # stopped on describe, before the first query

    runtime.reset()
    code, table = run_setup(Crm.SALESFORCE, dry_run=False)
    assert code == 0, table

    runtime.reset()
    state = sync(crm=CrmName.salesforce, return_state=True)
    assert state.is_completed(), state.message
    sf = sb.salesforce_client()
    mqls = sf.query_all("SELECT Id, Status FROM Lead WHERE Lifecycle_Stage__c = 'mql'")["records"]
    assert mqls, "the stock population should hold MQLs"
    # The stock statuses are left as they were: there is no "Marketing Qualified" to set.
    assert {r["Status"] for r in mqls} <= {"Open - Not Contacted", "Working - Contacted"}
    tasks = sf.query_all("SELECT WhoId FROM Task WHERE Handoff_Key__c != null")["records"]
    assert {t["WhoId"] for t in tasks} == {r["Id"] for r in mqls}
    scored = sf.query_all("SELECT Id FROM Lead WHERE MQL_Score__c != null")["records"]
    assert len(scored) > len(mqls)
