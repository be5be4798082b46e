"""`mqlsync explain`: why a contact has its score and stage, from the store.

The same account as text (`explain_contact`) or as one JSON object (`explain_json`):
the contact, its score and reasons (evidence in words), what this service last wrote
to the CRM for it, its handoff tasks (with a link where the settings allow one) and its
audit history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from flows.settings import Settings
from flows.tables import render_table
from scoring.evidence import describe_evidence
from store import audit, mirror, reports, scores

HUBSPOT_TASK_URL = "https://app.hubspot.com/contacts/{portal}/record/0-27/{task_id}"


@dataclass(frozen=True)
class TaskLinks:
    """What a link to a task in the CRM needs: HubSpot's portal id, Salesforce's org URL."""

    hubspot_portal_id: str | None = None
    salesforce_instance_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskLinks:
        # No setting names the HubSpot portal (the API host does not say it): no HubSpot link.
        return cls(salesforce_instance_url=settings.salesforce_instance_url)

    def link(self, crm: str, task_id: str) -> str | None:
        if crm == "hubspot" and self.hubspot_portal_id:
            return HUBSPOT_TASK_URL.format(portal=self.hubspot_portal_id, task_id=task_id)
        if crm == "salesforce" and self.salesforce_instance_url:
            return f"{self.salesforce_instance_url.rstrip('/')}/{task_id}"
        return None

    def missing(self, crm: str) -> str:
        """Why a task of `crm` has no link."""
        if crm == "hubspot":
            return "no link: the settings give no HubSpot portal id"
        return "no link: MQLSYNC_SALESFORCE_INSTANCE_URL is not set"


def explanation(engine: Engine, key: str, links: TaskLinks | None = None) -> dict[str, Any] | None:
    """Everything `explain` shows of one contact (by CRM id or email), or None if unknown.

    Instants stay `datetime`s; `explain_json` writes them as ISO 8601.
    """
    links = links or TaskLinks()
    contact = mirror.find_contact(engine, key)
    if contact is None:
        return None
    crm = contact.crm.value
    current = scores.score_of(engine, crm, contact.crm_id)
    activities = mirror.load_activities(engine, contact.crm, [contact.crm_id])
    by_id = {a.crm_id: a for a in activities.get(contact.crm_id, [])}
    state = scores.written_states(engine, crm, [contact.crm_id]).get(contact.crm_id)
    return {
        "contact": {
            **contact.model_dump(mode="json"),
            "display_name": contact.display_name,
        },
        "score": None
        if current is None
        else {
            name: current[name]
            for name in ("total", "fit", "engagement", "grade", "is_mql", "model_version", "as_of")
        },
        "reasons": []
        if current is None
        else [
            {
                "rule": r["rule"],
                "points": r["points"],
                "evidence": list(r.get("evidence", [])),
                "described": describe_evidence(r.get("evidence", []), by_id),
            }
            for r in current["reasons"]
        ],
        "written": None
        if state is None or current is None
        else {
            "values": state.written,
            "stage": state.stage,
            "stage_written_at": state.stage_written_at,
            "recycled_at": state.recycled_at,
            "stage_intent": state.stage_intent,
            "needs_write": bool(current["needs_write"]),
        },
        "tasks": [
            {
                "key": h.key,
                "task_id": h.task_id,
                "claimed_at": h.claimed_at,
                "claimed_by": h.claimed_by,
                "recorded_at": h.recorded_at,
                "link": links.link(crm, h.task_id) if h.task_id else None,
                "link_missing": links.missing(crm)
                if h.task_id and not links.link(crm, h.task_id)
                else None,
            }
            for h in reports.handoffs_of(engine, crm, contact.crm_id)
        ],
        "history": audit.history(engine, crm, contact.crm_id),
    }


def explain_json(engine: Engine, key: str, links: TaskLinks | None = None) -> str | None:
    """The explanation as one JSON object, or None if the contact is unknown."""
    found = explanation(engine, key, links)
    return None if found is None else json.dumps(found, indent=2, default=_instant)


def explain_contact(engine: Engine, key: str, links: TaskLinks | None = None) -> str | None:
    """A readable account of one contact (by CRM id or email), or None if unknown."""
    found = explanation(engine, key, links)
    return None if found is None else render_text(found)


def render_text(found: dict[str, Any]) -> str:
    contact, current = found["contact"], found["score"]
    lines = [
        f"{contact['display_name']} ({contact['crm']} {contact['crm_id']})"
        + (f", {contact['job_title']}" if contact["job_title"] else "")
        + (f" at {contact['company']}" if contact["company"] else ""),
        f"stage: {contact['lifecycle_stage'] or '-'}   "
        f"lead status: {contact['lead_status'] or '-'}",
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
                [[r["rule"], f"{r['points']:+g}", r["described"]] for r in found["reasons"]],
            )
        )
    lines += _written_lines(contact["crm"], found["written"])
    lines += _task_lines(found["tasks"])
    if found["history"]:
        lines += ["", "history"]
        lines.append(
            render_table(
                ["when", "run", "kind", "action", "outcome", "note"],
                [_event_row(e) for e in found["history"]],
            )
        )
    return "\n".join(lines)


def _written_lines(crm: str, written: dict[str, Any] | None) -> list[str]:
    if written is None:
        return ["", f"nothing written to {crm} yet"]
    rows = [[name, _cell(value)] for name, value in written["values"].items()]
    stage = written["stage"]
    if stage:
        at = written["stage_written_at"]
        rows.append(["stage", stage + (f" (written {_when(at)})" if at else "")])
    if written["recycled_at"]:
        rows.append(["recycled", _when(written["recycled_at"])])
    lines = (
        ["", f"last written to {crm}", render_table(["field", "value"], rows)]
        if rows
        else ["", f"nothing written to {crm} yet"]
    )
    intent = written["stage_intent"]
    if intent:
        lines.append(
            f"stage move in progress: {intent.get('from_stage') or '-'} -> "
            f"{intent.get('to_stage') or '-'}"
        )
    if written["needs_write"]:
        lines.append("a write failed: the next sync writes this contact again")
    return lines


def _task_lines(tasks: list[dict[str, Any]]) -> list[str]:
    if not tasks:
        return []
    rows = [
        [
            t["key"],
            t["task_id"] or "-",
            _when(t["recorded_at"] if t["task_id"] else t["claimed_at"]),
            t["link"]
            or t["link_missing"]
            or f"claimed by {t['claimed_by'] or 'nobody (given back)'}, no task yet",
        ]
        for t in tasks
    ]
    return ["", "handoff tasks", render_table(["key", "task", "when", "link"], rows)]


def _event_row(event: dict[str, Any]) -> list[str]:
    return [
        event["at"].strftime("%Y-%m-%d %H:%M:%S"),
        (event["flow_run_id"] or "")[:8],
        event["kind"],
        event["action"],
        event["outcome"] or "",
        (event["message"] or "")[:80],
    ]


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _instant(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
