"""A scoring batch's store work: read it in one connection, record it in one transaction.

`load_batch` reads what the lifecycle policy needs about each contact: the contact, its
activities, what this service last wrote and whether a handoff claim is pending.
`record_batch` keeps what assessing the batch produced: the scores (current and history),
the written-state changes and the audit rows, all or nothing. Claiming and releasing a
handoff stay separate atomic steps (`store.handoffs`): they order effects in the CRM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from scoring.assess import Assessment, WrittenSnapshot
from scoring.records import Activity, Contact, Crm, LifecycleStage
from scoring.writes import StageChange
from store import audit, handoffs, mirror, scores
from store.audit import AuditEvent, AuditKind


@dataclass(frozen=True)
class Batch:
    """What the store holds about a batch of contacts, by contact id."""

    contacts: list[Contact]
    activities: dict[str, list[Activity]] = field(default_factory=dict)
    written: dict[str, WrittenSnapshot] = field(default_factory=dict)
    claims_pending: set[str] = field(default_factory=set)


def load_batch(engine: Engine, crm: Crm, ids: Sequence[str]) -> Batch:
    """The live contacts among `ids` and their state, read in one connection."""
    with engine.connect() as connection:
        contacts = mirror.load_contacts(connection, crm, ids)
        live = [c.crm_id for c in contacts]
        activities = mirror.load_activities(connection, crm, live)
        states = scores.written_states(connection, crm.value, live)
        pending = handoffs.pending_contacts(connection, crm.value, live)
    return Batch(
        contacts=contacts,
        activities=dict(activities),
        written={crm_id: _snapshot(state) for crm_id, state in states.items()},
        claims_pending=pending,
    )


def record_batch(
    engine: Engine,
    crm: Crm,
    assessed: Sequence[Assessment],
    flow_run_id: str | None,
    now: datetime,
) -> None:
    """Scores, written-state changes and audit rows of a batch, in one transaction.

    The scores come first: a contact scored for the first time has its row by the time
    its bookkeeping (say, the moment it was recycled) is recorded.
    """
    events = [
        AuditEvent(
            crm=crm.value,
            contact_id=a.contact.crm_id,
            kind=AuditKind(event.kind.value),
            action=event.action,
            detail=dict(event.detail),
            message=event.message,
        )
        for a in assessed
        for event in a.events
    ]
    with engine.begin() as connection:
        scores.save_scores(connection, [a.result for a in assessed], flow_run_id)
        for a in assessed:
            scores.record_written(connection, crm.value, a.contact.crm_id, a.change)
        audit.record(connection, events, flow_run_id, now)


def _snapshot(state: scores.WrittenState) -> WrittenSnapshot:
    return WrittenSnapshot(
        written=state.written,
        stage=LifecycleStage(state.stage) if state.stage else None,
        stage_written_at=state.stage_written_at,
        mql_transitions=state.mql_transitions,
        recycled_at=state.recycled_at,
        stage_intent=(
            StageChange.model_validate(state.stage_intent)
            if state.stage_intent is not None
            else None
        ),
    )
