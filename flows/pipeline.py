"""The sync's steps as plain functions: score and plan, apply, finish interrupted handoffs.

Prefect tasks wrap these; keeping them plain lets tests and two concurrent processes run
them directly. Rules live in `scoring/`, SQL in `store/`, CRM calls behind the connector.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Engine

from connectors.common import is_backward
from connectors.errors import ConnectorError
from connectors.protocol import CrmConnector
from scoring.assess import Assessment, Snapshot, WrittenSnapshot, assess
from scoring.engine import compile_model
from scoring.lifecycle import (
    PROMOTABLE,
    LeadStatusKey,
    Transition,
)
from scoring.model import ScoringModel
from scoring.records import Crm, LifecycleStage
from scoring.writes import (
    HandoffTask,
    OutcomeStatus,
    PropertyUpdate,
    StageChange,
    WriteOutcome,
    WrittenStateChange,
)
from store import audit, batch, handoffs, mirror, scores
from store.audit import AuditEvent, AuditKind

# A claim younger than this belongs to a run that may still be creating its task; only an
# older one is taken over and finished (the CRM is asked first).
CLAIM_LEASE = timedelta(minutes=15)


Decided = Assessment
"""One contact's new score, lifecycle decision and write plan (`scoring.assess`)."""


class StageMove(NamedTuple):
    contact_id: str
    from_stage: str  # "" where the contact had none
    to_stage: str


class TaskCreated(NamedTuple):
    contact_id: str
    task_id: str  # "(planned) KEY" in a dry run


class Failure(NamedTuple):
    contact_id: str
    action: str  # update | stage | task
    message: str


@dataclass
class ApplyReport:
    """What a run did, for the flow's artifact and the demo's table."""

    updated: int = 0
    stage_moves: list[StageMove] = field(default_factory=list)
    tasks_created: list[TaskCreated] = field(default_factory=list)
    new_mqls: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped_claims: int = 0
    skipped_writes: list[str] = field(default_factory=list)  # another run was writing them
    pending_handoffs: list[str] = field(default_factory=list)  # contacts left without a task

    def merge(self, other: ApplyReport) -> None:
        self.pending_handoffs += other.pending_handoffs
        self.updated += other.updated
        self.stage_moves += other.stage_moves
        self.tasks_created += other.tasks_created
        self.new_mqls += other.new_mqls
        self.failures += other.failures
        self.skipped_claims += other.skipped_claims
        self.skipped_writes += other.skipped_writes


def score_and_plan(
    engine: Engine,
    model: ScoringModel,
    crm: Crm,
    contact_ids: Sequence[str],
    status_key: Callable[[str | None], str | None],
    now: datetime,
    flow_run_id: str | None,
    *,
    record: bool = True,
) -> list[Decided]:
    """Score these contacts from the store, decide their stage and plan their writes.

    One read of the store, the policy (`scoring.assess`), one transaction to record it.
    `status_key` gives a CRM lead status its canonical key (the mapping's). With
    `record=False` (a dry run) nothing is saved: no scores, no audit rows.
    """
    rows = batch.load_batch(engine, crm, contact_ids)
    compiled = compile_model(model)
    decided = [
        assess(
            model,
            compiled,
            Snapshot(
                contact=contact,
                activities=rows.activities.get(contact.crm_id, []),
                lead_status_key=status_key(contact.lead_status),
                written=rows.written.get(contact.crm_id, WrittenSnapshot()),
                claim_pending=contact.crm_id in rows.claims_pending,
            ),
            now,
        )
        for contact in rows.contacts
    ]
    if record:
        batch.record_batch(engine, crm, decided, flow_run_id, now)
    return decided


def planned_report(decided: Sequence[Decided]) -> ApplyReport:
    """What applying would do, for a dry run's artifact."""
    report = ApplyReport()
    for item in decided:
        plan = item.plan
        if plan.update is not None:
            report.updated += 1
        if plan.stage is not None:
            report.stage_moves.append(
                StageMove(plan.crm_id, plan.stage.from_stage or "", plan.stage.to_stage.value)
            )
        if plan.handoff is not None:
            report.new_mqls.append(plan.crm_id)
            report.tasks_created.append(TaskCreated(plan.crm_id, f"(planned) {plan.handoff.key}"))
    return report


