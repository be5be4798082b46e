"""The store's own history as a backtest dataset: mirrored contacts and activities, and
sales' acceptances (SQL read, lead converted) from the audit log as dated outcomes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows import runtime
from flows.cli import app
from flows.history import HistorySourceError, read_history, store_history
from store import audit
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
