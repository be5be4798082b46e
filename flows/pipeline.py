"""A batch's way through the sync: load → assess → record, then claim → write → record.

`score_and_plan` reads the batch from the store in one connection (`store.batch`), runs
the lifecycle policy on each contact (`scoring.assess`, pure) and records scores, state
and audit rows in one transaction. `apply_plans` carries the plans out: it claims what it
will write (a contact's write claim, a handoff's claim), sends the writes through the
connector and records each outcome. Finishing what a dead run left is `flows.recovery`;
who holds a claim, `flows.claims`; the handoff's task creates, `flows.handoff_writes`.

Prefect tasks wrap these; keeping them plain lets tests and two concurrent processes run
them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine

from connectors.common import is_backward
from connectors.protocol import CrmConnector
from flows.apply_report import ApplyReport, Failure, StageMove
from flows.claims import CLAIM_LEASE, owner_gone
from flows.handoff_writes import create_claimed, write_event
from scoring.assess import Assessment, Snapshot, WrittenSnapshot, assess
from scoring.engine import compile_model
from scoring.lifecycle import (
    Transition,
)
from scoring.model import ScoringModel
from scoring.records import Crm
from scoring.writes import (
    HandoffTask,
    OutcomeStatus,
    PropertyUpdate,
    WrittenStateChange,
)
from store import audit, batch, handoffs, mirror, scores
from store.audit import AuditEvent, AuditKind

Decided = Assessment
"""One contact's new score, lifecycle decision and write plan (`scoring.assess`)."""


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
    created = create_claimed(engine, connector, claimed, now, flow_run_id)
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
        events.append(write_event(outcome, "update_properties", update.values))
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
        events.append(write_event(outcome, "change_stage", {"to": change.to_stage.value}))
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
