"""`mqlsync status CRM`: how the sync of one CRM stands, read from the store alone.

The last runs (from the audit log), the cursors and how far behind they are, claims in
progress, contacts whose writes keep failing (with the last error), and the API quota
used today. No CRM request is made: `mqlsync doctor CRM` asks the CRM itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from flows.tables import render_table
from store import status

# The store keeps no count of CRM requests: the connectors read the CRM's own figures
# (HubSpot's daily usage, Salesforce's Sforce-Limit-Info) and keep them in memory only.
QUOTA_NOT_RECORDED = (
    "the store keeps no count of CRM requests; `mqlsync doctor {crm}` asks the CRM for today's use"
)
FAILING_SHOWN = 20  # rows of the text table; --json lists them all


def status_report(engine: Engine, crm: str, now: datetime, runs: int = 10) -> dict[str, Any]:
    """Everything `status` shows, as plain data (instants stay `datetime`s)."""
    return {
        "crm": crm,
        "now": now,
        "runs": [
            {
                "flow_run_id": r.flow_run_id,
                "first_at": r.first_at,
                "last_at": r.last_at,
                "decisions": r.decisions,
                "writes": r.writes,
                "failures": r.failures,
            }
            for r in status.last_runs(engine, crm, runs)
        ],
        "cursors": [
            {
                "object": c.object,
                "value": c.value,
                "age_s": _seconds(now, c.value),
                "updated_at": c.updated_at,
                "updated_age_s": _seconds(now, c.updated_at),
            }
            for c in status.cursors(engine, crm)
        ],
        "claims": [
            {
                "kind": c.kind,
                "contact_id": c.contact_id,
                "key": c.key,
                "owner": c.owner,
                "since": c.since,
                "age_s": _seconds(now, c.since),
            }
            for c in status.claims_in_progress(engine, crm)
        ],
        "failing_writes": [
            {
                "contact_id": f.contact_id,
                "failures": f.failures,
                "last_at": f.last_at,
                "last_action": f.last_action,
                "last_outcome": f.last_outcome,
                "last_message": f.last_message,
            }
            for f in status.failing_writes(engine, crm)
        ],
        "quota_today": {
            "recorded": False,
            "used": None,
            "note": QUOTA_NOT_RECORDED.format(crm=crm),
        },
    }


def status_json(engine: Engine, crm: str, now: datetime, runs: int = 10) -> str:
    return json.dumps(status_report(engine, crm, now, runs), indent=2, default=_instant)


def status_text(engine: Engine, crm: str, now: datetime, runs: int = 10) -> str:
    return render_text(status_report(engine, crm, now, runs))


def render_text(report: dict[str, Any]) -> str:
    crm = report["crm"]
    lines = [f"{crm} as of {_when(report['now'])} UTC, from the store (no CRM request)"]
    lines += _section(
        "last runs",
        ["run", "first", "last", "decisions", "writes", "failed"],
        [
            [
                r["flow_run_id"] or "(no run id)",
                _when(r["first_at"]),
                _when(r["last_at"]),
                str(r["decisions"]),
                str(r["writes"]),
                str(r["failures"]),
            ]
            for r in report["runs"]
        ],
        "no run has recorded anything yet",
    )
    lines += _section(
        "cursors",
        ["object", "up to", "behind", "moved"],
        [
            [
                c["object"],
                _when(c["value"]),
                _age(c["age_s"]),
                f"{_age(c['updated_age_s'])} ago" if c["updated_at"] else "-",
            ]
            for c in report["cursors"]
        ],
        "none: no pull has finished yet",
    )
    lines += _section(
        "claims in progress",
        ["kind", "contact", "key", "owner", "since", "age"],
        [
            [
                c["kind"],
                c["contact_id"],
                c["key"] or "-",
                c["owner"] or "(given back)",
                _when(c["since"]),
                _age(c["age_s"]),
            ]
            for c in report["claims"]
        ],
        "none",
    )
    failing = report["failing_writes"]
    lines += _section(
        "contacts whose writes keep failing (the next sync retries them)",
        ["contact", "failed", "last", "action", "error"],
        [
            [
                f["contact_id"],
                str(f["failures"]),
                _when(f["last_at"]),
                f["last_action"] or "-",
                _error(f),
            ]
            for f in failing[:FAILING_SHOWN]
        ],
        "none",
    )
    if len(failing) > FAILING_SHOWN:
        lines.append(f"... and {len(failing) - FAILING_SHOWN} more (--json lists them all)")
    quota = report["quota_today"]
    used = f"{quota['used']:,}" if quota["recorded"] else f"not recorded ({quota['note']})"
    lines += ["", f"quota used today: {used}"]
    return "\n".join(lines)


def _section(title: str, headers: list[str], rows: list[list[str]], empty: str) -> list[str]:
    if not rows:
        return ["", f"{title}: {empty}"]
    return ["", title, render_table(headers, rows)]


def _error(failing: dict[str, Any]) -> str:
    if failing["last_outcome"] is None:
        return "(no failed write in the audit log)"
    return str(failing["last_message"] or failing["last_outcome"])[:100]


def _seconds(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds()


def _age(seconds: float | None) -> str:
    """A duration as a person reads it: 45s, 12m, 3h 05m, 2d 04h."""
    if seconds is None:
        return "-"
    sign, total = ("-" if seconds < 0 else ""), int(abs(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours:02d}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    elif minutes:
        text = f"{minutes}m"
    else:
        text = f"{secs}s"
    return sign + text


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _instant(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
