"""What a run did (or, dry, would do): counts and lists for the artifacts and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from scoring.assess import Assessment


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
    return report
