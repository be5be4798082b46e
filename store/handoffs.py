"""Handoff claims: a unique key claimed before a task is created, so it is created once.

A claim is made together with counting the MQL transition, before the stage moves; a
claim without a task id is a transition in progress, finished by `take_over_stale` after
its lease if its run died.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from scoring.writes import HandoffTask
from store.tables import HandoffRow, ScoreRow


class _Taken(Exception):
    """Another run counted this transition first: undo this transaction."""


def claim_transition(engine: Engine, task: HandoffTask, seen: int, by: str, now: datetime) -> bool:
    """Count the contact's next MQL transition and claim its handoff key, atomically.

    `seen` is the transition count the plan was made from. False (and nothing changed)
    when another run counted a transition since, or already holds the key: of two runs
    that decided to promote the same contact, exactly one goes on.
    """
    try:
        with engine.begin() as connection:
            counted = connection.execute(
                update(ScoreRow)
                .where(
                    ScoreRow.crm == task.crm.value,  # type: ignore[arg-type]
                    ScoreRow.crm_id == task.contact_id,  # type: ignore[arg-type]
                    ScoreRow.mql_transitions == seen,  # type: ignore[arg-type]
                )
                .values(mql_transitions=seen + 1)
            ).rowcount
            if counted != 1:
                raise _Taken
            connection.execute(
                insert(HandoffRow).values(
                    key=task.key,
                    crm=task.crm.value,
                    contact_id=task.contact_id,
                    claimed_at=now,
                    claimed_by=by,
                    payload=task.model_dump(mode="json"),
                )
            )
    except (_Taken, IntegrityError):
        return False
    return True


def release_transition(engine: Engine, task: HandoffTask, seen: int) -> None:
    """Undo `claim_transition` after the stage move failed, so the next run starts over."""
    with engine.begin() as connection:
        connection.execute(
            delete(HandoffRow).where(
                HandoffRow.key == task.key,  # type: ignore[arg-type]
                HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
            )
        )
        connection.execute(
            update(ScoreRow)
            .where(
                ScoreRow.crm == task.crm.value,  # type: ignore[arg-type]
                ScoreRow.crm_id == task.contact_id,  # type: ignore[arg-type]
                ScoreRow.mql_transitions == seen + 1,  # type: ignore[arg-type]
            )
            .values(mql_transitions=seen)
        )


def pending_contacts(engine: Engine, crm: str, contact_ids: Sequence[str]) -> set[str]:
    """Contacts with a claimed handoff that has no task yet: a transition in progress."""
    found: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(contact_ids), 900):
            found.update(
                connection.execute(
                    select(HandoffRow.contact_id).where(
                        HandoffRow.crm == crm,
                        HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
                        HandoffRow.contact_id.in_(contact_ids[start : start + 900]),  # type: ignore[attr-defined]
                    )
                ).scalars()
            )
    return found


def record_task(engine: Engine, key: str, task_id: str, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(HandoffRow)
            .where(HandoffRow.key == key)  # type: ignore[arg-type]
            .values(task_id=task_id, recorded_at=now)
        )


def take_over_stale(
    engine: Engine, crm: str, by: str, now: datetime, cutoff: datetime
) -> list[HandoffTask]:
    """Take over claims made before `cutoff` that have no task id, one atomic update each.

    Two runs finishing the same stale claim race on the update; only one sees its row
    change, so only one goes on to look the task up and create it.
    """
    taken: list[HandoffTask] = []
    with engine.connect() as connection:
        rows = connection.execute(
            select(HandoffRow.key, HandoffRow.payload).where(
                HandoffRow.crm == crm,
                HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
                HandoffRow.claimed_at < cutoff,  # type: ignore[operator]
            )
        ).all()
    for key, payload in rows:
        with engine.begin() as connection:
            changed = connection.execute(
                update(HandoffRow)
                .where(
                    HandoffRow.key == key,  # type: ignore[arg-type]
                    HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
                    HandoffRow.claimed_at < cutoff,  # type: ignore[operator]
                )
                .values(claimed_by=by, claimed_at=now)
            ).rowcount
        if changed == 1:
            taken.append(HandoffTask.model_validate(payload))
    return taken


def task_of(engine: Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            select(HandoffRow.task_id).where(HandoffRow.key == key)  # type: ignore[arg-type]
        ).scalar_one_or_none()
