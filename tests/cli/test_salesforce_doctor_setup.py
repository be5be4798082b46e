"""`mqlsync doctor salesforce` and `mqlsync crm-setup salesforce` against the sandbox org.

Over HTTPS, as against a real org: a stock org (no `__c` field anywhere, the four stock
lead statuses) from the doctor's list of exactly what is missing, through a dry run that
creates nothing and a setup that creates the fields and grants the integration user
access to them, to a second setup that finds everything there; a field that exists but
that field-level security hides; a user without "Customize Application", who gets a
deploy package instead; a refused session; and the configured org, which is ready.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from connectors.mapping import default_mapping, load_mapping
from connectors.salesforce_setup import LeadStatusValue, closest_status, propose_statuses
from flows import runtime
from flows.cli import app
from scoring.records import Crm

SETTINGS_CLEARED = (
    "MQLSYNC_HUBSPOT_HOST", "MQLSYNC_HUBSPOT_TOKEN", "MQLSYNC_SALESFORCE_INSTANCE_URL",
    "MQLSYNC_SALESFORCE_LOGIN_URL", "MQLSYNC_SALESFORCE_CLIENT_ID",
    "MQLSYNC_SALESFORCE_CLIENT_SECRET", "MQLSYNC_SALESFORCE_SESSION_ID",
    "MQLSYNC_SALESFORCE_TOKEN_URL", "MQLSYNC_SALESFORCE_USERNAME",
    "MQLSYNC_SALESFORCE_JWT_KEY_FILE", "MQLSYNC_SALESFORCE_JWT_KEY_BLOCK",
    "MQLSYNC_SALESFORCE_DAILY_BUDGET_SHARE", "MQLSYNC_SALESFORCE_MAPPING", "MQLSYNC_CA_FILE",
    "MQLSYNC_DATABASE_URL",
)  # fmt: skip
# A new org's Lead Status picklist, as Salesforce ships it.
STOCK_STATUSES = {"Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                  "Closed - Not Converted"}  # fmt: skip
OBJECTS = ("Lead", "Contact", "Task")
runner = CliRunner()


@contextmanager
def org(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kwargs: Any) -> Iterator[Any]:
    """A sandbox org, with the `MQLSYNC_*` settings aimed at it (restored afterwards)."""
    from sandbox.testing import running_sandbox

    for name in SETTINGS_CLEARED:
        monkeypatch.delenv(name, raising=False)
    with running_sandbox(contacts=20, seed=5, **kwargs) as sb:
        settings = {
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
    runtime.reset()  # a fresh connector per command, as separate invocations have
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


def described(sb: Any) -> dict[str, set[str]]:
    """The fields the integration user sees on each object, through its own session."""
    client = sb.salesforce_client()
    return {obj: {f["name"] for f in client.restful(f"sobjects/{obj}/describe")["fields"]}
            for obj in OBJECTS}  # fmt: skip


def tooling_posts(sb: Any) -> int:
    return sum(
        n
        for key, n in sb.admin.stats()["requests"].items()
        if key.startswith("POST") and "tooling" in key
    )


def mapped_custom_fields() -> set[tuple[str, str]]:
    """Every `__c` field the shipped mapping names, by object (computed from the file)."""
    m = default_mapping(Crm.SALESFORCE)
    names: set[tuple[str, str]] = set()
    for source in m.contacts:
        names |= {(source.object, n) for n in source.crm_fields()}
        names |= {(source.object, n) for n in m.write_back.values()}
        if m.stage.object in (None, source.object):
            names |= {(source.object, n) for n in (m.stage.field, m.stage.fallback_field) if n}
    for source in m.activity_sources:
        names |= {(source, n) for n in m.activity_fields(source)}
    names |= {(m.tasks.object, n) for n in [*m.tasks.fields.values(), *m.tasks.constants]}
    return {(obj, n) for obj, n in names if n.endswith("__c")}


def setup_fields() -> set[tuple[str, str]]:
    """The fields crm-setup creates: write-back on each contact object, the task key, the
    stage's fallback field."""
    m = default_mapping(Crm.SALESFORCE)
    names = {(s.object, n) for s in m.contacts for n in m.write_back.values()}
    names.add((m.tasks.object, m.tasks.fields["key"]))
    assert m.stage.fallback_field
    names.add((m.stage.object or "Lead", m.stage.fallback_field))
    return names


def missing_values() -> set[str]:
    """The status values the shipped mapping writes that a stock org lacks."""
    m = default_mapping(Crm.SALESFORCE)
    values = {*m.lead_status.values.values(), *m.stage.write.values()}
    return {f"value Lead.Status={v}" for v in values - STOCK_STATUSES}


