"""The run report reads the store for its new MQLs at once, not once per MQL: the batched
reads answer as the per-contact ones do, and the statements do not grow with the MQLs
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from flows.explain import TaskLinks
from flows.run_tables import mql_rows, mqls_from_store
from scoring.records import Crm
from store import handoffs, reports, scores
from tests.store.test_batch import watched
from tests.store.test_store import NOW, scored, task


def handed_off(engine: Engine, count: int) -> list[str]:
    """`count` scored contacts; every third with one task, every fifth with two
    handoffs (the second claimed later, its task recorded), the rest with none."""
    ids = [str(100 + i) for i in range(count)]
    scored(engine, *ids)
    for index, crm_id in enumerate(ids):
        if index % 3 == 0:
            assert handoffs.claim_transition(engine, task(crm_id, 1), 0, "run-a", NOW)
            handoffs.record_task(engine, task(crm_id, 1).key, f"T{crm_id}-1", NOW)
        if index % 5 == 0:
            seen = 1 if index % 3 == 0 else 0
            later = NOW + timedelta(hours=1)
            assert handoffs.claim_transition(engine, task(crm_id, 2), seen, "run-b", later)
            if index % 2 == 0:
                handoffs.record_task(engine, task(crm_id, 2).key, f"T{crm_id}-2", later)
    return ids


def test_batched_reads_answer_as_the_per_contact_ones(engine: Engine) -> None:
    ids = handed_off(engine, 40)
    asked = [*ids, "999"]  # one the store does not know
    stored = scores.scores_of(engine, "hubspot", asked)
    assert stored == {
        crm_id: scores.score_of(engine, "hubspot", crm_id)
        for crm_id in asked
        if scores.score_of(engine, "hubspot", crm_id) is not None
    }
    assert set(stored) == set(ids)
    latest = reports.last_task_ids(engine, "hubspot", asked)
    expected = {}
    for crm_id in asked:
        found = reports.handoffs_of(engine, "hubspot", crm_id)
        if found:
            expected[crm_id] = found[-1].task_id
    assert latest == expected
    # The cases are all there: a task, a later claim with none yet, a later one with one.
    assert latest["100"] == "T100-2" and latest["103"] == "T103-1" and latest["105"] is None
    assert "101" not in latest


def report_statements(engine: Engine, ids: list[str]) -> int:
    with watched(engine) as seen:
        mqls = mqls_from_store(engine, Crm.HUBSPOT, ids)
        rows = mql_rows(engine, Crm.HUBSPOT, mqls, [], TaskLinks())
    assert len(rows) == len(ids)
    return len(seen.statements)


def test_the_report_reads_do_not_grow_with_the_mqls(engine: Engine) -> None:
    ids = handed_off(engine, 120)
    few, many = report_statements(engine, ids[:12]), report_statements(engine, ids)
    assert few == many, (few, many)
