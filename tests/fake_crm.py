"""An in-memory implementation of the connector protocol, for planner unit tests only.

Acceptance runs use the real connectors against the sandbox; this one lets the planner's
tests say exactly what the CRM did (including failing) without a server.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from itertools import count

from connectors.common import is_backward
from connectors.paging import Page
from connectors.protocol import ContactStatus, Deletion
from scoring.records import Activity, Contact, Crm
from scoring.writes import (
    HandoffTask,
    OutcomeStatus,
    PropertyUpdate,
    StageChange,
    WriteOutcome,
)


class MemoryCrm:
    crm = Crm.HUBSPOT

    def __init__(self) -> None:
        self.properties: dict[str, dict[str, object]] = {}
        self.stages: dict[str, str] = {}
        self.tasks: dict[str, HandoffTask] = {}  # by task id
        self.calls: list[str] = []
        self.fail_updates: set[str] = set()
        self.fail_stages: set[str] = set()
        # Simulates the process dying: "before_stage", "mid_backward_move" (after the clear
        # of a two-request backward move), "before_create" or "after_create".
        self.die: str | None = None
        self._ids = count(1)

    def pull_contacts(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Contact]]:
        return iter(())

    def pull_activities(
        self,
        since: datetime | None,
        sources: Mapping[str, datetime] | None = None,
        *,
        until: datetime | None = None,
    ) -> Iterator[Page[Activity]]:
        return iter(())

    def pull_deletions(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Deletion]]:
        return iter(())

    def read_status(self, crm_ids: Sequence[str]) -> dict[str, ContactStatus]:
        return {}

    def update_properties(self, updates: Sequence[PropertyUpdate]) -> list[WriteOutcome]:
        self.calls.append(f"update:{len(updates)}")
        outcomes = []
        for update in updates:
            if update.crm_id in self.fail_updates:
                outcomes.append(self._outcome(update.crm_id, OutcomeStatus.FAILED, "refused"))
                continue
            self.properties.setdefault(update.crm_id, {}).update(update.values)
            outcomes.append(self._outcome(update.crm_id, OutcomeStatus.OK))
        return outcomes

    def change_stages(self, changes: Sequence[StageChange]) -> list[WriteOutcome]:
        self.calls.append(f"stages:{len(changes)}")
        if self.die == "before_stage":
            raise SystemExit("killed between claim and stage move")
        outcomes = []
        for change in changes:
            if self.die == "mid_backward_move" and is_backward(change.from_stage, change.to_stage):
                self.stages[change.crm_id] = ""
                raise SystemExit("killed between clearing the stage and setting it")
            if change.crm_id in self.fail_stages:
                outcomes.append(self._outcome(change.crm_id, OutcomeStatus.FAILED, "refused"))
                continue
            self.stages[change.crm_id] = change.to_stage.value
            outcomes.append(self._outcome(change.crm_id, OutcomeStatus.OK))
        return outcomes

    def create_tasks(self, tasks: Sequence[HandoffTask]) -> list[WriteOutcome]:
        self.calls.append(f"tasks:{len(tasks)}")
        if self.die == "before_create":
            raise SystemExit("killed between claim and create")
        outcomes = []
        for task in tasks:
            task_id = f"t{next(self._ids)}"
            self.tasks[task_id] = task
            outcomes.append(self._outcome(task.key, OutcomeStatus.OK, object_id=task_id))
        if self.die == "after_create":
            raise SystemExit("killed between create and record")
        return outcomes

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        self.calls.append(f"find:{len(keys)}")
        return {task.key: task_id for task_id, task in self.tasks.items() if task.key in keys}

    def check_mapping(self) -> list[str]:
        return []

    def _outcome(
        self, target: str, status: OutcomeStatus, message: str | None = None, object_id=None
    ) -> WriteOutcome:
        return WriteOutcome(
            crm=self.crm, target=target, status=status, message=message, crm_object_id=object_id
        )