def proposal_yaml(output: str) -> dict[str, Any]:
    """The proposed `stage:` and `lead_status:` sections, parsed."""
    start = output.index("\nstage:\n") + 1
    end = output.index("\n\n", start)
    parsed = yaml.safe_load(output[start:end])
    assert isinstance(parsed, dict)
    return parsed


def test_stock_org_from_doctor_to_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    with org(monkeypatch, tmp_path, profile="stock") as sb:
        before = described(sb)
        code, out = run("doctor", "salesforce")
        assert code == 1, out
        expected_fields = {f"field {obj}.{name}" for obj, name in mapped_custom_fields()}
        # Exactly what is missing: every `__c` field and status value, nothing present.
        assert with_status(out, "missing") == expected_fields | missing_values(), out
        table = rows(out)
        assert table["authentication"][0] == "ok"
        assert "session id" in table["authentication"][1]
        assert table["API version"][0] == "ok"
        assert table["daily API use"][0] == "ok"
        assert "50%" in table["daily API use"][1]
        for obj, name in setup_fields():
            detail = table[f"field {obj}.{name}"][1]
            assert "not visible to the integration user" in detail
            assert "mqlsync crm-setup salesforce" in detail
        assert "optional" in table["field Task.Url__c"][1]
        assert "Lead.Lifecycle_Stage__c" in table["value Lead.Status=Marketing Qualified"][1]
        assert "Closed - Not Converted" in table["value Lead.Status=Unqualified"][1]
        assert "Proposed lead status mapping" in out
        assert sb.salesforce_session_id not in out

        code, out = run("crm-setup", "salesforce", "--dry-run")
        assert code == 0, out
        wanted = setup_fields()
        # Each field, the permission set, read+edit on each field, the assignment.
        assert out.count("would create") == 2 * len(wanted) + 2, out
        assert "nothing created" in out
        assert tooling_posts(sb) == 0
        assert described(sb) == before

        code, out = run("crm-setup", "salesforce")
        assert code == 0, out
        assert f"{2 * len(wanted) + 2} created, 0 already there, 0 failed" in out
        assert "Lead statuses: not created" in out
        after = described(sb)
        for obj, name in wanted:
            # Visible to the integration user: the permission set is granted and assigned.
            assert name in after[obj], (obj, name)
        posts = tooling_posts(sb)

        code, out = run("crm-setup", "salesforce")
        assert code == 0, out
        assert f"0 created, {2 * len(wanted) + 2} already there, 0 failed" in out
        assert tooling_posts(sb) == posts

        code, out = run("doctor", "salesforce")
        optional = {f"field {o}.{n}" for o, n in mapped_custom_fields() - wanted}
        assert with_status(out, "missing") == optional | missing_values(), out
        table = rows(out)
        for obj in ("Lead", "Contact"):
            present = table[f"fields {obj}"][1]
            assert "MQL_Score__c" in present and "Score_Reasons__c" in present
        assert "Handoff_Key__c" in table["fields Task"][1]
        # The stock statuses are still missing: the stage goes to the fallback field.
        assert "goes to Lead.Lifecycle_Stage__c" in table["value Lead.Status=Sales Qualified"][1]
        assert "lead_status.also" in table["value Lead.Status=Unqualified"][1]
        assert "Proposed lead status mapping" in out
        assert "No counterpart in this org for: " in out
        for key in ("lead_status.mql", "lead_status.sql", "lead_status.recycled"):
            assert key in out
        proposed = proposal_yaml(out)
        assert proposed["lead_status"]["values"] == {
            "new": "Open - Not Contacted",
            "working": "Working - Contacted",
            "rejected": "Closed - Not Converted",
            "converted": "Closed - Converted",
        }
        assert proposed["stage"]["fallback_field"] == "Lifecycle_Stage__c"
        # Ready to paste: the mapping with the proposed sections loads.
        shipped = yaml.safe_load(Path("mappings/salesforce.yaml").read_text(encoding="utf-8"))
        pasted = tmp_path / "salesforce.yaml"
        pasted.write_text(yaml.safe_dump({**shipped, **proposed}), encoding="utf-8")
        assert load_mapping(pasted, crm=Crm.SALESFORCE).lead_status.values["rejected"] == (
            "Closed - Not Converted"
        )
        # Optional fields and missing statuses cost signals, not the sync.
        assert code == 0, out
        assert "ready, a sync would run" in out


