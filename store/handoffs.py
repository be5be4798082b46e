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

from scoring.writes import HandoffTask
from store.chunking import in_chunks
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
        for chunk in in_chunks(contact_ids):
            found.update(
                connection.execute(
                    select(HandoffRow.contact_id).where(
                        HandoffRow.crm == crm,
                        HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
                        HandoffRow.contact_id.in_(chunk),  # type: ignore[attr-defined]
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
                    HandoffRow.key.in_(chunk),  # type: ignore[attr-defined]
                    HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
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
                HandoffRow.key, HandoffRow.payload, HandoffRow.claimed_by, HandoffRow.claimed_at
            ).where(
                HandoffRow.crm == crm,
                HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
            )
        ).all()
    for key, payload, owner, claimed_at in rows:
        free = (
            owner is None or owner_gone(owner) or (claimed_at is not None and claimed_at < cutoff)
        )
        if not free:
            continue
        same_owner = (
            HandoffRow.claimed_by.is_(None)  # type: ignore[union-attr]
            if owner is None
            else HandoffRow.claimed_by == owner
        )
        with engine.begin() as connection:
            changed = connection.execute(
                update(HandoffRow)
                .where(
                    HandoffRow.key == key,  # type: ignore[arg-type]
                    HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
                    same_owner,  # type: ignore[arg-type]
                    HandoffRow.claimed_at == claimed_at,  # type: ignore[arg-type]
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
            select(HandoffRow.contact_id, HandoffRow.claimed_by, HandoffRow.claimed_at).where(
                HandoffRow.crm == crm,
                HandoffRow.task_id.is_(None),  # type: ignore[union-attr]
            )
        ).all()
    return [contact for contact, owner, at in rows if not held_elsewhere(owner, at)]


def task_of(engine: Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            select(HandoffRow.task_id).where(HandoffRow.key == key)  # type: ignore[arg-type]
        ).scalar_one_or_none()
