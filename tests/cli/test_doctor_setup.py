"""`mqlsync doctor` and `mqlsync crm-setup` against the sandbox over HTTPS.

A stock portal (no mqlsync_* properties) at each tier: the doctor names exactly the
missing properties and exits 1, a dry run creates nothing, setup creates them with their
types, a second setup creates nothing, and the doctor then exits 0. Also: missing
scopes, a refused token, Salesforce, and no secret in any output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows import runtime
from flows.cli import app

SANDBOX_ENV = (
    "MQLSYNC_HUBSPOT_HOST", "MQLSYNC_HUBSPOT_TOKEN", "MQLSYNC_SALESFORCE_INSTANCE_URL",
    "MQLSYNC_SALESFORCE_CLIENT_ID", "MQLSYNC_SALESFORCE_CLIENT_SECRET",
    "MQLSYNC_SALESFORCE_SESSION_ID", "MQLSYNC_CA_FILE", "MQLSYNC_DATABASE_URL",
    "MQLSYNC_HUBSPOT_REFRESH_TOKEN", "MQLSYNC_HUBSPOT_CLIENT_ID",
    "MQLSYNC_HUBSPOT_CLIENT_SECRET", "MQLSYNC_HUBSPOT_MAPPING",
)  # fmt: skip
CONTACT_PROPERTIES = {
    "mqlsync_score": ("number", "number"),
    "mqlsync_fit": ("number", "number"),
    "mqlsync_engagement": ("number", "number"),
    "mqlsync_grade": ("enumeration", "select"),
    "mqlsync_reasons": ("string", "textarea"),
    "mqlsync_model_version": ("string", "text"),
}
MISSING_ON_STOCK = {f"property contacts.{name}" for name in CONTACT_PROPERTIES} | {
    "property tasks.mqlsync_handoff_key"
}
runner = CliRunner()


@contextmanager
def portal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kwargs: Any) -> Iterator[Any]:
    """A sandbox, with the `MQLSYNC_*` settings aimed at it (restored afterwards)."""
    from sandbox.testing import running_sandbox

    for name in SANDBOX_ENV:
        monkeypatch.delenv(name, raising=False)
    with running_sandbox(contacts=20, seed=5, hubspot_search_per_s=100, **kwargs) as sb:
        settings = {
            "MQLSYNC_HUBSPOT_HOST": sb.base_url,
            "MQLSYNC_HUBSPOT_TOKEN": sb.hubspot_token,
            "MQLSYNC_SALESFORCE_INSTANCE_URL": sb.base_url,
            "MQLSYNC_SALESFORCE_SESSION_ID": sb.salesforce_session_id,
            "MQLSYNC_CA_FILE": sb.ca_file,
            "MQLSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "MQLSYNC_BACKOFF_BASE_S": "0.01",
            "MQLSYNC_BACKOFF_MAX_S": "0.05",
            "MQLSYNC_TIMEOUT_S": "5",
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        try:
            yield sb
        finally:
            runtime.reset()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The doctor's table: check → (status, rest of the line)."""
    found: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 2 and cells[1] in ("ok", "missing", "unavailable"):
            found[cells[0]] = (cells[1], "  ".join(cells[2:]))
    return found


def with_status(output: str, status: str) -> set[str]:
    return {check for check, (s, _) in rows(output).items() if s == status}


def property_creates(sb: Any) -> int:
    requests = sb.admin.stats()["requests"]
    return sum(n for key, n in requests.items() if key.startswith("POST /crm/v3/properties"))


