"""The store's own history as a backtest dataset: mirrored contacts and activities, and
sales' acceptances (SQL read, lead converted) from the audit log as dated outcomes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows import runtime
from flows.backtest import candidates
from flows.cli import app
from flows.history import HistorySourceError, read_history, store_history
from scoring.records import Contact, Crm
from store import audit, mirror
from store.audit import AuditEvent
from store.db import make_engine
from tests.flows.history_store import AS_OF, build_history_store


def build_store(url: str) -> None:
    """The twenty who asked for a demo were accepted by sales after AS_OF; the last of
    them through a lead conversion, dated by the conversion, which counts for the Contact
    it became as well."""
    converted = AuditEvent(
        "salesforce", "00Q019", "feedback", "accepted",
        detail={"converted_to": "003001",
                "converted_at": (AS_OF + timedelta(days=5)).isoformat()},
    )  # fmt: skip
    build_history_store(url, accepted=19, more=[converted])


def test_the_store_history_holds_dated_acceptances(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    build_store(url)
    data = store_history(make_engine(url), "salesforce")
    assert len(data.contacts) == 40
    assert sum(len(a) for a in data.activities.values()) == 20
    assert set(data.outcomes) == {f"00Q{i:03d}" for i in range(20)}
    assert data.outcomes["00Q000"].converted_at == AS_OF + timedelta(days=10)
    assert data.outcomes["00Q019"].converted_at == AS_OF + timedelta(days=5)
    assert audit.acceptances(make_engine(url), "salesforce")["003001"] == AS_OF + timedelta(days=5)


def test_the_crms_own_acceptance_date_counts_and_the_earliest_wins(tmp_path: Path) -> None:
    """A contact the CRM dates as accepted (HubSpot's SQL date) is an outcome without any
    audit row; where a sync also read the acceptance later, the CRM's earlier date wins,
    and a later CRM date does not move an earlier read."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    build_store(url)
    engine = make_engine(url)
    crm_dated = {
        "00Q030": AS_OF - timedelta(days=40),  # no audit row: accepted before any sync
        "00Q000": AS_OF + timedelta(days=2),  # read at SQL on day 10: the CRM says day 2
        "00Q001": AS_OF + timedelta(days=30),  # read at SQL on day 10: that stays
    }
    mirror.upsert_contacts(
        engine,
        [
            Contact(
                crm=Crm.SALESFORCE,
                crm_id=crm_id,
                created_at=AS_OF - timedelta(days=60),
                updated_at=AS_OF + timedelta(days=11),  # newer, so the row is replaced
                accepted_at=at,
            )
            for crm_id, at in crm_dated.items()
        ],
        AS_OF + timedelta(days=11),
    )
    data = store_history(engine, "salesforce")
    assert set(data.outcomes) == {f"00Q{i:03d}" for i in range(20)} | {"00Q030"}
    assert data.outcomes["00Q030"].converted_at == AS_OF - timedelta(days=40)
    assert data.outcomes["00Q000"].converted_at == AS_OF + timedelta(days=2)
    assert data.outcomes["00Q001"].converted_at == AS_OF + timedelta(days=10)
    # The date is an outcome: no rule can read it off the contact.
    [late] = [c for c in data.contacts if c.crm_id == "00Q030"]
    assert late.accepted_at == AS_OF - timedelta(days=40)
    assert late.field_value("accepted_at") is None


def test_a_converted_lead_is_judged_as_the_contact_it_became(tmp_path: Path) -> None:
    """Lead 00Q005 asked for a demo and was converted on day 5 into Contact 003005, which
    Salesforce created then: the person is judged once, as the Contact, existing since
    the lead did and with the lead's demo, converted on day 5."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    build_history_store(
        url,
        accepted=0,
        more=[
            AuditEvent(
                "salesforce", "00Q005", "feedback", "accepted",
                detail={"converted_to": "003005",
                        "converted_at": (AS_OF + timedelta(days=5)).isoformat()},
            )
        ],
    )  # fmt: skip
    engine = make_engine(url)
    converted_at = AS_OF + timedelta(days=5)
    mirror.upsert_contacts(
        engine,
        [Contact(crm=Crm.SALESFORCE, crm_id="003005", created_at=converted_at)],
        converted_at,
    )
    mirror.mark_deleted(engine, Crm.SALESFORCE, ["00Q005"])
    data = store_history(engine, "salesforce")
    ids = {c.crm_id for c in data.contacts}
    assert "00Q005" not in ids and "003005" in ids
    [person] = [c for c in data.contacts if c.crm_id == "003005"]
    assert person.created_at == AS_OF - timedelta(days=60)  # the lead's
    assert [(a.crm_id, a.contact_id) for a in data.activities["003005"]] == [("00T005", "003005")]
    assert data.outcomes["003005"].converted_at == converted_at
    # Judged at AS_OF, the person converted within the horizon: a backtest counts them.
    rows, _ = candidates(data, [AS_OF], 90)
    [row] = [r for r in rows if r.contact.crm_id == "003005"]
    assert row.converted and len(row.activities) == 1


def test_files_in_part_are_refused() -> None:
    with pytest.raises(HistorySourceError, match="none of them"):
        read_history(Path("contacts.jsonl"), None, None, "hubspot")


def test_backtest_reads_the_store_without_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    build_store(url)
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", url)
    runtime.reset()
    try:
        result = CliRunner().invoke(
            app,
            ["backtest", "--model", "scoring/models/default.yaml", "--crm", "salesforce",
             "--as-of", AS_OF.isoformat(), "--json"],
        )  # fmt: skip
    finally:
        runtime.reset()
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    # The twenty who asked for a demo are the twenty accepted: the model ranks them first.
    assert figures["dataset"]["rows"] == 40 and figures["dataset"]["converters"] == 20
    [model] = figures["models"]
    assert model["pooled"]["auc_total"] == 1.0