def test_a_field_hidden_by_field_level_security_is_granted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    hidden = ["Lead.MQL_Score__c", "Task.Handoff_Key__c"]
    with org(monkeypatch, tmp_path, salesforce_hidden_fields=hidden) as sb:
        code, out = run("doctor", "salesforce")
        assert code == 1, out
        table = rows(out)
        for name in hidden:
            status, detail = table[f"field {name}"]
            assert status == "missing"
            assert "missing, or not visible to the integration user" in detail

        code, out = run("crm-setup", "salesforce")
        assert code == 0, out
        lines = {
            (cells[0], cells[1], cells[2]): cells[3]
            for line in out.splitlines()
            if len(cells := re.split(r"\s{2,}", line.strip())) >= 4
        }
        assert lines[("field", "Lead", "MQL_Score__c")] == "exists"
        assert lines[("field", "Task", "Handoff_Key__c")] == "exists"
        assert lines[("field access", "Lead", "MQL_Score__c")] == "created"
        seen = described(sb)
        assert "MQL_Score__c" in seen["Lead"] and "Handoff_Key__c" in seen["Task"]

        code, out = run("doctor", "salesforce")
        assert code == 0, out
        assert not {f"field {name}" for name in hidden} & set(rows(out))


def test_without_customize_application_a_deploy_package_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    package = tmp_path / "package"
    with org(monkeypatch, tmp_path, profile="stock", salesforce_can_customize=False) as sb:
        before = described(sb)
        code, out = run("crm-setup", "salesforce", "--package-dir", str(package))
        assert code == 1, out
        assert "Customize Application" in out
        assert described(sb) == before
        for step in (
            f"cd {package}",
            "sf project deploy start --manifest package.xml --target-org",
            "sf org assign permset --name mqlsync_integration --on-behalf-of",
            "mqlsync doctor salesforce",
        ):
            assert step in out, step
        assert sb.salesforce_session_id not in out

    ns = {"md": "http://soap.sforce.com/2006/04/metadata"}
    manifest = ET.parse(package / "package.xml").getroot()
    members = {
        t.findtext("md:name", namespaces=ns): {m.text for m in t.findall("md:members", ns)}
        for t in manifest.findall("md:types", ns)
    }
    expected = {f"{'Activity' if obj == 'Task' else obj}.{name}" for obj, name in setup_fields()}
    assert members["CustomField"] == expected
    assert members["PermissionSet"] == {"mqlsync_integration"}
    for full_name in expected:
        obj, name = full_name.split(".")
        field = ET.parse(package / "objects" / obj / "fields" / f"{name}.field-meta.xml")
        assert field.getroot().findtext("md:fullName", namespaces=ns) == name
    key = ET.parse(package / "objects/Activity/fields/Handoff_Key__c.field-meta.xml").getroot()
    assert key.findtext("md:externalId", namespaces=ns) == "true"
    assert key.findtext("md:unique", namespaces=ns) == "true"
    assert key.findtext("md:length", namespaces=ns) == "255"
    permset = ET.parse(package / "permissionsets/mqlsync_integration.permissionset-meta.xml")
    granted = {
        (p.findtext("md:field", namespaces=ns), p.findtext("md:readable", namespaces=ns),
         p.findtext("md:editable", namespaces=ns))
        for p in permset.getroot().findall("md:fieldPermissions", ns)
    }  # fmt: skip
    assert granted == {(f"{obj}.{name}", "true", "true") for obj, name in setup_fields()}
    assert (package / "sfdx-project.json").is_file()


