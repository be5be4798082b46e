"""Handoffs survive every failure of a task create, and the run says the truth about it.

Each test runs `mqlsync sync hubspot` with a sandbox fault on task creation, then a clean
run at once (no waiting for a claim lease): the CRM must end as a clean run leaves it,
one task per MQL, and the faulted run must either have finished everything or exited
non-zero saying how many handoffs are pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.reliability.conftest import hubspot_mqls, hubspot_tasks_by_contact, run_cli

TASKS = "/crm/v3/objects/tasks"


@pytest.fixture(scope="module")
def clean_run_result(
    tmp_path_factory: pytest.TempPathFactory, prefect_api: None, pinned_clock: datetime
) -> Any:
    """What one clean sync leaves in a fresh sandbox of the same seed."""
    import os

    from flows import runtime
    from flows.demo import point_settings_at
    from sandbox.testing import running_sandbox
    from tests.reliability.conftest import SANDBOX_ENV, STRICT

    saved = {name: os.environ.get(name) for name in SANDBOX_ENV}
    with running_sandbox(**STRICT) as sb:
        point_settings_at(sb, f"sqlite:///{tmp_path_factory.mktemp('clean') / 'store.db'}")
        run = run_cli("sync", "hubspot")
        result = (run, hubspot_mqls(sb), hubspot_tasks_by_contact(sb))
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    runtime.reset()
    assert result[0].exit_code == 0, result[0].output
    return result


def assert_like_clean_run(sb: Any, clean: Any) -> None:
    _, clean_mqls, clean_tasks = clean
    assert clean_tasks, "the clean run handed nobody off: the test would prove nothing"
    tasks = hubspot_tasks_by_contact(sb)
    assert hubspot_mqls(sb) == clean_mqls
    assert set(tasks) == set(clean_tasks)
    assert max(tasks.values()) == 1, "a contact got two handoff tasks"


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param([{"kind": "reset", "rate": 0.3, "path": TASKS}], id="reset-30%"),
        pytest.param([{"kind": "reset", "count": 50, "path": TASKS}], id="reset-every-create"),
        pytest.param([{"kind": "expired", "rate": 1.0, "path": TASKS}], id="token-rejected"),
        pytest.param([{"kind": "503", "count": 50, "path": TASKS}], id="503-every-create"),
        pytest.param([{"kind": "lost_write", "rate": 0.5, "path": TASKS}], id="answer-lost"),
    ],
)
def test_a_faulted_create_then_a_clean_run_hands_every_mql_off_once(
    crm_env: Any, clean_run_result: Any, fault: list[dict[str, Any]]
) -> None:
    sb = crm_env
    sb.admin.set_faults(fault, seed=7)
    faulted = run_cli("sync", "hubspot")
    sb.admin.clear_faults()
    _, clean_mqls, clean_tasks = clean_run_result
    without_task = set(clean_tasks) - set(hubspot_tasks_by_contact(sb))
    if without_task or hubspot_mqls(sb) != clean_mqls:
        # Not finished: the run must say so, in its exit code and in words.
        assert faulted.exit_code != 0, faulted.output
        assert f"{len(without_task)} handoff" in faulted.output, faulted.output
        assert "next run" in faulted.output
    else:
        assert faulted.exit_code == 0, faulted.output

    clean = run_cli("sync", "hubspot")
    assert clean.exit_code == 0, clean.output
    assert_like_clean_run(sb, clean_run_result)
    if without_task:
        # The repair is in the report: the tasks it created are counted, not dropped.
        assert f"- handoff tasks: {len(without_task)}" in clean.output, clean.output


def test_a_rejected_token_on_create_is_audited_and_counted(crm_env: Any) -> None:
    from sqlalchemy import select

    from flows import runtime
    from store.tables import AuditRow

    sb = crm_env
    sb.admin.set_faults([{"kind": "expired", "rate": 1.0, "path": TASKS}], seed=7)
    faulted = run_cli("sync", "hubspot")
    assert faulted.exit_code != 0
    engine = runtime.store_engine()
    with engine.connect() as connection:
        rows = (
            connection.execute(
                select(AuditRow.outcome).where(AuditRow.action == "create_task")  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
    assert rows and set(rows) == {"failed"}
    assert "handoff(s) pending" in faulted.output


def test_decisions_are_audited_once_when_a_batch_is_retried(crm_env: Any) -> None:
    from sqlalchemy import func, select

    from flows import runtime
    from store.tables import AuditRow

    sb = crm_env
    sb.admin.set_faults([{"kind": "reset", "rate": 0.3, "path": TASKS}], seed=7)
    run_cli("sync", "hubspot")
    engine = runtime.store_engine()
    with engine.connect() as connection:
        promoted = connection.execute(
            select(AuditRow.contact_id, func.count())
            .where(AuditRow.action == "promoted_to_mql")  # type: ignore[arg-type]
            .group_by(AuditRow.contact_id)
        ).all()
    assert promoted
    assert {n for _, n in promoted} == {1}


def test_a_poisoned_task_is_isolated_reported_and_handed_off_once_fixed(
    crm_env: Any, clean_run_result: Any
) -> None:
    """One MQL is merged away in the CRM between its stage move and its task: HubSpot
    refuses the whole task batch for that one input. The batch is split until that task
    stands alone; every other MQL gets its task; the refused one is reported and stays
    pending; once the contact is back, the next run hands it off, once."""
    sb = crm_env
    _, _, clean_tasks = clean_run_result
    portal = sb.sandbox.portal
    poisoned = sorted(clean_tasks)[len(clean_tasks) // 2]
    contact = portal.contacts[int(poisoned)]

    def merge_away_before_the_tasks(method: str, path: str, n: int, phase: str) -> None:
        if phase == "before" and path.endswith("/tasks/batch/create"):
            contact.archived = True  # what a merge does to the contact merged away

    sb.sandbox.on_request = merge_away_before_the_tasks
    try:
        faulted = run_cli("sync", "hubspot")
    finally:
        sb.sandbox.on_request = None
    assert contact.archived, "no task batch was sent: nothing was tested"
    assert faulted.exit_code != 0, faulted.output
    assert "1 handoff(s) pending" in faulted.output, faulted.output
    tasks = hubspot_tasks_by_contact(sb)
    assert set(tasks) == set(clean_tasks) - {poisoned}, "more than the poisoned task failed"
    assert max(tasks.values()) == 1

    contact.archived = False
    repair = run_cli("sync", "hubspot")
    assert repair.exit_code == 0, repair.output
    assert_like_clean_run(sb, clean_run_result)
