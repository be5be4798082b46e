"""A sandbox and a store per test, with the `MQLSYNC_*` settings aimed at them, and the
`mqlsync` command run in-process against the session's Prefect test API."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flows import runtime

SANDBOX_ENV = (
    "MQLSYNC_HUBSPOT_HOST", "MQLSYNC_HUBSPOT_TOKEN", "MQLSYNC_SALESFORCE_INSTANCE_URL",
    "MQLSYNC_SALESFORCE_CLIENT_ID", "MQLSYNC_SALESFORCE_CLIENT_SECRET",
    "MQLSYNC_SALESFORCE_SESSION_ID", "MQLSYNC_CA_FILE", "MQLSYNC_DATABASE_URL",
)  # fmt: skip
# Small populations with MQLs in both CRMs; faults are seeded, so every run repeats.
CONTACTS = 240
SEED = 3
# As strict as HubSpot: its search sees a write only after a lag (whole-batch validation
# and ignored backward stage sets are always on), so every lookup must wait it out. The
# settle time covers the lag and what a busy machine adds to a request given up on.
SEARCH_LAG_S = 0.5
STRICT = {"contacts": CONTACTS, "seed": SEED, "hubspot_search_per_s": 100,
          "search_lag_s": SEARCH_LAG_S}  # fmt: skip


# Scores decay with time and windows close: two clean runs minutes apart can differ.
# Suites that compare a run with a reference made earlier decide both as of this instant.
PINNED_NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def pinned_clock() -> Iterator[datetime]:
    """Every sync of the module (in-process or a child process) decides as of PINNED_NOW."""
    saved = os.environ.get("MQLSYNC_FIXED_NOW")
    os.environ["MQLSYNC_FIXED_NOW"] = PINNED_NOW.isoformat()
    runtime.reset()
    yield PINNED_NOW
    if saved is None:
        os.environ.pop("MQLSYNC_FIXED_NOW", None)
    else:
        os.environ["MQLSYNC_FIXED_NOW"] = saved
    runtime.reset()


@dataclass
class CliRun:
    exit_code: int
    output: str


def run_cli(command: str, crm: str) -> CliRun:
    """What `mqlsync sync|rescore CRM` does after parsing: the flow run, its code and text."""
    from flows.launch import run_flow
    from flows.sync import CrmName, rescore, sync

    runtime.reset()
    flow = {"sync": sync, "rescore": rescore}[command]
    notes: list[str] = []
    code, text = run_flow(flow, notes.append, crm=CrmName(crm))
    return CliRun(code, "\n".join([*notes, text]))


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short backoffs and no waiting between Prefect attempts: the suite tests outcomes."""
    monkeypatch.setenv("MQLSYNC_TASK_RETRY_DELAY_S", "0")
    monkeypatch.setenv("MQLSYNC_BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("MQLSYNC_BACKOFF_MAX_S", "0.05")
    monkeypatch.setenv("MQLSYNC_SETTLE_S", str(SEARCH_LAG_S + 2.5))
    monkeypatch.setenv("MQLSYNC_TIMEOUT_S", "2")


@pytest.fixture
def crm_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: None, fast_retries: None
) -> Iterator[Any]:
    """A fresh sandbox and SQLite store, settings aimed at both."""
    from flows.demo import point_settings_at
    from sandbox.testing import running_sandbox

    for name in SANDBOX_ENV:
        monkeypatch.delenv(name, raising=False)
    with running_sandbox(**STRICT) as sb:
        point_settings_at(sb, f"sqlite:///{tmp_path / 'store.db'}")
        yield sb
    for name in SANDBOX_ENV:
        monkeypatch.delenv(name, raising=False)
    runtime.reset()


def hubspot_tasks_by_contact(sb: Any) -> Counter[str]:
    return Counter(
        link["id"]
        for task in sb.admin.hubspot_tasks()
        for link in task.get("associations", {}).get("contacts", {}).get("results", [])
    )


def hubspot_mqls(sb: Any) -> set[str]:
    """Contacts this service moved to MQL, from the sandbox's own state."""
    portal = sb.sandbox.portal
    return {
        str(c.id)
        for c in portal.contacts.values()
        if portal.contact_value(c, "lifecyclestage") == "marketingqualifiedlead"
    }
