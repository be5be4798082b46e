"""Load a history to judge a model against: contacts, activities and outcomes.

Contacts and activities are JSON Lines in the format `mqlsync score` reads. Outcomes are
a CSV with the header `crm_id,converted,converted_at`. A bad line or row is reported as
`file:line: problem` and skipped; the rest are used.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from flows.records_io import LineErrors, read_activities, read_contacts
from scoring.records import Activity, Contact, Crm
from store import audit, mirror

OUTCOME_HEADER = ("crm_id", "converted", "converted_at")
TRUE_WORDS = frozenset({"1", "true", "yes"})
FALSE_WORDS = frozenset({"0", "false", "no"})


class OutcomesFileError(ValueError):
    """The outcomes file cannot be read at all (unreadable, no header, wrong header)."""


@dataclass(frozen=True)
class Outcome:
    crm_id: str
    converted: bool
    converted_at: datetime | None


@dataclass(frozen=True)
class Dataset:
    contacts: list[Contact]
    activities: dict[str, list[Activity]]  # by contact id, in file order
    outcomes: dict[str, Outcome]  # by contact id; a contact not here did not convert
    problems: list[str] = field(default_factory=list)  # `file:line: problem`


def load_dataset(
    contacts: Path, activities: Path, outcomes: Path | None, crm: str = "hubspot"
) -> Dataset:
    """Read the three files; every bad line or row is a problem, the rest are kept.

    A contact id seen twice keeps its first line; an outcome for an id that is not among
    the contacts is a problem too (it is kept out of the judgement).
    """
    errors = LineErrors()
    by_contact: dict[str, list[Activity]] = defaultdict(list)
    for activity in read_activities(activities, errors, crm):
        by_contact[activity.contact_id].append(activity)
    kept: dict[str, Contact] = {}
    repeated: set[str] = set()
    for contact in read_contacts(contacts, errors, crm):
        if contact.crm_id in kept:
            repeated.add(contact.crm_id)
            continue
        kept[contact.crm_id] = contact
    problems = list(errors.messages)
    problems.extend(_repeat_problems(contacts, repeated))
    known: dict[str, Outcome] = {}
    if outcomes is not None:
        located, outcome_problems = _located_outcomes(outcomes)
        for crm_id, (outcome, line_no) in located.items():
            if crm_id in kept:
                known[crm_id] = outcome
            else:
                outcome_problems.append(
                    (line_no, f"contact {crm_id!r} is not in {contacts}; skipped")
                )
        problems.extend(f"{outcomes}:{line}: {text}" for line, text in sorted(outcome_problems))
    return Dataset(
        contacts=list(kept.values()),
        activities=dict(by_contact),
        outcomes=known,
        problems=problems,
    )


def load_outcomes(path: Path) -> tuple[dict[str, Outcome], list[str]]:
    """Outcomes by contact id, and every bad row as `FILE:LINE: problem` (skipped).

    `converted` is 1/0, true/false or yes/no (any case); `converted_at` is optional ISO
    8601 (a date alone is midnight UTC, a time without zone is UTC). A converted_at on a
    row that did not convert is a contradiction and the row is skipped. A duplicate id
    keeps its first row. Raises `OutcomesFileError` when the file cannot be read or its
    header is not `crm_id,converted,converted_at`.
    """
    located, problems = _located_outcomes(path)
    outcomes = {crm_id: outcome for crm_id, (outcome, _) in located.items()}
    return outcomes, [f"{path}:{line}: {text}" for line, text in problems]


def parse_when(text: str) -> datetime:
    """An ISO 8601 date or instant; a date is midnight UTC, a naive time is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or instant: {text.strip()!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _located_outcomes(
    path: Path,
) -> tuple[dict[str, tuple[Outcome, int]], list[tuple[int, str]]]:
    """Outcomes with the line each came from, and the problems with theirs."""
    outcomes: dict[str, tuple[Outcome, int]] = {}
    problems: list[tuple[int, str]] = []
    for line_no, cells in _read_rows(path):
        outcome, problem = _parse_row(cells)
        if outcome is not None and outcome.crm_id in outcomes:
            first = outcomes[outcome.crm_id][1]
            problem = f"contact {outcome.crm_id!r} appears again (first on line {first}); skipped"
        if outcome is None or problem is not None:
            problems.append((line_no, str(problem)))
            continue
        outcomes[outcome.crm_id] = (outcome, line_no)
    return outcomes, problems


def _repeat_problems(path: Path, repeated: set[str]) -> list[str]:
    """`file:line` problems for the second and later lines of each contact id repeated."""
    if not repeated:
        return []
    seen: dict[str, int] = {}
    problems: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                crm_id = json.loads(line).get("crm_id")
            except (json.JSONDecodeError, AttributeError):
                continue
            if crm_id not in repeated:
                continue
            if crm_id in seen:
                problems.append(
                    f"{path}:{line_no}: contact {crm_id!r} appears again (first on line "
                    f"{seen[crm_id]}); skipped"
                )
            else:
                seen[crm_id] = line_no
    return problems


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise OutcomesFileError(
                    f"{path}: empty; expected the header {','.join(OUTCOME_HEADER)}"
                )
            names = tuple(name.strip().lower() for name in header)
            if names != OUTCOME_HEADER:
                raise OutcomesFileError(
                    f"{path}:1: the header is {','.join(header)!r}; expected "
                    f"{','.join(OUTCOME_HEADER)}"
                )
            return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except OSError as exc:
        raise OutcomesFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise OutcomesFileError(f"{path}: not a readable CSV file: {exc}") from None


def _parse_row(cells: list[str]) -> tuple[Outcome | None, str | None]:
    if len(cells) not in (2, 3):
        return None, f"expected 3 columns ({','.join(OUTCOME_HEADER)}), found {len(cells)}"
    crm_id = cells[0].strip()
    if not crm_id:
        return None, "empty crm_id"
    word = cells[1].strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        return None, f"contact {crm_id!r}: converted {cells[1]!r} is not 1/0, true/false, yes/no"
    converted = word in TRUE_WORDS
    when_text = cells[2].strip() if len(cells) == 3 else ""
    converted_at: datetime | None = None
    if when_text:
        try:
            converted_at = parse_when(when_text)
        except ValueError as exc:
            return None, f"contact {crm_id!r}: converted_at: {exc}"
        if not converted:
            return None, f"contact {crm_id!r}: converted_at given but converted is {cells[1]!r}"
    return Outcome(crm_id=crm_id, converted=converted, converted_at=converted_at), None


def report_problems(dataset: Dataset, warn: Callable[[str], None]) -> None:
    """Each bad line or row as `file:line: ...`, then how many were skipped."""
    for problem in dataset.problems:
        warn(problem)
    if dataset.problems:
        warn(f"{len(dataset.problems)} line(s) or row(s) skipped; the rest are used")


class HistorySourceError(OutcomesFileError):
    """Files given in part: the history is the three files, or the store's."""


def read_history(
    contacts: Path | None, activities: Path | None, outcomes: Path | None, crm: str
) -> Dataset:
    """The files' history, or with none given, the store's history of `crm`."""
    if contacts is None and activities is None and outcomes is None:
        from flows import runtime

        return store_history(runtime.store_engine(), crm)
    if contacts is None or activities is None:
        raise HistorySourceError(
            "give --contacts and --activities (with --outcomes), or none of them to use "
            "the store's history of --crm"
        )
    return load_dataset(contacts, activities, outcomes, crm)


def store_history(engine: Engine, crm: str) -> Dataset:
    """The store's live contacts and their activities, with dated outcomes: the day the
    CRM says sales accepted each (HubSpot's SQL date, a lead's conversion), or else the
    day a sync first read them at SQL, from the audit log. The earliest counts.

    A converted lead is judged as the Contact it became: the person existed since the
    lead was created, and the lead's activities are theirs (without this, every lead
    sales converted would leave the history, a Contact created at the conversion never
    having existed at a cut before it).
    """
    which = Crm(crm)
    ids = mirror.live_contact_ids(engine, which)
    live = set(ids)
    contacts = mirror.load_contacts(engine, which, ids)
    activities = mirror.load_activities(engine, which, ids)
    accepted = audit.acceptances(engine, crm)
    for contact in contacts:
        if contact.accepted_at is not None:
            audit.keep_earliest(accepted, contact.crm_id, contact.accepted_at)
    became = {lead: into for lead, into in audit.conversions(engine, crm).items() if into in live}
    if became:
        contacts = _with_their_leads(engine, which, contacts, activities, became)
    return Dataset(
        contacts=contacts,
        activities=activities,
        outcomes={
            crm_id: Outcome(crm_id=crm_id, converted=True, converted_at=at)
            for crm_id, at in accepted.items()
            if crm_id in live
        },
    )


def _with_their_leads(
    engine: Engine,
    crm: Crm,
    contacts: list[Contact],
    activities: dict[str, list[Activity]],
    became: dict[str, str],
) -> list[Contact]:
    """`contacts`, each Contact a lead became dated from the lead's creation, and the
    leads' activities added to theirs (`activities` is updated in place)."""
    leads = mirror.load_contacts(engine, crm, sorted(became), deleted=True)
    created = {lead.crm_id: lead.created_at for lead in leads}
    for lead_id, items in mirror.load_activities(engine, crm, sorted(became)).items():
        into = activities.setdefault(became[lead_id], [])
        seen = {a.crm_id for a in into}
        into.extend(a.model_copy(update={"contact_id": became[lead_id]}) for a in items
                    if a.crm_id not in seen)  # fmt: skip
    earliest: dict[str, datetime] = {}
    for lead_id, contact_id in became.items():
        at = created.get(lead_id)
        if at is not None:
            audit.keep_earliest(earliest, contact_id, at)
    return [
        c.model_copy(update={"created_at": earliest[c.crm_id]})
        if c.crm_id in earliest and (c.created_at is None or earliest[c.crm_id] < c.created_at)
        else c
        for c in contacts
    ]
