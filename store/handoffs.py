"""Handoff claims: a unique key claimed before a task is created, so it is created once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from scoring.writes import HandoffTask
from store.tables import HandoffRow


def claim(engine: Engine, task: HandoffTask, by: str, now: datetime) -> bool:
    """Claim the task's key; False when a run already holds it (the unique key decides)."""
    try:
        with engine.begin() as connection:
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
    except IntegrityError:
        return False
    return True


def record_task(engine: Engine, key: str, task_id: str, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(HandoffRow)
            .where(HandoffRow.key == key)  # type: ignore[arg-type]
            .values(task_id=task_id, recorded_at=now)
        )


def release(engine: Engine, key: str) -> None:
    """Give a claim up after the CRM refused the task for good, so a later run may retry."""
    with engine.begin() as connection:
        connection.execute(
            HandoffRow.__table__.delete().where(  # type: ignore[attr-defined]
                HandoffRow.key == key,
                HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
            )
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