@pytest.mark.parametrize("tier", ["starter", "professional", "enterprise"])
def test_stock_portal_from_doctor_to_ready(
    tier: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    with portal(monkeypatch, tmp_path, profile="stock", tier=tier) as sb:
        code, out = run("doctor", "hubspot")
        assert code == 1, out
        assert with_status(out, "missing") == MISSING_ON_STOCK
        assert "run `mqlsync crm-setup hubspot`" in out
        events_status, events_detail = rows(out)["source events"]
        if tier == "enterprise":
            assert events_status == "ok"
        else:
            assert events_status == "unavailable"
            assert "Enterprise" in events_detail
        for source in ("email_events", "forms", "meetings", "calls", "emails", "communications"):
            assert rows(out)[f"source {source}"][0] == "ok", (source, out)
        assert rows(out)["quota"][0] == "ok"
        assert rows(out)["token"][0] == "ok"

        code, out = run("crm-setup", "hubspot", "--dry-run")
        assert code == 0, out
        assert out.count("would create") == 9  # two groups, seven properties
        assert property_creates(sb) == 0
        code, out = run("doctor", "hubspot")
        assert with_status(out, "missing") == MISSING_ON_STOCK

        code, out = run("crm-setup", "hubspot")
        assert code == 0, out
        assert "9 created, 0 already there, 0 failed" in out
        props = sb.hubspot_client().crm.properties.core_api
        for name, (kind, field_type) in CONTACT_PROPERTIES.items():
            created = props.get_by_name("contacts", name)
            assert (created.type, created.field_type, created.group_name) == (
                kind,
                field_type,
                "mqlsync",
            )
        grade = props.get_by_name("contacts", "mqlsync_grade")
        assert [o.value for o in grade.options] == ["A", "B", "C", "D"]
        key = props.get_by_name("tasks", "mqlsync_handoff_key")
        assert (key.type, key.field_type) == ("string", "text")
        # HubSpot offers unique-value properties on contacts, companies, deals, tickets
        # and custom objects only: the task key is not one.
        assert not key.has_unique_value

        creates = property_creates(sb)
        code, out = run("crm-setup", "hubspot")
        assert code == 0, out
        assert "0 created, 7 already there, 0 failed" in out
        assert property_creates(sb) == creates

        code, out = run("doctor", "hubspot")
        assert code == 0, out
        assert with_status(out, "missing") == set()
        assert "ready, a sync would run" in out
        assert sb.hubspot_token not in out


def test_missing_optional_scopes_cost_sources_and_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    from sandbox.auth import HUBSPOT_PRODUCT_SCOPES

    scopes = HUBSPOT_PRODUCT_SCOPES - {"content", "crm.schemas.contacts.write"}
    with portal(monkeypatch, tmp_path, profile="stock", scopes=scopes) as sb:
        code, out = run("doctor", "hubspot")
        assert code == 1, out
        table = rows(out)
        assert table["scope content"][0] == "missing"
        assert "email opens/clicks" in table["scope content"][1]
        assert table["scope crm.schemas.contacts.write"][0] == "missing"
        assert table["source email_events"][0] == "missing"
        assert with_status(out, "missing") == MISSING_ON_STOCK | {
            "scope content",
            "scope crm.schemas.contacts.write",
            "source email_events",
        }

        code, out = run("crm-setup", "hubspot")
        assert code == 1, out
        assert "0 created" in out and "9 failed" in out
        assert "MISSING_SCOPES" in out
        assert sb.hubspot_token not in out


def test_without_write_scope_a_sync_cannot_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    from sandbox.auth import HUBSPOT_PRODUCT_SCOPES

    scopes = HUBSPOT_PRODUCT_SCOPES - {"crm.objects.contacts.write"}
    with portal(monkeypatch, tmp_path, scopes=scopes):
        code, out = run("doctor", "hubspot")
        assert code == 1, out
        assert with_status(out, "missing") == {"scope crm.objects.contacts.write"}
        assert "not ready, 1 item(s) stop a sync" in out


def test_refused_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None) -> None:
    wrong = "pat-na1-11111111-2222-3333-4444-555555555555"
    with portal(monkeypatch, tmp_path, profile="stock"):
        monkeypatch.setenv("MQLSYNC_HUBSPOT_TOKEN", wrong)
        runtime.reset()
        code, out = run("doctor", "hubspot")
        assert code == 1, out
        assert rows(out)["token"][0] == "missing"
        assert wrong not in out
        code, out = run("crm-setup", "hubspot", "--dry-run")
        assert code == 1, out
        assert wrong not in out


def test_unknown_crm_is_refused() -> None:
    code, out = run("doctor", "pipedrive")
    assert code == 2
    assert "expected hubspot or salesforce" in out


def test_ready_means_a_sync_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    """The doctor's 0 is a promise: on a set-up starter portal a sync runs to the end."""
    from flows.launch import run_flow
    from flows.sync import CrmName, sync

    with portal(monkeypatch, tmp_path, profile="stock", tier="starter") as sb:
        assert run("doctor", "hubspot")[0] == 1
        assert run("crm-setup", "hubspot")[0] == 0
        assert run("doctor", "hubspot")[0] == 0
        runtime.reset()
        notes: list[str] = []
        code, text = run_flow(sync, notes.append, crm=CrmName("hubspot"))
        assert code == 0, "\n".join([*notes, text])
        written = [
            sb.admin.hubspot_contact(cid)["properties"].get("mqlsync_score")
            for cid in sb.admin.expected("hubspot")["contacts"][:5]
        ]
        assert any(value not in (None, "") for value in written), written


def test_without_schema_read_the_properties_cannot_be_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    from sandbox.auth import HUBSPOT_PRODUCT_SCOPES

    scopes = HUBSPOT_PRODUCT_SCOPES - {"crm.schemas.contacts.read"}
    with portal(monkeypatch, tmp_path, scopes=scopes):
        code, out = run("doctor", "hubspot")
        assert code == 1, out
        assert with_status(out, "missing") == {
            "properties contacts",
            "properties tasks",
            "scope crm.schemas.contacts.read",
        }
        assert "MISSING_SCOPES" in rows(out)["properties contacts"][1]
