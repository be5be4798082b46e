"""The handoff's last step, shared by a run and by whoever finishes a dead run's work:
create the claimed tasks, record each task id, and audit every write's outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine

from connectors.protocol import CrmConnector
from flows.apply_report import ApplyReport, Failure, TaskCreated
from scoring.writes import HandoffTask, OutcomeStatus, WriteOutcome
from store import audit, handoffs
from store.audit import AuditEvent, AuditKind


def create_claimed(
    engine: Engine,
    connector: CrmConnector,
    tasks: list[HandoffTask],
    now: datetime,
    flow_run_id: str | None,
) -> ApplyReport:
    report = ApplyReport()
    if not tasks:
        return report
    events = []
    for task, outcome in zip(tasks, connector.create_tasks(tasks), strict=True):
        events.append(write_event(outcome, "create_task", {"key": task.key}, task.contact_id))
        if (
            outcome.status in (OutcomeStatus.OK, OutcomeStatus.ALREADY_DONE)
            and outcome.crm_object_id
        ):
            handoffs.record_task(engine, task.key, outcome.crm_object_id, now)
            report.tasks_created.append(TaskCreated(task.contact_id, outcome.crm_object_id))
        else:
            # The claim stays: a later run looks the task up first, then creates it.
            report.failures.append(Failure(task.contact_id, "task", outcome.message or ""))
    audit.record(engine, events, flow_run_id, now)
    return report


def write_event(
    outcome: WriteOutcome, action: str, detail: Mapping[str, object], contact_id: str | None = None
) -> AuditEvent:
    return AuditEvent(
        crm=outcome.crm.value,
        contact_id=contact_id or outcome.target,
        kind=AuditKind.WRITE,
        action=action,
        outcome=outcome.status.value,
        detail={**detail, "attempts": outcome.attempts, "crm_object_id": outcome.crm_object_id},
        message=outcome.message,
    )