def apply_plans(
    engine: Engine,
    connector: CrmConnector,
    decided: Sequence[Decided],
    now: datetime,
    flow_run_id: str | None,
    worker: str,
) -> ApplyReport:
    """Apply planned writes in batches and record every outcome.

    A promotion first counts the transition and claims its handoff key (one atomic
    step, so of two racing runs one goes on), then moves the stage, then creates the
    task. A failed stage move gives the transition back. A claim this call cannot
    finish, whether its create failed or something raised on the way, is given back
    open (`handoffs.open_claims`), so that the end of this run or the next run finishes
    it without waiting for a lease.
    """
    report = ApplyReport()
    crm = connector.crm.value
    events: list[AuditEvent] = []
    held: dict[str, HandoffTask] = {}  # claims this call made and has not finished
    try:
        _apply(engine, connector, decided, now, flow_run_id, worker, report, events, held)
    except Exception:
        # Not on a process exit: a dying process's claims are found by `owner_gone`.
        audit.record(engine, events, flow_run_id, now)
        handoffs.open_claims(engine, sorted(held))
        raise
    handoffs.open_claims(engine, sorted(held))
    failed = {contact for contact, what, _ in report.failures if what in ("update", "stage")}
    # A contact another run was writing is that run's to mark.
    done = {d.contact.crm_id for d in decided} - set(report.skipped_writes)
    scores.mark_needs_write(engine, crm, failed, done)
    report.pending_handoffs += [task.contact_id for task in held.values()]
    return report


def _apply(
    engine: Engine,
    connector: CrmConnector,
    decided: Sequence[Decided],
    now: datetime,
    flow_run_id: str | None,
    worker: str,
    report: ApplyReport,
    events: list[AuditEvent],
    held: dict[str, HandoffTask],
) -> None:
    crm = connector.crm.value
    planned = [d.plan.update for d in decided if d.plan.update is not None]
    # A stage move that hands nothing off (a recycle) goes with the contact's write claim,
    # held until the move is recorded; a handoff's move goes with its handoff claim.
    solo = {d.plan.stage.crm_id for d in decided if d.plan.stage and not d.plan.handoff}
    ids = sorted({u.crm_id for u in planned} | solo)
    mine = (
        scores.claim_writes(engine, crm, ids, worker, now, now - CLAIM_LEASE, owner_gone)
        if ids
        else set()
    )
    try:
        claimed = _apply_claimed(
            engine, connector, decided, now, worker, report, events, held, mine
        )
    finally:
        scores.release_writes(engine, crm, sorted(mine), worker)
    audit.record(engine, events, flow_run_id, now)
    events.clear()
    created = _create_claimed(engine, connector, claimed, now, flow_run_id)
    for contact_id, _ in created.tasks_created:
        for key in [k for k, t in held.items() if t.contact_id == contact_id]:
            held.pop(key)
    report.merge(created)


