"""`mqlsync explain` reads the score, the reasons and the audit trail from the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.settings import get_settings
from store.db import make_engine, migrate
from tests.fake_crm import MemoryCrm
from tests.store.test_pipeline import run, seed


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'explain.db'}"
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_explain_by_email_and_by_id(store_url: str) -> None:
    engine = make_engine(store_url)
    migrate(engine)
    seed(engine)
    run(engine, MemoryCrm())
    runner = CliRunner()
    by_id = runner.invoke(app, ["explain", "1"])
    assert by_id.exit_code == 0, by_id.output
    out = by_id.stdout
    assert "Dana (hubspot 1), VP Sales at Northwind" in out
    assert "grade A, MQL by saas-example@1" in out
    # Evidence described as the sales task describes it, oldest first.
    pricing = (
        "2026-10-29 page view: https://x.io/pricing; 2026-10-31 page view: https://x.io/pricing"
    )
    assert "pricing-twice-14d" in out and pricing in out
    assert "promoted_to_mql" in out and "create_task" in out
    assert "met the MQL criteria" in out
    by_email = runner.invoke(app, ["explain", "Dana@Northwind.io"])
    assert by_email.exit_code == 0 and by_email.stdout == out


def test_explain_unknown_contact(store_url: str) -> None:
    result = CliRunner().invoke(app, ["explain", "ghost@example.com"])
    assert result.exit_code == 1 and "no contact 'ghost@example.com'" in result.stderr
