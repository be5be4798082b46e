"""Finishing what a run left: claimed handoffs nobody is finishing, stage then task.

A run that dies (or gives a claim back) between claiming a handoff and recording its
task leaves a claim without a task. The next run takes such claims over, moves the stage
where the store does not show it written, looks the task up by its key (trusting a miss
only once the CRM's search has caught up) and creates only what is missing.
"""

import time
from datetime import datetime, timedelta

from sqlalchemy import Engine

from connectors.errors import ConnectorError
from connectors.protocol import CrmConnector
from flows.apply_report import ApplyReport, Failure, TaskCreated
from flows.claims import CLAIM_LEASE, owner_gone
from flows.handoff_writes import create_claimed, write_event
from scoring.lifecycle import (
    PROMOTABLE,
    LeadStatusKey,
)
from scoring.records import LifecycleStage
from scoring.writes import (
    HandoffTask,
    OutcomeStatus,
    StageChange,
    WrittenStateChange,
)
from store import audit, handoffs, mirror, scores
from store.audit import AuditEvent, AuditKind


def finish_interrupted_handoffs(
    engine: Engine,
    connector: CrmConnector,
    now: datetime,
    flow_run_id: str | None,
    worker: str,
    lease: timedelta = CLAIM_LEASE,
    settle_s: float = 0.0,
) -> ApplyReport:
    """Finish transitions nobody is finishing: stage, then task, once each.

    Those are claims given back open, claims of a process on this machine that is gone,
    and claims older than the lease. The stage is moved again unless the store shows it
    written (a forward move to MQL repeats harmlessly); the task is looked up by its key
    before it is created.
    """
    stale = handoffs.take_over_stale(
        engine, connector.crm.value, worker, now, now - lease, owner_gone=owner_gone
    )
    if not stale:
        return ApplyReport()
    try:
        return _finish_taken(engine, connector, stale, now, flow_run_id, settle_s)
    except Exception:
        # Whatever raised (a spent budget, a refused token), the claims taken over go back
        # open: a run in this same process must not find them held by a live owner.
        handoffs.open_claims(engine, [task.key for task in stale])
        raise


def _finish_taken(
    engine: Engine,
    connector: CrmConnector,
    stale: list[HandoffTask],
    now: datetime,
    flow_run_id: str | None,
    settle_s: float,
) -> ApplyReport:
    crm = connector.crm.value
    ids = [task.contact_id for task in stale]
    states = scores.written_states(engine, crm, ids)
    stages = {c.crm_id: c.lifecycle_stage for c in mirror.load_contacts(engine, connector.crm, ids)}
    events: list[AuditEvent] = []
    to_move = [
        task
        for task in stale
        if (states.get(task.contact_id) or scores.WrittenState()).stage != "mql"
        and stages.get(task.contact_id) in PROMOTABLE
    ]
    changes = [
        StageChange(
            crm=connector.crm,
            crm_id=task.contact_id,
            from_stage=stages.get(task.contact_id),
            to_stage=LifecycleStage.MQL,
            lead_status=LeadStatusKey.MQL.value,
        )
        for task in to_move
    ]
    unmoved: set[str] = set()
    for task, outcome in zip(
        to_move, connector.change_stages(changes) if changes else [], strict=True
    ):
        events.append(write_event(outcome, "change_stage", {"to": "mql", "key": task.key}))
        if outcome.status is OutcomeStatus.OK:
            moved = WrittenStateChange(
                stage=LifecycleStage.MQL, stage_written_at=now, clear_stage_intent=True
            )
            scores.record_written(engine, crm, task.contact_id, moved)
            mirror.set_stage(engine, connector.crm, task.contact_id, "mql")
        else:
            unmoved.add(task.contact_id)
    ready = [task for task in stale if task.contact_id not in unmoved]
    try:
        found = _look_up_settled(connector, [task.key for task in ready], settle_s)
    except ConnectorError as exc:
        # Without the lookup no create may be sent (one may have landed): give the claims
        # back open and say so; the next attempt looks again.
        events += [
            AuditEvent(
                crm=crm,
                contact_id=task.contact_id,
                kind=AuditKind.WRITE,
                action="find_task",
                outcome=OutcomeStatus.FAILED.value,
                detail={"key": task.key},
                message=exc.message,
            )
            for task in ready
        ]
        audit.record(engine, events, flow_run_id, now)
        handoffs.open_claims(engine, [task.key for task in stale])
        return ApplyReport(
            failures=[Failure(task.contact_id, "task", exc.message) for task in ready],
            pending_handoffs=[task.contact_id for task in stale],
        )
    for task in ready:
        task_id = found.get(task.key)
        if task_id is None:
            continue
        handoffs.record_task(engine, task.key, task_id, now)
        events.append(
            AuditEvent(
                crm=crm,
                contact_id=task.contact_id,
                kind=AuditKind.WRITE,
                action="create_task",
                outcome=OutcomeStatus.ALREADY_DONE.value,
                detail={"key": task.key, "task_id": task_id},
                message="found in the CRM after an interrupted run",
            )
        )
    audit.record(engine, events, flow_run_id, now)
    missing = [task for task in ready if task.key not in found]
    report = create_claimed(engine, connector, missing, now, flow_run_id)
    report.tasks_created += [
        TaskCreated(task.contact_id, found[task.key]) for task in ready if task.key in found
    ]
    done = {contact for contact, _ in report.tasks_created}
    left = [task for task in stale if task.contact_id not in done]
    # Given back open: the next run (or the end of this one) tries again at once.
    handoffs.open_claims(engine, [task.key for task in left])
    report.pending_handoffs += [task.contact_id for task in left]
    report.failures += [
        Failure(task.contact_id, "stage", "stage move failed; handoff waits")
        for task in stale
        if task.contact_id in unmoved
    ]
    return report


def _look_up_settled(connector: CrmConnector, keys: list[str], settle_s: float) -> dict[str, str]:
    """Tasks found by key, a miss trusted only after the CRM's search has caught up.

    A claim taken over may be one whose create landed moments ago, in a run that died or
    gave it back; the CRM's search sees a new task only after its index lag, so a key not
    found at once is looked up again `settle_s` later before anyone may create it.
    """
    if not keys:
        return {}
    found = connector.find_tasks(keys)
    missing = [key for key in keys if key not in found]
    if missing and settle_s > 0:
        time.sleep(settle_s)
        found.update(connector.find_tasks(missing))
    return found
