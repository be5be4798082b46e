"""A backfill of a past window pulls that window only, from either CRM, over TLS against
the sandbox: the store ends up with exactly the records a pull from the window's start
finds less those a pull from its end finds; and the incremental sync's cursors stay where
the syncs left them, whether they are behind the window or ahead of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from connectors.protocol import CrmConnector
from scoring.records import Crm
from store.tables import ActivityRow, ContactRow, CursorRow
from tests.flows.sandbox_runs import sandbox_on_its_clock


@pytest.fixture(params=["hubspot", "salesforce"])
def crm_and_sandbox(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_api: None,
) -> Iterator[tuple[Crm, Any]]:
    with sandbox_on_its_clock(tmp_path, monkeypatch, contacts=300, seed=3) as sb:
        yield Crm(request.param), sb


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _ids_from(connector: CrmConnector, since: datetime) -> dict[str, set[str]]:
    """What the incremental pulls find from `since` on, by stream."""
    return {
        "contacts": {c.crm_id for p in connector.pull_contacts(since) for c in p.records},
        "activities": {a.crm_id for p in connector.pull_activities(since) for a in p.records},
    }


def _stored(engine: Engine, crm: Crm) -> dict[str, set[str]]:
    with engine.connect() as connection:
        contacts = connection.execute(
            select(col(ContactRow.crm_id)).where(col(ContactRow.crm) == crm.value)
        ).scalars()
        activities = connection.execute(
            select(col(ActivityRow.crm_id)).where(col(ActivityRow.crm) == crm.value)
        ).scalars()
        return {"contacts": set(contacts), "activities": set(activities)}


def _cursor_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(select(CursorRow).order_by(CursorRow.crm, CursorRow.object))
        return [tuple(row) for row in rows]


def test_a_backfill_of_a_past_window_pulls_only_it_and_keeps_the_cursors(
    crm_and_sandbox: tuple[Crm, Any],
) -> None:
    from flows import runtime
    from flows.sync import CrmName, backfill
    from store.cursors import advance_cursor

    crm, sb = crm_and_sandbox
    as_of = datetime.fromisoformat(sb.admin.info()["as_of"].replace("Z", "+00:00"))
    # September 2026, both days included; the data goes on for a month after it.
    end = as_of.date() - timedelta(days=32)
    start = end - timedelta(days=29)
    since, until = _midnight(start), _midnight(end + timedelta(days=1))
    connector = runtime.connector_for(crm)
    overlap = timedelta(minutes=connector._config.overlap_minutes)  # type: ignore[attr-defined]
    from_start = _ids_from(connector, since)
    from_end = _ids_from(connector, until + overlap)
    window = {stream: from_start[stream] - from_end[stream] for stream in from_start}
    assert all(window.values()) and all(from_end.values()), "nothing on one side: proves nothing"

    # The schedule's cursors: some behind the window (a bounded pull's high-water mark
    # would move them forward), some ahead of it (it would pull them back).
    engine = runtime.store_engine()
    stored_at = as_of - timedelta(hours=1)
    source = "Task" if crm is Crm.SALESFORCE else "meetings"
    for obj, value in {
        "contacts": since - timedelta(days=10),
        "activities": until + timedelta(days=10),
        "deletions": since - timedelta(days=1),
        f"activities:{source}": since - timedelta(days=5),
    }.items():
        advance_cursor(engine, crm.value, obj, value, stored_at)
    cursors = _cursor_rows(engine)

    state = backfill(crm=CrmName(crm.value), start=start, end=end, dry_run=False, return_state=True)
    assert state.is_completed(), state.message

    stored = _stored(engine, crm)
    assert stored == window
    assert stored["activities"] < from_start["activities"]  # the old pull read past the end
    assert _cursor_rows(engine) == cursors


def test_the_run_form_says_the_backfill_pulls_the_window_only() -> None:
    from tests.flows.test_flow_parameters import form_problems, form_schema

    schema = form_schema("flows/sync.py:backfill")
    properties = schema["properties"]
    assert "within the window" in properties["crm"]["description"]
    assert "nothing from before or after it" in properties["crm"]["description"]
    assert "a few minutes earlier" in properties["start"]["description"]
    assert "nothing that changed after it is pulled" in properties["end"]["description"]
    assert form_problems(schema) == []
