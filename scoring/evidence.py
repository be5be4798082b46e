"""Evidence in words: how a reason's activities read to a person, the same everywhere.

A reason names its evidence by activity id (or, for a fit rule, `field=value`). The sales
task, `mqlsync explain` and `mqlsync score --explain` all describe it with these two
functions: "2026-10-12 demo request: pricing page".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scoring.records import Activity


def describe_activity(activity: Activity) -> str:
    """Its date, its kind (as the CRM named it, where it did) and what it was about."""
    detail = (
        activity.asset or activity.form or activity.campaign or activity.url or activity.subject
    )
    when = activity.occurred_at.date().isoformat()
    label = activity.raw_type or activity.type.value
    return f"{when} {label.replace('_', ' ')}" + (f": {detail}" if detail else "")


def describe_evidence(
    evidence: Sequence[str], activities: Mapping[str, Activity], last: int | None = None
) -> str:
    """The evidence items in words, joined; an item that is no known activity as it is.

    With `last`, only the latest `last` items, and how many more there were.
    """
    shown = list(evidence if last is None else evidence[-last:])
    described = [describe_activity(activities[i]) if i in activities else i for i in shown]
    more = len(evidence) - len(shown)
    return "; ".join(described) + (f" (and {more} more)" if more > 0 else "")
