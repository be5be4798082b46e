"""What a run did (or, dry, would do): counts and lists for the artifacts and the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from scoring.assess import Assessment
from scoring.evidence import describe_evidence
from scoring.records import Activity, Contact, Reason, ScoreResult


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


class Scored(NamedTuple):
    """One contact's new score, for the run's score distribution."""

    contact_id: str
    total: float
    is_mql: bool
    as_of: datetime


class ReasonLine(NamedTuple):
    """One reason of a score: the rule, its points, its evidence in words."""

    rule: str
    points: float
    evidence: str


class AssessedMql(NamedTuple):
    """A new MQL as the run's MQL table shows it: who, the score, and why."""

    contact: Contact
    total: float
    grade: str
    reasons: tuple[ReasonLine, ...]  # the positive ones, weightiest first


def assessed_mql(
    contact: Contact,
    result: ScoreResult | None,
    activities: Iterable[Activity],
    *,
    total: float | None = None,
    grade: str | None = None,
    reasons: Sequence[Reason] = (),
    as_of: datetime | None = None,
) -> AssessedMql:
    """The MQL table's row of a contact, from its `ScoreResult` or from a stored score
    (`total`, `grade`, `reasons`, `as_of`); evidence described as the sales task does."""
    if result is not None:
        total, grade, reasons, as_of = result.total, result.grade, result.reasons, result.as_of
    by_id = {a.crm_id: a for a in activities if as_of is None or a.occurred_at <= as_of}
    # The order of `scoring.handoff.top_reasons`, the sales task's "Why".
    ranked = sorted((r for r in reasons if r.points > 0), key=lambda r: (-r.points, r.rule))
    return AssessedMql(
        contact=contact,
        total=total if total is not None else 0.0,
        grade=grade or "",
        reasons=tuple(
            ReasonLine(r.rule, r.points, describe_evidence(r.evidence, by_id, last=3))
            for r in ranked
        ),
    )


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
    # Filled where nothing is recorded (a dry run's plan): each assessed contact's new
    # score, and each planned new MQL's row. A run that writes leaves them empty: its
    # scores are in the store (`store.scores`, the score history by flow run).
    scored: list[Scored] = field(default_factory=list)
    mql_rows: dict[str, AssessedMql] = field(default_factory=dict)

    def merge(self, other: ApplyReport) -> None:
        self.pending_handoffs += other.pending_handoffs
        self.updated += other.updated
        self.stage_moves += other.stage_moves
        self.tasks_created += other.tasks_created
        self.new_mqls += other.new_mqls
        self.failures += other.failures
        self.skipped_claims += other.skipped_claims
        self.skipped_writes += other.skipped_writes
        self.scored += other.scored
        self.mql_rows.update(other.mql_rows)


def planned_report(decided: Sequence[Assessment]) -> ApplyReport:
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
            report.mql_rows[plan.crm_id] = assessed_mql(item.contact, item.result, item.activities)
        result = item.result
        report.scored.append(Scored(result.crm_id, result.total, result.is_mql, result.as_of))
    return report
