"""The handoff task's content: who the lead is, why they are an MQL, what they did."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from scoring.evidence import describe_activity, describe_evidence
from scoring.model import ScoringModel
from scoring.records import Activity, ActivityType, Contact, Reason, ScoreResult
from scoring.writes import HandoffTask, Priority

RECENT_ITEMS = 5
CONTENT_TYPES = frozenset(
    {
        ActivityType.CONTENT_DOWNLOAD,
        ActivityType.WEBINAR_ATTENDED,
        ActivityType.WEBINAR_REGISTERED,
        ActivityType.FORM_SUBMISSION,
        ActivityType.DEMO_REQUEST,
        ActivityType.TRIAL_SIGNUP,
    }
)


def handoff_key(contact: Contact, transition_number: int) -> str:
    """The idempotency key of the n-th MQL transition of a contact."""
    return f"{contact.crm.value}:{contact.crm_id}:mql:{transition_number}"


def top_reasons(result: ScoreResult, count: int) -> list[Reason]:
    """The reasons that weigh most, positive ones first (ties by rule id)."""
    positive = sorted(
        (r for r in result.reasons if r.points > 0), key=lambda r: (-r.points, r.rule)
    )
    return positive[:count]


def build_handoff(
    model: ScoringModel,
    contact: Contact,
    activities: Iterable[Activity],
    result: ScoreResult,
    transition_number: int,
    decided_at: datetime,
) -> HandoffTask:
    """The sales task for one MQL transition, with the context sales asks for."""
    by_id = {a.crm_id: a for a in activities if a.occurred_at <= result.as_of}
    company = f" ({contact.company})" if contact.company else ""
    subject = (
        f"MQL: {contact.display_name}{company} — score {result.total:.0f}, grade {result.grade}"
    )
    lines = ["Who", *_who(contact), "", "Why"]
    for reason in top_reasons(result, model.handoff.top_reasons):
        evidence = describe_evidence(reason.evidence, by_id, last=3)
        lines.append(f"- {reason.rule} (+{reason.points:g}): {evidence}")
    recent = sorted(by_id.values(), key=lambda a: (a.occurred_at, a.crm_id), reverse=True)
    content = [a for a in recent if a.type in CONTENT_TYPES][:RECENT_ITEMS]
    pages = [a for a in recent if a.type is ActivityType.PAGE_VIEW and a.url][:RECENT_ITEMS]
    if content:
        lines += ["", "Content and forms", *(f"- {describe_activity(a)}" for a in content)]
    if pages:
        lines += ["", "Pages visited", *(f"- {describe_activity(a)}" for a in pages)]
    first = min(by_id.values(), key=lambda a: (a.occurred_at, a.crm_id), default=None)
    source = contact.properties.get("lead_source") or (
        describe_activity(first) if first else "unknown"
    )
    lines += [
        "",
        f"Source: {source}",
        f"Score {result.total:g} (fit {result.fit:g}, engagement {result.engagement:g}), "
        f"grade {result.grade}, model {result.model_name}@{result.model_version}",
    ]
    priority = Priority(model.handoff.priority_by_grade.get(result.grade, "medium"))  # type: ignore[call-overload]
    return HandoffTask(
        crm=contact.crm,
        key=handoff_key(contact, transition_number),
        contact_id=contact.crm_id,
        owner_id=contact.owner_id,
        subject=subject,
        body="\n".join(lines),
        due_at=decided_at + timedelta(hours=model.handoff.sla_hours),
        priority=priority,
    )


def _who(contact: Contact) -> list[str]:
    parts = [
        ("Name", contact.display_name),
        ("Title", contact.job_title),
        ("Company", contact.company),
        ("Company size", f"{contact.company_size:,}" if contact.company_size else None),
        ("Industry", contact.industry),
        ("Country", contact.country),
        ("Email", contact.email),
    ]
    return [f"- {label}: {value}" for label, value in parts if value]
