"""Canonical records: the vocabulary every module shares.

Connectors turn CRM payloads into these, the store keeps them, the scorer reads them.
They are immutable so that a record can be shared between threads and tasks safely.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Crm(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


class ActivityType(StrEnum):
    PAGE_VIEW = "page_view"
    FORM_SUBMISSION = "form_submission"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_REGISTERED = "webinar_registered"
    WEBINAR_ATTENDED = "webinar_attended"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_REPLY = "email_reply"
    EMAIL_UNSUBSCRIBE = "email_unsubscribe"
    EMAIL_BOUNCE = "email_bounce"
    DEMO_REQUEST = "demo_request"
    TRIAL_SIGNUP = "trial_signup"
    MEETING_BOOKED = "meeting_booked"
    SOCIAL_ENGAGEMENT = "social_engagement"
    SUPPORT_COMPLAINT = "support_complaint"
    # A CRM activity the mapping does not name: kept with its raw type, never dropped.
    OTHER = "other"


class LifecycleStage(StrEnum):
    """Forward order matters: see `scoring.lifecycle`."""

    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"


# Canonical Contact fields a fit rule may name directly; any other name is looked up
# in `Contact.properties`.
CONTACT_FIELDS: frozenset[str] = frozenset(
    {
        "crm",
        "crm_id",
        "email",
        "first_name",
        "last_name",
        "job_title",
        "company",
        "company_size",
        "industry",
        "country",
        "lifecycle_stage",
        "lead_status",
        "owner_id",
        "created_at",
        "updated_at",
    }
)

# Canonical Contact fields that record an outcome, not a signal: when the CRM says sales
# accepted the person (HubSpot stamps the day a contact became SQL). Mapped like the
# others, kept for backtests, never visible to a rule: a score must not know the future.
OUTCOME_FIELDS: frozenset[str] = frozenset({"accepted_at"})

# Activity attributes with a field of their own; others live in `Activity.attributes`.
ACTIVITY_ATTRIBUTES: frozenset[str] = frozenset(
    {"url", "asset", "asset_type", "campaign", "form", "subject"}
)


class Contact(BaseModel):
    """A person in a CRM, as the scorer sees them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: Crm
    crm_id: str = Field(min_length=1)
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    company: str | None = None
    company_size: int | None = Field(default=None, ge=0)
    industry: str | None = None
    country: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    lead_status: str | None = None
    owner_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    accepted_at: datetime | None = None  # an outcome (see OUTCOME_FIELDS), not a signal
    properties: dict[str, Any] = Field(default_factory=dict)

    def field_value(self, name: str) -> Any:
        """The value of a canonical field, or of a custom property by that name."""
        if name in CONTACT_FIELDS:
            return getattr(self, name)
        return self.properties.get(name)

    @property
    def display_name(self) -> str:
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts) or (self.email or self.crm_id)


class Activity(BaseModel):
    """One thing a contact did, with the attributes engagement rules filter on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: Crm
    crm_id: str = Field(min_length=1)
    contact_id: str = Field(min_length=1)
    type: ActivityType
    occurred_at: datetime
    raw_type: str | None = None
    url: str | None = None
    asset: str | None = None
    asset_type: str | None = None
    campaign: str | None = None
    form: str | None = None
    subject: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. 2026-01-31T09:00:00Z)")
        return value

    def attribute(self, name: str) -> str | None:
        """An attribute by name: a named field first, then the free-form attributes."""
        if name in ACTIVITY_ATTRIBUTES:
            value: str | None = getattr(self, name)
            return value
        return self.attributes.get(name)


class Reason(BaseModel):
    """Why points were given: the rule, the points after decay and caps, the evidence."""

    model_config = ConfigDict(frozen=True)

    rule: str
    points: float
    evidence: list[str] = Field(default_factory=list)


class ScoreResult(BaseModel):
    """The outcome of scoring one contact with one model as of one instant."""

    model_config = ConfigDict(frozen=True)

    crm: Crm
    crm_id: str
    fit: float
    engagement: float
    total: float
    grade: str
    is_mql: bool
    reasons: list[Reason]
    model_name: str
    model_version: str
    as_of: datetime
    # Names of rules that matched, for criteria and explanations (fit and engagement).
    matched_fit: frozenset[str] = frozenset()
    matched_engagement: frozenset[str] = frozenset()