def test_configured_org_is_ready(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    with org(monkeypatch, tmp_path) as sb:
        # The connected app's client credentials flow, as a deployment runs it: the
        # instance comes from the token answer.
        monkeypatch.delenv("MQLSYNC_SALESFORCE_SESSION_ID")
        monkeypatch.delenv("MQLSYNC_SALESFORCE_INSTANCE_URL")
        monkeypatch.setenv("MQLSYNC_SALESFORCE_LOGIN_URL", sb.base_url)
        monkeypatch.setenv("MQLSYNC_SALESFORCE_CLIENT_ID", sb.salesforce_client_id)
        monkeypatch.setenv("MQLSYNC_SALESFORCE_CLIENT_SECRET", sb.salesforce_client_secret)
        code, out = run("doctor", "salesforce")
        assert code == 0, out
        assert "ready, a sync would run" in out
        table = rows(out)
        assert "client credentials" in table["authentication"][1]
        assert table["mapping check"][0] == "ok"
        assert with_status(out, "missing") <= {"field Lead.Lifecycle_Stage__c"}
        assert "Proposed lead status mapping" not in out
        assert sb.salesforce_client_secret not in out

        monkeypatch.setenv("MQLSYNC_SALESFORCE_CLIENT_SECRET", "not-the-secret-0123456789")
        code, out = run("doctor", "salesforce")
        assert code == 1, out
        status, detail = rows(out)["authentication"]
        assert status == "missing"
        assert "client credentials" in detail
        assert "not-the-secret-0123456789" not in out


def test_refused_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    wrong = "00D5g000000SANDBOX!AQ0AQWrongSessionIdThatTheOrgDoesNotKnow"
    with org(monkeypatch, tmp_path, profile="stock"):
        monkeypatch.setenv("MQLSYNC_SALESFORCE_SESSION_ID", wrong)
        code, out = run("doctor", "salesforce")
        assert code == 1, out
        status, detail = rows(out)["authentication"]
        assert status == "missing"
        assert "session id" in detail
        assert wrong not in out
        code, out = run("crm-setup", "salesforce", "--dry-run")
        assert code == 1, out
        assert wrong not in out


# --- the proposal, on statuses other orgs have -------------------------------------------


def _statuses(*labels: str, default: str, converted: str) -> list[LeadStatusValue]:
    return [LeadStatusValue(v, v, v == converted, v == default) for v in labels]


def test_closest_status_by_meaning() -> None:
    org_statuses = _statuses(
        "New",
        "Attempting Contact",
        "Nurturing",
        "Qualified",
        "Disqualified",
        "Converted",
        default="New",
        converted="Converted",
    )

    def closest(key: str, taken: tuple[str, ...] = ()) -> str | None:
        found = closest_status(key, org_statuses, taken)
        return found.value if found else None

    assert closest("new") == "New"
    assert closest("working") == "Attempting Contact"
    assert closest("recycled") == "Nurturing"
    assert closest("sql") == "Qualified"
    assert closest("rejected") == "Disqualified"
    assert closest("converted") == "Converted"
    assert closest("mql") is None
    assert closest("rejected", taken=("Disqualified",)) is None


def test_proposal_keeps_values_distinct_and_loads() -> None:
    mapping = default_mapping(Crm.SALESFORCE)
    org_statuses = _statuses(
        "Open",
        "Working",
        "MQL",
        "Unqualified",
        "Closed - Converted",
        default="Open",
        converted="Closed - Converted",
    )
    proposal = propose_statuses(mapping, org_statuses)
    assert proposal is not None
    parsed = yaml.safe_load(proposal.text)
    values = parsed["lead_status"]["values"]
    assert values["new"] == "Open"
    assert values["mql"] == "MQL"
    assert values["rejected"] == "Unqualified"
    assert len(set(values.values())) == len(values)
    assert parsed["stage"]["write"]["mql"] == "MQL"
    assert "lead_status.sql" in proposal.unmatched
    assert "stage.write.sql" in proposal.unmatched
    assert propose_statuses(mapping, _statuses(
        *{*mapping.lead_status.values.values(), *mapping.stage.write.values()},
        default="Open - Not Contacted", converted="Closed - Converted",
    )) is None  # fmt: skip


def test_task_picklist_values_against_describe() -> None:
    """A constant the picklist lacks: blocking only where the picklist is restricted."""
    from connectors.salesforce_setup import Described, FieldInfo
    from flows.doctor import _sf_picklist_rows

    def picklist(name: str, values: tuple[str, ...], restricted: bool) -> FieldInfo:
        return FieldInfo(name, "picklist", True, True, False, values, restricted, None, ())

    class Org:
        def describe(self, obj: str) -> Described:
            assert obj == "Task"
            fields = [
                picklist("Type", ("Call", "Email", "Meeting", "Other"), restricted=False),
                picklist("Status", ("Not Started", "Completed"), restricted=True),
                picklist("Priority", ("High", "Normal"), restricted=True),
            ]
            return Described("Task", {f.name: f for f in fields})

    found = {
        r.check: r for r in _sf_picklist_rows(Org(), default_mapping(Crm.SALESFORCE), "m.yaml")
    }  # type: ignore[arg-type]
    assert set(found) == {"value Task.Type=MQL Handoff", "value Task.Priority=Low"}
    assert not found["value Task.Type=MQL Handoff"].required
    assert found["value Task.Priority=Low"].required
    assert "restricted" in found["value Task.Priority=Low"].detail


def test_daily_budget_past_the_runs_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: None
) -> None:
    """An org whose daily API use is past the share a run may take: no sync would run."""
    with org(monkeypatch, tmp_path, salesforce_daily=4):
        monkeypatch.setenv("MQLSYNC_SALESFORCE_DAILY_BUDGET_SHARE", "0.5")
        code, out = run("doctor", "salesforce")
        assert code == 1, out
        status, detail = rows(out)["daily API use"]
        assert status == "unavailable"
        assert "50%" in detail
