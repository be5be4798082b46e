"""`mqlsync explain`: why a contact has its score and stage, from the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from flows.tables import render_table
from scoring.evidence import describe_evidence
from store import audit, mirror, scores


def explain_contact(engine: Engine, key: str) -> str | None:
    """A readable account of one contact (by CRM id or email), or None if unknown."""
    contact = mirror.find_contact(engine, key)
    if contact is None:
        return None
    current = scores.score_of(engine, contact.crm.value, contact.crm_id)
    activities = mirror.load_activities(engine, contact.crm, [contact.crm_id])
    by_id = {a.crm_id: a for a in activities.get(contact.crm_id, [])}
    lines = [
        f"{contact.display_name} ({contact.crm.value} {contact.crm_id})"
        + (f", {contact.job_title}" if contact.job_title else "")
        + (f" at {contact.company}" if contact.company else ""),
        f"stage: {contact.lifecycle_stage or '-'}   lead status: {contact.lead_status or '-'}",
    ]
    if current is None:
        lines.append("not scored yet")
    else:
        lines.append(
            f"score {current['total']:g} (fit {current['fit']:g}, engagement "
            f"{current['engagement']:g}), grade {current['grade']}, "
            f"{'MQL' if current['is_mql'] else 'not an MQL'} by {current['model_version']} "
            f"as of {current['as_of'].isoformat()}"
        )
        lines.append("")
        lines.append(
            render_table(
                ["rule", "points", "evidence"],
                [
                    [
                        r["rule"],
                        f"{r['points']:+g}",
                        describe_evidence(r.get("evidence", []), by_id),
                    ]
                    for r in current["reasons"]
                ],
            )
        )
    events = audit.history(engine, contact.crm.value, contact.crm_id)
    if events:
        lines += ["", "history"]
        lines.append(
            render_table(
                ["when", "run", "kind", "action", "outcome", "note"],
                [_event_row(e) for e in events],
            )
        )
    return "\n".join(lines)


def _event_row(event: dict[str, Any]) -> list[str]:
    return [
        event["at"].strftime("%Y-%m-%d %H:%M:%S"),
        (event["flow_run_id"] or "")[:8],
        event["kind"],
        event["action"],
        event["outcome"] or "",
        (event["message"] or "")[:80],
    ]
