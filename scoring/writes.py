"""Canonical write records: what the write plan asks a connector to do in a CRM.

Connectors translate these into CRM requests through their mapping; the store records
them and their outcomes in the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from scoring.records import Crm, LifecycleStage

# The canonical names of the values written back; each mapping says which CRM property
# holds each one.
WRITE_FIELDS: frozenset[str] = frozenset(
    {"score", "fit", "engagement", "grade", "reasons", "model_version"}
)

WriteValue = str | int | float | None


class PropertyUpdate(BaseModel):
    """Set some written-back values on one contact (keys from `WRITE_FIELDS`)."""

    model_config = ConfigDict(frozen=True)

    crm: Crm
    crm_id: str
    values: dict[str, WriteValue]


class StageChange(BaseModel):
    """Move a contact's lifecycle stage (and, where the CRM uses one, its lead status).

    `lead_status` is a canonical status key of the mapping ("mql", "recycled", ...),
    never a CRM value; the connector turns it into one.
    """

    model_config = ConfigDict(frozen=True)

    crm: Crm
    crm_id: str
    from_stage: LifecycleStage | None
    to_stage: LifecycleStage
    lead_status: str | None = None


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class HandoffTask(BaseModel):
    """A sales task for one MQL transition; `key` makes its creation idempotent."""

    model_config = ConfigDict(frozen=True)

    crm: Crm
    key: str = Field(min_length=1)
    contact_id: str
    owner_id: str | None
    subject: str
    body: str
    due_at: datetime
    priority: Priority


class OutcomeStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    # The CRM already had it (a task found by its key): nothing was sent.
    ALREADY_DONE = "already_done"
    # Sent and accepted, but reading it back failed: it may or may not have taken effect.
    UNCONFIRMED = "unconfirmed"


class WriteOutcome(BaseModel):
    """What the CRM answered for one record of a batch."""

    model_config = ConfigDict(frozen=True)

    crm: Crm
    target: str  # the contact id, or the handoff key for tasks
    status: OutcomeStatus
    crm_object_id: str | None = None  # e.g. the created task's id
    message: str | None = None  # the CRM's error message, secrets removed
    attempts: int = 1


@dataclass(frozen=True)
class WrittenStateChange:
    """What the store must remember about a contact after a write or an assessment.

    Fields left at None (or False) leave the stored value as it is.
    """

    values: Mapping[str, WriteValue] | None = None  # written property values, merged in
    stage: LifecycleStage | None = None  # the stage the CRM now shows
    stage_written_at: datetime | None = None
    recycled_at: datetime | None = None  # from then on MQL is re-earned
    clear_stage_intent: bool = False  # the stage move noted before sending is done

    @property
    def is_empty(self) -> bool:
        return self == WrittenStateChange()
