"""The flows in-process: a dry run writes nothing to the CRM, a sync writes and records,
settings and Secret blocks reach the connectors, and fatal errors are not retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import runtime
from flows.demo import point_settings_at
from flows.tasks import retry_unless_fatal
from scoring.records import Crm

WRITE_CALLS = ("batch/update", "batch/create", "composite/sobjects", "sobjects/Task")


def writes(stats: dict[str, object]) -> dict[str, int]:
    requests: dict[str, int] = stats["requests"]  # type: ignore[assignment]
    return {k: v for k, v in requests.items() if k.startswith(("POST", "PATCH"))
            and any(w in k for w in WRITE_CALLS)}  # fmt: skip


@pytest.fixture
def sandbox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api) -> Iterator[object]:
    from sandbox.testing import running_sandbox

    # 300 people: several Salesforce leads were converted before as_of (5, those past SQL).
    with running_sandbox(contacts=300, seed=3, hubspot_search_per_s=50) as sb:
        for name in (
            "MQLSYNC_HUBSPOT_HOST", "MQLSYNC_HUBSPOT_TOKEN", "MQLSYNC_SALESFORCE_INSTANCE_URL",
            "MQLSYNC_SALESFORCE_CLIENT_ID", "MQLSYNC_SALESFORCE_CLIENT_SECRET",
            "MQLSYNC_SALESFORCE_SESSION_ID", "MQLSYNC_CA_FILE", "MQLSYNC_DATABASE_URL",
        ):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        point_settings_at(sb, f"sqlite:///{tmp_path / 'flows.db'}")
        yield sb
    runtime.reset()


def test_a_dry_run_plans_but_writes_nothing(sandbox_env) -> None:
    from prefect.artifacts import Artifact

    from flows.sync import CrmName, sync

    sb = sandbox_env
    sb.admin.reset()
    summary = sync(crm=CrmName.hubspot, dry_run=True)
    assert "dry run" in summary
    assert writes(sb.admin.stats()) == {}
    table = Artifact.get("mqlsync-sync-hubspot-mqls")
    assert table is not None and "would create (hubspot:" in str(table.data)

    summary = sync(crm=CrmName.hubspot)
    assert "(applied)" in summary
    made = writes(sb.admin.stats())
    assert made.get("POST /crm/v3/objects/contacts/batch/update", 0) >= 1
    assert len(sb.admin.hubspot_tasks()) >= 1


def test_a_second_sync_with_nothing_new_writes_nothing(sandbox_env) -> None:
    from flows.sync import CrmName, sync

    sb = sandbox_env
    sync(crm=CrmName.hubspot)
    sb.admin.reset()
    sync(crm=CrmName.hubspot)
    assert writes(sb.admin.stats()) == {}


def test_credentials_from_a_secret_block(sandbox_env, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    sb = sandbox_env
    Secret(value=sb.hubspot_token).save("mqlsync-hubspot-token", overwrite=True)
    monkeypatch.delenv("MQLSYNC_HUBSPOT_TOKEN")
    runtime.reset()
    connector = runtime.connector_for(Crm.HUBSPOT)
    assert connector.check_mapping() == []


@pytest.mark.parametrize("setting", [None, "1"])
def test_the_hubspot_concurrency_setting_reaches_the_pull(
    sandbox_env, monkeypatch: pytest.MonkeyPatch, setting: str | None
) -> None:
    """MQLSYNC_HUBSPOT_CONCURRENCY: by default a sync's requests overlap at the sandbox
    (as its own record of its answer times shows); set to 1, never."""
    from flows.sync import CrmName, sync

    sb = sandbox_env
    if setting is None:
        monkeypatch.delenv("MQLSYNC_HUBSPOT_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("MQLSYNC_HUBSPOT_CONCURRENCY", setting)
    runtime.reset()
    sb.admin.set_latency(enabled=True, scale=0.2)  # waits long enough to overlap
    sync(crm=CrmName.hubspot, dry_run=True)
    peak = sb.admin.latency()["peak_waiting"]
    assert peak == 1 if setting else peak >= 2


def test_missing_credentials_are_a_clear_configuration_error(
    sandbox_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    Secret(value="x").save("mqlsync-hubspot-token", overwrite=True)
    Secret.delete("mqlsync-hubspot-token")
    monkeypatch.delenv("MQLSYNC_HUBSPOT_TOKEN")
    runtime.reset()
    with pytest.raises(runtime.ConfigurationError, match="MQLSYNC_HUBSPOT_TOKEN"):
        runtime.connector_for(Crm.HUBSPOT)


class _State:
    def __init__(self, error: BaseException) -> None:
        self._error = error

    def result(self, raise_on_failure: bool = True) -> BaseException:
        return self._error


def test_tasks_are_not_retried_on_fatal_errors() -> None:
    from connectors.errors import DailyLimitExceeded, FatalError, RetriableError

    assert not retry_unless_fatal(None, None, _State(DailyLimitExceeded("daily limit")))
    assert not retry_unless_fatal(None, None, _State(FatalError("400 validation")))
    assert not retry_unless_fatal(None, None, _State(runtime.ConfigurationError("no token")))
    assert retry_unless_fatal(None, None, _State(RetriableError("503")))
    assert retry_unless_fatal(None, None, _State(ConnectionResetError()))


def test_a_converted_lead_is_an_outcome_once_and_never_written(sandbox_env) -> None:
    from flows.sync import CrmName, sync
    from store import audit

    sb = sandbox_env
    sync(crm=CrmName.salesforce)
    sf = sb.salesforce_client()
    lead = sf.query("SELECT Id FROM Lead WHERE IsConverted = false LIMIT 1")["records"][0]["Id"]
    contact_id = sb.admin.convert_lead(lead)
    sync(crm=CrmName.salesforce)
    sync(crm=CrmName.salesforce)  # the overlap brings the conversion again: still one outcome
    engine = runtime.store_engine()
    accepted = [
        e for e in audit.history(engine, "salesforce", lead)
        if (e["kind"], e["action"]) == ("feedback", "accepted")
    ]  # fmt: skip
    assert len(accepted) == 1, accepted
    assert accepted[0]["detail"]["converted_to"] == contact_id
    assert accepted[0]["detail"]["converted_at"] is not None
    # Leads the sandbox converted before the first sync were never scored nor written.
    converted = sf.query_all("SELECT Id, MQL_Score__c FROM Lead WHERE IsConverted = true")[
        "records"
    ]
    assert len(converted) > 1
    assert all(r["MQL_Score__c"] is None for r in converted if r["Id"] != lead)
    counts = audit.conversion(engine, "salesforce")
    assert counts["accepted"] >= len(converted)
