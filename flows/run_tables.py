"""The tables of a run's report: its new MQLs, its failures with what to do, the score
distribution and the funnel.

A dry run's figures come from its plan (`ApplyReport.scored`, `ApplyReport.mql_rows`):
nothing of it is recorded. A run that writes records every score it makes, with its flow
run, before it writes anything: its figures come from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from flows import funnel
from flows.apply_report import AssessedMql, Failure, Scored, TaskCreated, assessed_mql
from flows.explain import TaskLinks
from scoring.records import Contact, Crm, Reason
from store import mirror, reports, scores
from store.chunking import in_chunks
from store.tables import ScoreHistoryRow

PLANNED = "(planned) "  # how a dry run's `TaskCreated` names the task it would create
BAND = 10  # points per band of the score distribution
BAR = 30  # characters of the longest bar


# --- scores --------------------------------------------------------------------------


def scored_in_run(engine: Engine, crm: str, flow_run_id: str) -> list[Scored]:
    """Each contact's latest score recorded by this flow run (a retried batch scores twice)."""
    query = (
        select(
            col(ScoreHistoryRow.crm_id),
            col(ScoreHistoryRow.total),
            col(ScoreHistoryRow.is_mql),
            col(ScoreHistoryRow.as_of),
        )
        .where(col(ScoreHistoryRow.crm) == crm, col(ScoreHistoryRow.flow_run_id) == flow_run_id)
        .order_by(col(ScoreHistoryRow.id))
    )
    latest: dict[str, Scored] = {}
    with engine.connect() as connection:
        for crm_id, total, is_mql, as_of in connection.execute(query):
            latest[crm_id] = Scored(crm_id, total, bool(is_mql), as_of)
    return list(latest.values())


def distinct(scored: Iterable[Scored]) -> list[Scored]:
    """One score per contact, the last one made."""
    return list({s.contact_id: s for s in scored}.values())


def band_of(total: float) -> int:
    """The band's lowest score: by the score as written to the CRM (rounded)."""
    return (round(total) // BAND) * BAND


def distribution_lines(scored: Sequence[Scored], dry_run: bool) -> list[str]:
    """A markdown table: contacts (and MQLs among them) per band of 10 points."""
    if not scored:
        return ["No contact scored in this run."]
    counts: dict[int, list[int]] = {}
    for item in scored:
        tally = counts.setdefault(band_of(item.total), [0, 0])
        tally[0] += 1
        tally[1] += int(item.is_mql)
    low, high = min(counts), max(counts)
    widest = max(n for n, _ in counts.values())
    mqls = "would be MQLs" if dry_run else "MQLs"
    lines = [f"| score | contacts | {mqls} | |", "|---:|---:|---:|:---|"]
    for band in range(low, high + 1, BAND):
        n, m = counts.get(band, [0, 0])
        bar = "█" * max(1, round(BAR * n / widest)) if n else ""
        lines.append(f"| {band} to {band + BAND - 1} | {n} | {m} | {bar} |")
    return lines


# --- new MQLs --------------------------------------------------------------------------


@dataclass(frozen=True)
class MqlRow:
    """One row of the new-MQL table, with the task as the run left it."""

    mql: AssessedMql
    task: str  # the task id, or what stands for it ("would create", "pending: ...")
    link: str  # "" where none can be built


def mqls_from_store(engine: Engine, crm: Crm, ids: Sequence[str]) -> dict[str, AssessedMql]:
    """The new MQLs of a run that wrote, from what it recorded: contact, score, evidence."""
    ids = list(dict.fromkeys(ids))
    contacts = _contacts(engine, crm, ids)
    activities = mirror.load_activities(engine, crm, ids)
    stored = scores.scores_of(engine, crm.value, ids)
    rows: dict[str, AssessedMql] = {}
    for crm_id in ids:
        contact = contacts.get(crm_id) or Contact(crm=crm, crm_id=crm_id)
        current = stored.get(crm_id)
        if current is None:
            rows[crm_id] = assessed_mql(contact, None, [])
            continue
        rows[crm_id] = assessed_mql(
            contact,
            None,
            activities.get(crm_id, []),
            total=current["total"],
            grade=current["grade"],
            reasons=[Reason.model_validate(r) for r in current["reasons"] or []],
            as_of=current["as_of"],
        )
    return rows


def mql_rows(
    engine: Engine | None,
    crm: Crm,
    mqls: Mapping[str, AssessedMql],
    tasks: Sequence[TaskCreated],
    links: TaskLinks,
) -> list[MqlRow]:
    """The new MQLs, best score first, each with its task (this run's, else the store's)."""
    made = {contact: task for contact, task in tasks}
    # The store's tasks for the MQLs this run made none for, read at once.
    unmade = [crm_id for crm_id in mqls if crm_id not in made]
    stored = reports.last_task_ids(engine, crm.value, unmade) if engine and unmade else {}
    rows: list[MqlRow] = []
    for crm_id, mql in mqls.items():
        task = made.get(crm_id) or stored.get(crm_id)
        if task is None:
            rows.append(MqlRow(mql, "pending: no task yet, the next sync creates it", ""))
        elif task.startswith(PLANNED):
            rows.append(MqlRow(mql, f"would create ({task.removeprefix(PLANNED)})", ""))
        else:
            rows.append(MqlRow(mql, task, links.link(crm.value, task) or ""))
    return sorted(rows, key=lambda r: (-r.mql.total, r.mql.contact.display_name.lower()))


def reasons_text(mql: AssessedMql, top: int) -> str:
    """The weightiest reasons, each its rule id, points and evidence in words."""
    return " · ".join(
        f"{r.rule} ({r.points:+g})" + (f": {r.evidence}" if r.evidence else "")
        for r in mql.reasons[:top]
    )


def mql_table(rows: Sequence[MqlRow], top: int) -> list[dict[str, Any]]:
    """The rows of the new-MQL table artifact."""
    return [
        {
            "name": row.mql.contact.display_name,
            "email": row.mql.contact.email or "",
            "company": row.mql.contact.company or "",
            "score": round(row.mql.total),
            "grade": row.mql.grade,
            "top reasons": reasons_text(row.mql, top),
            "task": row.task,
            "link": row.link,
            "contact id": row.mql.contact.crm_id,
        }
        for row in rows
    ]


def mql_lines(rows: Sequence[MqlRow], shown: int) -> list[str]:
    """The best new MQLs as a markdown table, for the summary."""
    lines = ["| name | email | company | score | grade | task |", "|---|---|---|---:|---|---|"]
    for row in rows[:shown]:
        contact = row.mql.contact
        cells = [contact.display_name, contact.email or "", contact.company or ""]
        cells += [str(round(row.mql.total)), row.mql.grade, row.task]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


# --- failures --------------------------------------------------------------------------

ACTIONS = {
    "update": "write the score fields",
    "stage": "move the lifecycle stage",
    "task": "create the sales task",
}
REMEDIES = {
    "update": "nothing to do: the contact is marked for a retry and the next sync writes its "
    "values again",
    "stage": "nothing to do: the next sync moves the stage again (a move that may have "
    "landed is finished first)",
    "task": "nothing to do: the handoff stays claimed; the next sync looks the task up by "
    "its key and creates it if it is missing",
}
STILL_FAILING = (
    "If the same contact fails again, `mqlsync explain <contact id>` shows its history and "
    "`mqlsync doctor` checks the credentials and the account."
)


def remedy(failure: Failure) -> str:
    """What to do about one failed write: mostly nothing, the next sync retries it."""
    return REMEDIES.get(failure.action, "the next sync scores this contact again")


def failure_table(failures: Sequence[Failure], names: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "contact id": f.contact_id,
            "name": names.get(f.contact_id, ""),
            "failed to": ACTIONS.get(f.action, f.action),
            "message": f.message[:300],
            "what to do": remedy(f),
        }
        for f in failures
    ]


