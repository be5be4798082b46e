"""Current scores, their history, and the state last written to the CRM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlmodel import col

from scoring.records import ScoreResult
from scoring.writes import WrittenStateChange
from store.chunking import in_chunks
from store.db import Bind, reading, writing
from store.tables import ScoreHistoryRow, ScoreRow, table_of
from store.upsert import bulk_upsert

SCORE_COLUMNS = (
    "fit",
    "engagement",
    "total",
    "grade",
    "is_mql",
    "reasons",
    "model_version",
    "as_of",
)


@dataclass
class WrittenState:
    """What the CRM shows for a contact after our last successful writes."""

    written: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    stage_written_at: datetime | None = None
    mql_transitions: int = 0
    recycled_at: datetime | None = None
    stage_intent: dict[str, Any] | None = None  # a stage move sent, not known finished


def _score_values(result: ScoreResult) -> dict[str, Any]:
    return {
        "fit": result.fit,
        "engagement": result.engagement,
        "total": result.total,
        "grade": result.grade,
        "is_mql": result.is_mql,
        "reasons": [r.model_dump() for r in result.reasons],
        "model_version": f"{result.model_name}@{result.model_version}",
        "as_of": result.as_of,
    }


def save_scores(engine: Bind, results: list[ScoreResult], flow_run_id: str | None) -> None:
    """Keep each result as current and append it to the history, in two statements."""
    if not results:
        return
    current = [{"crm": r.crm.value, "crm_id": r.crm_id, **_score_values(r)} for r in results]
    history = [{**row, "flow_run_id": flow_run_id} for row in current]
    for row in current:
        row.setdefault("written", {})
        row.setdefault("mql_transitions", 0)
    with writing(engine) as connection:
        bulk_upsert(
            connection,
            table_of(ScoreRow),
            current,
            ("crm", "crm_id"),
            SCORE_COLUMNS,
        )
        connection.execute(insert(ScoreHistoryRow), history)


def written_states(engine: Bind, crm: str, crm_ids: list[str]) -> dict[str, WrittenState]:
    states: dict[str, WrittenState] = {}
    with reading(engine) as connection:
        for chunk in in_chunks(crm_ids):
            rows = connection.execute(
                select(ScoreRow).where(
                    col(ScoreRow.crm) == crm,
                    col(ScoreRow.crm_id).in_(chunk),
                )
            ).mappings()
            for row in rows:
                states[row["crm_id"]] = WrittenState(
                    written=dict(row["written"] or {}),
                    stage=row["stage"],
                    stage_written_at=row["stage_written_at"],
                    mql_transitions=row["mql_transitions"],
                    recycled_at=row["recycled_at"],
                    stage_intent=row["stage_intent"],
                )
    return states


def record_written(engine: Bind, crm: str, crm_id: str, change: WrittenStateChange) -> None:
    """Merge a change (written values, stage bookkeeping) into the contact's written state."""
    if change.is_empty:
        return
    with writing(engine) as connection:
        # Locked (PostgreSQL) so two workers merging into one row do not lose each other's keys.
        row = connection.execute(
            select(col(ScoreRow.written))
            .where(col(ScoreRow.crm) == crm, col(ScoreRow.crm_id) == crm_id)
            .with_for_update()
        ).first()
        if row is None:
            return
        columns: dict[str, Any] = {}
        if change.values:
            columns["written"] = {**(row[0] or {}), **change.values}
        if change.stage is not None:
            columns["stage"] = change.stage.value
        if change.stage_written_at is not None:
            columns["stage_written_at"] = change.stage_written_at
        if change.recycled_at is not None:
            columns["recycled_at"] = change.recycled_at
        if change.clear_stage_intent:
            columns["stage_intent"] = None
        connection.execute(
            update(ScoreRow)
            .where(col(ScoreRow.crm) == crm, col(ScoreRow.crm_id) == crm_id)
            .values(**columns)
        )


def record_stage_intents(engine: Engine, crm: str, intents: dict[str, dict[str, Any]]) -> None:
    """Note stage moves as intended before their first request, in one transaction."""
    if not intents:
        return
    with engine.begin() as connection:
        for crm_id, intent in intents.items():
            connection.execute(
                update(ScoreRow)
                .where(col(ScoreRow.crm) == crm, col(ScoreRow.crm_id) == crm_id)
                .values(stage_intent=intent)
            )


