"""The MQL funnel from hand-built audit rows with known dates, on SQLite and PostgreSQL:
each contact once per window by its latest verdict, retried promotions one MQL, grades
from the decision or else the scores table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from store import audit
from store.audit import AuditEvent
from store.funnel import Funnel, funnel, funnel_by_grade, funnel_by_month, mqls_between
from store.tables import ScoreRow

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def promoted(contact: str, grade: str | None, n: int = 1, crm: str = "hubspot") -> AuditEvent:
    detail: dict[str, Any] = {"total": 80.0, "is_mql": True, "target_stage": "mql",
                              "planned": {"handoff": f"{crm}:{contact}:mql:{n}"}}  # fmt: skip
    if grade is not None:
        detail["grade"] = grade
    return AuditEvent(crm, contact, "decision", "promoted_to_mql", detail=detail)


def recycled(contact: str) -> AuditEvent:
    return AuditEvent("hubspot", contact, "decision", "recycled", detail={"grade": "B"})


def accepted(contact: str, converted: bool = False) -> AuditEvent:
    detail: dict[str, Any] = {"stage": "sql"}
    if converted:
        detail = {"converted_to": f"003{contact}", "converted_at": "2026-06-03T09:00:00+00:00"}
    return AuditEvent("hubspot", contact, "feedback", "accepted", detail=detail)


# When each event was recorded; the comments say what each contact tests.
HISTORY: list[tuple[datetime, AuditEvent]] = [
    (at("2026-06-01"), promoted("a1", "A")),  # accepted
    (at("2026-06-05"), accepted("a1")),
    (at("2026-05-20"), promoted("a2", "B")),  # rejected
    (at("2026-05-25"), recycled("a2")),
    (at("2026-06-10"), promoted("a3", "A")),  # open
    # Recycled in April, earned MQL again in May and accepted; no grade recorded: the
    # scores table's grade (C).
    (at("2026-04-01"), promoted("a4", None, 1)),
    (at("2026-04-10"), recycled("a4")),
    (at("2026-05-01"), promoted("a4", None, 2)),
    (at("2026-05-30"), accepted("a4")),
    # Promoted twice for one handoff (a stage move retried), recycled, then converted:
    # one MQL, accepted.
    (at("2026-05-18"), promoted("a5", "D")),
    (at("2026-05-19"), promoted("a5", "D")),
    (at("2026-06-02"), recycled("a5")),
    (at("2026-06-03 10:00"), accepted("a5", converted=True)),
    # Began in February; promoted again in April for the same handoff: February's MQL.
    (at("2026-02-10"), promoted("a6", "A")),
    (at("2026-04-05"), promoted("a6", "A")),
    # Open since March, then promoted for a new handoff in May: a new MQL in May.
    (at("2026-03-01"), promoted("a7", "B", 1)),
    (at("2026-05-20"), promoted("a7", "B", 2)),
    (at("2026-06-01"), accepted("a8")),  # accepted, never an MQL here: not counted
    (at("2026-06-12"), promoted("a9", None)),  # no grade anywhere: unknown; rejected
    (at("2026-06-13"), recycled("a9")),
    (at("2026-05-01"), recycled("a10")),  # a verdict before its promotion is not on it
    (at("2026-05-20"), promoted("a10", "C")),
    (NOW - timedelta(days=30), promoted("a11", "A")),  # on the window's first instant
    (NOW, promoted("a12", "A")),  # on the window's end: outside it
    (at("2026-06-01"), promoted("s1", "A", crm="salesforce")),  # another CRM
]


def build_history(engine: Engine, history: list[tuple[datetime, AuditEvent]] = HISTORY) -> None:
    for when, event in history:
        audit.record(engine, [event], None, when)
    with engine.begin() as connection:
        connection.execute(
            insert(ScoreRow),
            [
                {"crm": "hubspot", "crm_id": crm_id, "fit": 30.0, "engagement": 40.0,
                 "total": 70.0, "grade": grade, "is_mql": True, "model_version": "1",
                 "reasons": [], "written": {}, "mql_transitions": 1, "needs_write": False}
                for crm_id, grade in (("a4", "C"), ("a1", "D"))
            ],
        )  # fmt: skip


def test_the_last_30_and_90_days(engine: Engine) -> None:
    build_history(engine)
    last_30 = funnel(engine, "hubspot", NOW - timedelta(days=30), NOW)
    assert last_30 == Funnel(mqls=8, accepted=2, rejected=2)
    assert last_30.open == 4 and last_30.decided == 4
    assert last_30.conversion == 0.25 and last_30.acceptance == 0.5
    last_90 = funnel(engine, "hubspot", NOW - timedelta(days=90), NOW)
    assert last_90 == Funnel(mqls=9, accepted=3, rejected=2)
    assert funnel(engine, "salesforce", NOW - timedelta(days=30), NOW) == Funnel(mqls=1)


def test_each_contact_once_by_its_latest_mql(engine: Engine) -> None:
    build_history(engine)
    mqls = {m.contact_id: m for m in mqls_between(engine, "hubspot", at("2026-01-01"), NOW)}
    assert set(mqls) == {f"a{i}" for i in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11)}
    assert mqls["a4"].promoted_at == at("2026-05-01") and mqls["a4"].verdict == "accepted"
    assert mqls["a5"].promoted_at == at("2026-05-18") and mqls["a5"].verdict == "accepted"
    assert mqls["a6"].promoted_at == at("2026-02-10") and mqls["a6"].verdict is None
    assert mqls["a7"].promoted_at == at("2026-05-20") and mqls["a7"].verdict is None
    assert mqls["a10"].verdict is None


def test_by_grade_at_promotion(engine: Engine) -> None:
    build_history(engine)
    by_grade = funnel_by_grade(engine, "hubspot", NOW - timedelta(days=90), NOW)
    assert list(by_grade) == ["A", "B", "C", "D", "unknown"]
    assert by_grade == {
        "A": Funnel(mqls=3, accepted=1),  # a1's grade then, not its current D
        "B": Funnel(mqls=2, rejected=1),
        "C": Funnel(mqls=2, accepted=1),  # a4 from the scores table
        "D": Funnel(mqls=1, accepted=1),
        "unknown": Funnel(mqls=1, rejected=1),
    }


def test_by_month(engine: Engine) -> None:
    build_history(engine)
    assert funnel_by_month(engine, "hubspot", 6, NOW) == [
        ("2026-01", Funnel()),
        ("2026-02", Funnel(mqls=1)),
        ("2026-03", Funnel(mqls=1)),
        ("2026-04", Funnel(mqls=1, rejected=1)),
        ("2026-05", Funnel(mqls=6, accepted=2, rejected=1)),
        ("2026-06", Funnel(mqls=3, accepted=1, rejected=1)),
    ]
    across_new_year = funnel_by_month(engine, "hubspot", 3, at("2026-02-11"))
    assert [month for month, _ in across_new_year] == ["2025-12", "2026-01", "2026-02"]
    assert across_new_year[-1][1] == Funnel(mqls=1)
    with pytest.raises(ValueError, match="at least 1"):
        funnel_by_month(engine, "hubspot", 0, NOW)


def test_an_empty_log(engine: Engine) -> None:
    empty = funnel(engine, "hubspot", NOW - timedelta(days=90), NOW)
    assert empty == Funnel() and empty.conversion is None and empty.acceptance is None
    assert funnel_by_grade(engine, "hubspot", NOW - timedelta(days=90), NOW) == {}
    assert funnel_by_month(engine, "hubspot", 2, NOW) == [
        ("2026-05", Funnel()),
        ("2026-06", Funnel()),
    ]