def failure_lines(failures: Sequence[Failure], names: Mapping[str, str], shown: int) -> list[str]:
    lines = [
        f"- {f.contact_id}" + (f" ({names[f.contact_id]})" if names.get(f.contact_id) else "")
        + f": failed to {ACTIONS.get(f.action, f.action)}: {_code(f.message[:200])}"
        + f". {remedy(f)[:1].upper()}{remedy(f)[1:]}"
        for f in failures[:shown]
    ]  # fmt: skip
    return [*lines, STILL_FAILING]


def display_names(engine: Engine | None, crm: Crm, ids: Iterable[str]) -> dict[str, str]:
    if engine is None:
        return {}
    return {i: c.display_name for i, c in _contacts(engine, crm, sorted(set(ids))).items()}


def _contacts(engine: Engine, crm: Crm, ids: Sequence[str]) -> dict[str, Contact]:
    """The contacts by id, those deleted since included (rare: they are still shown)."""
    found: dict[str, Contact] = {}
    for chunk in in_chunks(ids):
        for deleted in (False, True):
            found.update(
                {c.crm_id: c for c in mirror.load_contacts(engine, crm, chunk, deleted=deleted)}
            )
    return found


# --- the funnel ------------------------------------------------------------------------


def funnel_lines(engine: Engine, crm: str, now: datetime) -> list[str]:
    """The funnel of the last 30 and 90 days as a markdown table, and a warning line when
    the 90-day conversion leaves the healthy band (logged too: it fails nothing)."""
    try:
        rows, warning = funnel.recent(engine, crm, now)
    except Exception as exc:  # the figures are a report; the run's work is done either way
        # The error's type only: a store's error text may carry its URL, password included.
        return [f"- funnel: not available (the store did not answer: {type(exc).__name__})"]
    lines = [
        "| window | MQLs | accepted | rejected or recycled | open | conversion |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| last {days} days | {f.mqls} | {f.accepted} | {f.rejected} | {f.open} | "
            f"{funnel.percent(f.conversion)} |"
            for days, f in rows
        ),
    ]
    if warning:
        from prefect import get_run_logger
        from prefect.exceptions import MissingContextError

        with suppress(MissingContextError):
            get_run_logger().warning("%s: %s", crm, warning.removeprefix("- warning: "))
        lines += ["", warning]
    return lines


def _cell(text: str) -> str:
    """Text safe inside a markdown table's cell."""
    return text.replace("|", "\\|").replace("<", "\\<").replace("\n", " ")


def _code(text: str) -> str:
    """A CRM's message as inline code: its markup (an HTML error page) shown, not rendered."""
    flat = " ".join(text.replace("`", "'").split())
    return f"`{flat}`" if flat else "(no message)"