def claim_writes(
    engine: Engine,
    crm: str,
    crm_ids: list[str],
    by: str,
    now: datetime,
    stale_before: datetime,
    owner_gone: Callable[[str], bool] = lambda owner: False,
) -> set[str]:
    """Claim these contacts for writing; the ids claimed (those no other run is writing).

    A claim older than `stale_before` belonged to a run that died: it is taken over. So is
    one whose owner is known to be gone (`owner_gone`, as for handoff claims): without
    that, a run killed mid-write left its contacts skipped by every run for the lease,
    and unwritten after it, since the skipping runs move the cursors past them.
    """
    claimed: set[str] = set()
    with engine.begin() as connection:
        for chunk in in_chunks(crm_ids):
            owners = connection.execute(
                select(col(ScoreRow.writing_by))
                .where(
                    col(ScoreRow.crm) == crm,
                    col(ScoreRow.crm_id).in_(chunk),
                    col(ScoreRow.writing_by).is_not(None),
                )
                .distinct()
            ).scalars()
            # The query leaves out NULL owners already: `is not None` only narrows the type.
            gone = sorted(
                owner for owner in owners if owner is not None and owner != by and owner_gone(owner)
            )
            connection.execute(
                update(ScoreRow)
                .where(
                    col(ScoreRow.crm) == crm,
                    col(ScoreRow.crm_id).in_(chunk),
                    col(ScoreRow.writing_by).is_(None)
                    | (col(ScoreRow.writing_at) < stale_before)
                    | col(ScoreRow.writing_by).in_(gone),
                )
                .values(writing_by=by, writing_at=now)
            )
            claimed.update(
                connection.execute(
                    select(col(ScoreRow.crm_id)).where(
                        col(ScoreRow.crm) == crm,
                        col(ScoreRow.crm_id).in_(chunk),
                        col(ScoreRow.writing_by) == by,
                    )
                ).scalars()
            )
    return claimed


def release_writes(engine: Engine, crm: str, crm_ids: list[str], by: str) -> None:
    with engine.begin() as connection:
        for chunk in in_chunks(crm_ids):
            connection.execute(
                update(ScoreRow)
                .where(
                    col(ScoreRow.crm) == crm,
                    col(ScoreRow.crm_id).in_(chunk),
                    col(ScoreRow.writing_by) == by,
                )
                .values(writing_by=None, writing_at=None)
            )


def score_of(engine: Engine, crm: str, crm_id: str) -> dict[str, Any] | None:
    return scores_of(engine, crm, [crm_id]).get(crm_id)


def scores_of(engine: Engine, crm: str, crm_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored score rows of these contacts, by id (one query per `IN` chunk); a
    contact with no score is missing."""
    found: dict[str, dict[str, Any]] = {}
    with reading(engine) as connection:
        for chunk in in_chunks(list(dict.fromkeys(crm_ids))):
            rows = connection.execute(
                select(ScoreRow).where(col(ScoreRow.crm) == crm, col(ScoreRow.crm_id).in_(chunk))
            ).mappings()
            found.update((row["crm_id"], dict(row)) for row in rows)
    return found


def mark_needs_write(engine: Engine, crm: str, failed: set[str], done: set[str]) -> None:
    """Remember contacts whose writes failed (to retry) and forget those now written."""
    with engine.begin() as connection:
        for ids, flag in ((sorted(failed), True), (sorted(done - failed), False)):
            for chunk in in_chunks(ids):
                connection.execute(
                    update(ScoreRow)
                    .where(
                        col(ScoreRow.crm) == crm,
                        col(ScoreRow.crm_id).in_(chunk),
                        col(ScoreRow.needs_write) != flag,
                    )
                    .values(needs_write=flag)
                )


def contacts_needing_write(
    engine: Engine,
    crm: str,
    held_elsewhere: Callable[[str | None, datetime | None], bool] = lambda owner, at: False,
) -> list[str]:
    """Contacts with a failed write or an unfinished stage move: the next sync redoes them.

    Those another live run is writing (`held_elsewhere(owner, since)` of their write
    claim, or of the owner recorded with their stage intent) are left out.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                col(ScoreRow.crm_id),
                col(ScoreRow.writing_by),
                col(ScoreRow.writing_at),
                col(ScoreRow.stage_intent),
            ).where(
                col(ScoreRow.crm) == crm,
                (col(ScoreRow.needs_write) == True)  # noqa: E712
                | col(ScoreRow.stage_intent).is_not(None),
            )
        ).all()
    left: list[str] = []
    for crm_id, writing_by, writing_at, intent in rows:
        if held_elsewhere(writing_by, writing_at):
            continue
        if intent is not None and held_elsewhere(*intent_owner(intent)):
            continue
        left.append(crm_id)
    return left


def intent_owner(intent: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """Who recorded a stage intent, and when (None for intents recorded without them)."""
    at = intent.get("by_at")
    return intent.get("by"), datetime.fromisoformat(at) if isinstance(at, str) else None