def _apply_claimed(
    engine: Engine,
    connector: CrmConnector,
    decided: Sequence[Decided],
    now: datetime,
    worker: str,
    report: ApplyReport,
    events: list[AuditEvent],
    held: dict[str, HandoffTask],
    mine: set[str],
) -> list[HandoffTask]:
    """Property writes and stage moves under the write claims `mine`; returns the claimed
    handoffs whose stage is now right, for their tasks."""
    crm = connector.crm.value
    planned = [d.plan.update for d in decided if d.plan.update is not None]
    updates = _still_unwritten(engine, crm, [u for u in planned if u.crm_id in mine])
    report.skipped_writes += [u.crm_id for u in planned if u.crm_id not in mine]
    update_outcomes = connector.update_properties(updates) if updates else []
    for update, outcome in zip(updates, update_outcomes, strict=True):
        events.append(_write_event(outcome, "update_properties", update.values))
        if outcome.status is OutcomeStatus.OK:
            scores.record_written(
                engine, crm, update.crm_id, WrittenStateChange(values=update.values)
            )
            report.updated += 1
        else:
            report.failures.append(Failure(update.crm_id, "update", outcome.message or ""))

    solo_states = scores.written_states(
        engine,
        crm,
        sorted(
            d.plan.stage.crm_id for d in decided if d.plan.stage is not None and _solo_move(d, mine)
        ),
    )
    moving: list[Decided] = []
    for item in decided:
        task = item.plan.handoff
        change = item.plan.stage
        if change is not None and task is None:
            if change.crm_id not in mine:
                if change.crm_id not in report.skipped_writes:  # its update may be there
                    report.skipped_writes.append(change.crm_id)  # another run is moving it
                continue
            state = solo_states.get(change.crm_id)
            if state and state.stage == change.to_stage.value and not state.stage_intent:
                continue  # moved by another run since this batch was planned
        if task is not None:
            if not handoffs.claim_transition(engine, task, item.mql_transitions, worker, now):
                report.skipped_claims += 1
                events.append(
                    AuditEvent(
                        crm=crm,
                        contact_id=task.contact_id,
                        kind=AuditKind.CLAIM,
                        action="handoff_claim_held",
                        outcome="skipped",
                        detail={"key": task.key},
                        message="another run is handing this MQL off",
                    )
                )
                continue
            held[task.key] = task
        if item.plan.stage is not None:
            moving.append(item)

    changes = [d.plan.stage for d in moving if d.plan.stage is not None]
    # Recorded before the first request: a move of two requests (HubSpot's backward
    # clear-then-set) cut off between them is finished by whoever comes next.
    # The owner goes with it, so that a concurrent run's report leaves it to this one.
    scores.record_stage_intents(
        engine,
        crm,
        {
            c.crm_id: {**c.model_dump(mode="json"), "by": worker, "by_at": now.isoformat()}
            for c in changes
        },
    )
    stage_outcomes = connector.change_stages(changes) if changes else []
    claimed: list[HandoffTask] = []
    for item, outcome in zip(moving, stage_outcomes, strict=True):
        change, task = item.plan.stage, item.plan.handoff
        assert change is not None
        events.append(_write_event(outcome, "change_stage", {"to": change.to_stage.value}))
        if outcome.status is not OutcomeStatus.OK:
            report.failures.append(Failure(change.crm_id, "stage", outcome.message or ""))
            if outcome.status is OutcomeStatus.UNCONFIRMED:
                # Accepted, not read back: it may have landed. The intent stays for the next
                # run to resume, and the claim stays held (given back open below), so that
                # whoever finishes it moves the stage again and creates the task.
                continue
            if not is_backward(change.from_stage, change.to_stage):
                # One request that failed changed nothing; only a cut two-step move
                # leaves something to finish. The next decision is made afresh.
                scores.record_written(
                    engine, crm, change.crm_id, WrittenStateChange(clear_stage_intent=True)
                )
            if task is not None:
                handoffs.release_transition(engine, task, item.mql_transitions)
                held.pop(task.key, None)
            continue
        report.stage_moves.append(
            StageMove(change.crm_id, change.from_stage or "", change.to_stage.value)
        )
        recycled = item.decision.transition is Transition.RECYCLED
        moved = WrittenStateChange(
            stage=change.to_stage,
            stage_written_at=now,
            recycled_at=now if recycled else None,
            clear_stage_intent=True,
        )
        scores.record_written(engine, crm, change.crm_id, moved)
        mirror.set_stage(engine, connector.crm, change.crm_id, change.to_stage.value)
        if task is not None:
            claimed.append(task)
            report.new_mqls.append(change.crm_id)
    # A handoff planned without a stage move (the stage was already right) still needs
    # its task.
    claimed += [
        d.plan.handoff
        for d in decided
        if d.plan.handoff is not None and d.plan.stage is None and d.plan.handoff.key in held
    ]
    return claimed


def _solo_move(item: Decided, mine: set[str]) -> bool:
    """A stage move with no handoff, of a contact whose write claim this run holds."""
    return (
        item.plan.stage is not None and item.plan.handoff is None and item.plan.stage.crm_id in mine
    )


def _still_unwritten(
    engine: Engine, crm: str, updates: list[PropertyUpdate]
) -> list[PropertyUpdate]:
    """The updates' values not already written, read again under the write claim.

    A concurrent run may have written the same values since this batch was planned.
    """
    if not updates:
        return []
    states = scores.written_states(engine, crm, [u.crm_id for u in updates])
    fresh: list[PropertyUpdate] = []
    for update in updates:
        written = (states.get(update.crm_id) or scores.WrittenState()).written
        values = {k: v for k, v in update.values.items() if written.get(k) != v}
        if values:
            fresh.append(update.model_copy(update={"values": values}))
    return fresh


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
        events.append(_write_event(outcome, "change_stage", {"to": "mql", "key": task.key}))
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
    report = _create_claimed(engine, connector, missing, now, flow_run_id)
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


def held_elsewhere(me: str, now: datetime) -> Callable[[str | None, datetime | None], bool]:
    """Whether a claim (owner, since) is another live run's to finish, seen from `me`.

    A claim of nobody, of `me`, of a process known gone, or older than the lease is
    work left undone; any other is in hand, and the run holding it reports on it.
    """

    def held(owner: str | None, since: datetime | None) -> bool:
        return (
            owner is not None
            and owner != me
            and since is not None
            and since >= now - CLAIM_LEASE
            and not owner_gone(owner)
        )

    return held


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


def owner_gone(owner: str) -> bool:
    """True when a claim's owner ("host:pid") is a process of this machine that has ended.

    An owner on another machine cannot be checked from here: its claims wait for the
    lease. A pid reused by another process reads as alive, so the error is to wait.
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _create_claimed(
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
        events.append(_write_event(outcome, "create_task", {"key": task.key}, task.contact_id))
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


def _write_event(
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
