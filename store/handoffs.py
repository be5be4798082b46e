"""Handoff claims: a unique key claimed before a task is created, so it is created once.

A claim is made together with counting the MQL transition, before the stage moves; a
claim without a task id is a transition in progress, finished by `take_over_stale` after
its lease if its run died.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from scoring.writes import HandoffTask
from store.chunking import in_chunks
from store.db import Bind, reading
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
                    col(ScoreRow.crm) == task.crm.value,
                    col(ScoreRow.crm_id) == task.contact_id,
                    col(ScoreRow.mql_transitions) == seen,
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
                col(HandoffRow.key) == task.key,
                col(HandoffRow.task_id).is_(None),
            )
        )
        connection.execute(
            update(ScoreRow)
            .where(
                col(ScoreRow.crm) == task.crm.value,
                col(ScoreRow.crm_id) == task.contact_id,
                col(ScoreRow.mql_transitions) == seen + 1,
            )
            .values(mql_transitions=seen)
        )


def pending_contacts(engine: Bind, crm: str, contact_ids: Sequence[str]) -> set[str]:
    """Contacts with a claimed handoff that has no task yet: a transition in progress."""
    found: set[str] = set()
    with reading(engine) as connection:
        for chunk in in_chunks(contact_ids):
            found.update(
                connection.execute(
                    select(col(HandoffRow.contact_id)).where(
                        col(HandoffRow.crm) == crm,
                        col(HandoffRow.task_id).is_(None),
                        col(HandoffRow.contact_id).in_(chunk),
                    )
                ).scalars()
            )
    return found


def record_task(engine: Engine, key: str, task_id: str, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(HandoffRow)
            .where(col(HandoffRow.key) == key)
            .values(task_id=task_id, recorded_at=now)
        )


def open_claims(engine: Engine, keys: Sequence[str]) -> None:
    """Give claims back without a task: any run may finish them at once, no lease to wait.

    Used when the run that holds them cannot finish them (a create failed, the batch
    raised); the transition stays counted, so nobody decides it a second time.
    """
    if not keys:
        return
    with engine.begin() as connection:
        for chunk in in_chunks(keys):
            connection.execute(
                update(HandoffRow)
                .where(
                    col(HandoffRow.key).in_(chunk),
                    col(HandoffRow.task_id).is_(None),
                )
                .values(claimed_by=None)
            )


def take_over_stale(
    engine: Engine,
    crm: str,
    by: str,
    now: datetime,
    cutoff: datetime,
    owner_gone: Callable[[str], bool] = lambda owner: False,
) -> list[HandoffTask]:
    """Take over claims with no task id that nobody is finishing, one atomic update each.

    Nobody is finishing a claim that was given back (no owner), whose owner is known to
    be gone (`owner_gone`), or that was made before `cutoff` (the lease: an owner on
    another machine may be dead without anyone here knowing). Two runs racing for the
    same claim compare-and-set its owner; only one sees its row change and goes on.
    """
    taken: list[HandoffTask] = []
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                col(HandoffRow.key),
                col(HandoffRow.payload),
                col(HandoffRow.claimed_by),
                col(HandoffRow.claimed_at),
            ).where(
                col(HandoffRow.crm) == crm,
                col(HandoffRow.task_id).is_(None),
            )
        ).all()
    for key, payload, owner, claimed_at in rows:
        free = (
            owner is None or owner_gone(owner) or (claimed_at is not None and claimed_at < cutoff)
        )
        if not free:
            continue
        same_owner = (
            col(HandoffRow.claimed_by).is_(None)
            if owner is None
            else col(HandoffRow.claimed_by) == owner
        )
        with engine.begin() as connection:
            changed = connection.execute(
                update(HandoffRow)
                .where(
                    col(HandoffRow.key) == key,
                    col(HandoffRow.task_id).is_(None),
                    same_owner,
                    col(HandoffRow.claimed_at) == claimed_at,
                )
                .values(claimed_by=by, claimed_at=now)
            ).rowcount
        if changed == 1:
            taken.append(HandoffTask.model_validate(payload))
    return taken


def unfinished(
    engine: Engine,
    crm: str,
    held_elsewhere: Callable[[str | None, datetime | None], bool] = lambda owner, at: False,
) -> list[str]:
    """Contacts whose handoff is claimed and has no task yet (pending across runs).

    Claims for which `held_elsewhere(owner, claimed_at)` holds are left out: another live
    run is finishing them, and its own report speaks for them.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                col(HandoffRow.contact_id), col(HandoffRow.claimed_by), col(HandoffRow.claimed_at)
            ).where(
                col(HandoffRow.crm) == crm,
                col(HandoffRow.task_id).is_(None),
            )
        ).all()
    return [contact for contact, owner, at in rows if not held_elsewhere(owner, at)]


def task_of(engine: Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            select(col(HandoffRow.task_id)).where(col(HandoffRow.key) == key)
        ).scalar_one_or_none()
