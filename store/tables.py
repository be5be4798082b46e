"""The store's tables: the local mirror, cursors, scores, handoffs and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Table, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime


def _when(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def table_of(model: type[SQLModel]) -> Table:
    """The Core `Table` of a table model, for statements built on the table itself."""
    # SQLAlchemy sets `__table__` when the class is created; SQLModel does not declare it.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


class ContactRow(SQLModel, table=True):
    """A contact as last pulled from its CRM (canonical fields)."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("crm", "crm_id", name="uq_contacts_crm_id"),)

    id: int | None = Field(default=None, primary_key=True)
    crm: str = Field(max_length=20)
    crm_id: str = Field(max_length=64)
    email: str | None = Field(default=None, index=True)
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    company: str | None = None
    company_size: int | None = None
    industry: str | None = None
    country: str | None = None
    lifecycle_stage: str | None = None
    lead_status: str | None = None
    owner_id: str | None = None
    created_at: datetime | None = _when()
    updated_at: datetime | None = _when()
    accepted_at: datetime | None = _when()  # when the CRM says sales accepted them
    properties: dict[str, Any] = _json()
    deleted: bool = False
    pulled_at: datetime | None = _when()


class ActivityRow(SQLModel, table=True):
    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("crm", "crm_id", name="uq_activities_crm_id"),
        Index("ix_activities_contact", "crm", "contact_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    crm: str = Field(max_length=20)
    crm_id: str = Field(max_length=64)
    contact_id: str = Field(max_length=64)
    type: str = Field(max_length=40)
    raw_type: str | None = None
    occurred_at: datetime | None = _when(nullable=False)
    attributes: dict[str, Any] = _json()


class CursorRow(SQLModel, table=True):
    """The high-water mark of one object of one CRM; advanced only after a page is applied."""

    __tablename__ = "cursors"

    crm: str = Field(primary_key=True, max_length=20)
    object: str = Field(primary_key=True, max_length=40)
    value: datetime | None = _when()
    updated_at: datetime | None = _when()


class ScoreRow(SQLModel, table=True):
    """The current score of a contact and what was last written to the CRM for it."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("crm", "crm_id", name="uq_scores_crm_id"),)

    id: int | None = Field(default=None, primary_key=True)
    crm: str = Field(max_length=20)
    crm_id: str = Field(max_length=64)
    fit: float
    engagement: float
    total: float
    grade: str = Field(max_length=2)
    is_mql: bool
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    model_version: str
    as_of: datetime | None = _when()
    # What the CRM holds for this contact after our last successful writes.
    written: dict[str, Any] = _json()
    stage: str | None = None
    stage_written_at: datetime | None = _when()
    mql_transitions: int = 0
    recycled_at: datetime | None = _when()
    # A write for this contact failed: the next sync scores it again, changed or not.
    needs_write: bool = False
    # A stage move sent but not known to be finished ({"from", "to", "lead_status"}):
    # HubSpot's backward move is two requests, and a run that dies between them leaves
    # the contact with no stage; whoever comes next finishes the move.
    stage_intent: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    # The run writing this contact's fields now: two concurrent syncs do not both send
    # the same values (the other one skips the contact until the claim is released).
    writing_by: str | None = None
    writing_at: datetime | None = _when()


class ScoreHistoryRow(SQLModel, table=True):
    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_contact", "crm", "crm_id"),)

    id: int | None = Field(default=None, primary_key=True)
    crm: str = Field(max_length=20)
    crm_id: str = Field(max_length=64)
    total: float
    fit: float
    engagement: float
    grade: str = Field(max_length=2)
    is_mql: bool
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    model_version: str
    as_of: datetime | None = _when()
    flow_run_id: str | None = None


class HandoffRow(SQLModel, table=True):
    """One handoff task per MQL transition; the unique key makes creation exactly-once."""

    __tablename__ = "handoffs"

    key: str = Field(primary_key=True, max_length=200)
    crm: str = Field(max_length=20)
    contact_id: str = Field(max_length=64)
    claimed_at: datetime | None = _when()
    claimed_by: str | None = None
    # The task as planned, so that a claim left by a crash can be finished later.
    payload: dict[str, Any] = _json()
    task_id: str | None = None
    recorded_at: datetime | None = _when()


class AuditRow(SQLModel, table=True):
    """One decision or one write outcome, with the flow run that made it."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_contact", "crm", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = _when(nullable=False, index=True)
    flow_run_id: str | None = Field(default=None, index=True)
    crm: str = Field(max_length=20)
    contact_id: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=20)  # decision | write | feedback
    action: str = Field(max_length=40)
    outcome: str | None = Field(default=None, max_length=20)
    detail: dict[str, Any] = _json()
    message: str | None = None
