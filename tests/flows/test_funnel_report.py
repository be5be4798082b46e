"""The funnel seen by people: the band warning, the sync summary's funnel lines (a warning
changes neither verdict nor exit code), and `mqlsync conversion`'s tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from flows import runtime
from flows.cli import app
from flows.funnel import band_warning, summary_lines
from flows.settings import get_settings
from store import audit
from store.audit import AuditEvent
from store.db import make_engine, migrate
from store.funnel import Funnel
from tests.flows.test_flows import sandbox_env  # noqa: F401  (a fixture)
from tests.store.test_funnel import NOW, build_history, promoted


def decided_mqls(
    engine: Engine, when: datetime, accepted: int, rejected: int, crm: str = "hubspot"
) -> None:
    """MQLs promoted at `when` and decided by sales a day later."""
    for i in range(accepted + rejected):
        contact = f"funnel-{i}"
        audit.record(engine, [promoted(contact, "B", crm=crm)], None, when)
        verdict = ("feedback", "accepted") if i < accepted else ("decision", "recycled")
        audit.record(engine, [AuditEvent(crm, contact, *verdict)], None, when + timedelta(days=1))


def test_the_band_warning() -> None:
    above = band_warning(Funnel(mqls=100, accepted=40, rejected=30))
    assert above is not None and "above the healthy 15%-30% band" in above
    assert "sales receives too few MQLs" in above and "lowering the MQL threshold" in above
    assert "40.0% (40 of 100 MQLs)" in above and "mqlsync backtest" in above
    below = band_warning(Funnel(mqls=100, accepted=10, rejected=50))
    assert below is not None and "below the healthy 15%-30% band" in below
    assert "too many weak MQLs" in below and "raise the MQL threshold" in below
    for inside in (Funnel(100, 15, 10), Funnel(100, 20, 30), Funnel(100, 30, 0)):
        assert band_warning(inside) is None, inside  # the band's ends are inside it
    assert band_warning(Funnel(mqls=30, accepted=15, rejected=4)) is None  # 19 decided
    assert band_warning(Funnel(mqls=30, accepted=15, rejected=5)) is not None
    assert band_warning(Funnel()) is None


def test_a_run_s_own_promotions_are_in_its_funnel(engine: Engine) -> None:
    """On a pinned clock a run records its MQLs at exactly its instant: they count."""
    audit.record(engine, [promoted("now-1", "A")], None, NOW)
    (thirty, ninety) = summary_lines(engine, "hubspot", NOW)
    assert thirty.startswith("- funnel, last 30 days: 1 MQLs") and "1 open" in thirty
    assert ninety.startswith("- funnel, last 90 days: 1 MQLs")


def test_summary_lines_from_the_store(engine: Engine) -> None:
    build_history(engine)
    # The windows take in NOW itself: a12, promoted at NOW, is an open MQL of both.
    assert summary_lines(engine, "hubspot", NOW) == [
        "- funnel, last 30 days: 9 MQLs, 2 accepted, 2 rejected or recycled, 5 open; "
        "conversion 22.2%",
        "- funnel, last 90 days: 10 MQLs, 3 accepted, 2 rejected or recycled, 5 open; "
        "conversion 30.0%",
    ]  # at the band's top, and with 5 decided MQLs: no warning
    decided_mqls(engine, NOW - timedelta(days=60), accepted=18, rejected=2)
    lines = summary_lines(engine, "hubspot", NOW)
    assert lines[0].startswith("- funnel, last 30 days: 9 MQLs")
    assert lines[1] == (
        "- funnel, last 90 days: 30 MQLs, 21 accepted, 4 rejected or recycled, 5 open; "
        "conversion 70.0%"
    )
    assert len(lines) == 3 and lines[2].startswith("- warning: 90-day conversion 70.0%")
    assert "above the healthy 15%-30% band" in lines[2]


def test_the_conversion_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'conversion.db'}"
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", url)
    monkeypatch.setenv("MQLSYNC_FIXED_NOW", NOW.isoformat())
    get_settings.cache_clear()
    try:
        engine = make_engine(url)
        migrate(engine)
        build_history(engine)
        engine.dispose()
        result = CliRunner().invoke(app, ["conversion", "hubspot"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Today's totals as before: every promoted contact, every acceptance, every recycle.
    assert lines[0] == "hubspot: 11 MQLs handed to sales, 4 accepted (36%), 5 recycled to nurture"
    rows = {line.split()[0]: line.split()[1:] for line in lines if re.match(r"^\S+  ", line)}
    assert "By month of promotion, last 12 (verdicts so far):" in lines
    assert rows["2025-07"] == ["0", "0", "0", "0", "-", "-"]  # twelve months back
    assert rows["2026-05"] == ["6", "2", "1", "3", "33.3%", "66.7%"]
    assert rows["2026-06"] == ["4", "1", "1", "2", "25.0%", "50.0%"]  # with a12, at NOW
    assert "By grade at promotion, last 90 days:" in lines
    assert rows["A"] == ["4", "1", "0", "3", "25.0%", "100.0%"]
    assert rows["unknown"] == ["1", "0", "1", "0", "0.0%", "0.0%"]
    assert rows["all"] == ["10", "3", "2", "5", "30.0%", "60.0%"]
    assert not any("warning" in line for line in lines)


FUNNEL_LINE = re.compile(
    r"^\| last (30|90) days \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\S+) \|$",
    re.MULTILINE,
)


def test_a_sync_reports_the_funnel_and_warns_outside_the_band(
    sandbox_env: object,  # noqa: F811
) -> None:
    from prefect.artifacts import Artifact

    from flows.sync import CrmName, sync

    summary = sync(crm=CrmName.hubspot)
    assert isinstance(summary, str) and "(applied)" in summary
    new_mqls = int(re.search(r"^- new MQLs: (\d+)$", summary, re.MULTILINE)[1])  # type: ignore[index]
    assert new_mqls > 0
    figures = {days: rest for days, *rest in FUNNEL_LINE.findall(summary)}
    zero = "0.0%"
    assert figures == {
        "30": [str(new_mqls), "0", "0", str(new_mqls), zero],
        "90": [str(new_mqls), "0", "0", str(new_mqls), zero],
    }
    assert "warning" not in summary  # no verdicts yet: nothing to judge
    assert summary.rstrip().splitlines()[-1].startswith("| last 90 days |")

    # Sales rejected 25 MQLs of two months ago: conversion 0%, below the band.
    decided_mqls(runtime.store_engine(), runtime.now() - timedelta(days=60), 0, 25)
    summary = sync(crm=CrmName.hubspot)
    assert isinstance(summary, str), summary  # completed: the warning is no failure
    figures = {days: rest for days, *rest in FUNNEL_LINE.findall(summary)}
    assert figures["30"] == [str(new_mqls), "0", "0", str(new_mqls), zero]
    assert figures["90"] == [str(new_mqls + 25), "0", "25", str(new_mqls), zero]
    warning = summary.rstrip().splitlines()[-1]
    assert warning.startswith("- warning: 90-day conversion 0.0%")
    assert "below the healthy 15%-30% band" in warning and "raise the MQL threshold" in warning
    artifact = Artifact.get("mqlsync-sync-hubspot-summary")
    assert artifact is not None and warning in str(getattr(artifact, "data", ""))


def test_a_run_s_funnel_table_uses_its_instant_and_never_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.run_tables import funnel_lines

    url = f"sqlite:///{tmp_path / 'lines.db'}"
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", url)
    monkeypatch.setenv("MQLSYNC_FIXED_NOW", "2026-02-01T00:00:00+00:00")
    runtime.reset()
    try:
        decided_mqls(runtime.store_engine(), datetime(2026, 1, 10, tzinfo=UTC), 2, 23)
        # Outside a flow run: the warning is not logged, only shown.
        lines = funnel_lines(runtime.store_engine(), "hubspot", runtime.now())
        assert lines[2:4] == [
            "| last 30 days | 25 | 2 | 23 | 0 | 8.0% |",
            "| last 90 days | 25 | 2 | 23 | 0 | 8.0% |",
        ]
        assert len(lines) == 6 and "90-day conversion 8.0% (2 of 25 MQLs)" in lines[5]
        monkeypatch.setenv("MQLSYNC_FIXED_NOW", "2026-06-01T00:00:00+00:00")
        runtime.reset()
        assert funnel_lines(runtime.store_engine(), "hubspot", runtime.now())[2:] == [
            "| last 30 days | 0 | 0 | 0 | 0 | - |",
            "| last 90 days | 0 | 0 | 0 | 0 | - |",
        ]
        # A store that stops answering after the run's work makes one line, not a failure.
        unreachable = make_engine("postgresql://nobody@127.0.0.1:1/none")
        (line,) = funnel_lines(unreachable, "hubspot", runtime.now())
        assert line == "- funnel: not available (the store did not answer: OperationalError)"
    finally:
        runtime.reset()
