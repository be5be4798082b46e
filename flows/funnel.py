"""The MQL funnel for people: the sync summary's lines, the band check, and the tables of
`mqlsync conversion`.

Conversion is MQL -> SQL over the MQLs handed over (`store.funnel.Funnel.conversion`),
judged against the healthy band `mqlsync backtest` uses, over the last 90 days, once sales
has decided on enough MQLs for the figure to mean something.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from flows.tables import render_table
from scoring.backtest import DEFAULT_BAND
from store.funnel import Funnel, funnel, funnel_by_grade, funnel_by_month

BAND = DEFAULT_BAND
WINDOWS_DAYS = (30, 90)
JUDGED_DAYS = 90
# Judged only once sales has decided on this many of the window's MQLs: fewer is too little
# evidence, and a window of mostly young, open MQLs reads low.
MIN_DECIDED = 20
MONTHS = 12


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def funnel_line(days: int, figures: Funnel) -> str:
    """One summary line: the window's MQLs, what sales made of them, and the conversion."""
    return (
        f"- funnel, last {days} days: {figures.mqls} MQLs, {figures.accepted} accepted, "
        f"{figures.rejected} rejected or recycled, {figures.open} open; "
        f"conversion {percent(figures.conversion)}"
    )


def band_warning(
    figures: Funnel,
    days: int = JUDGED_DAYS,
    band: tuple[float, float] = BAND,
    min_decided: int = MIN_DECIDED,
) -> str | None:
    """A warning line when conversion is outside the band; None inside it or undecided."""
    rate = figures.conversion
    if figures.decided < min_decided or rate is None:
        return None
    low, high = band
    where = f"{days}-day conversion {percent(rate)} ({figures.accepted} of {figures.mqls} MQLs)"
    healthy = f"the healthy {low:.0%}-{high:.0%} band"
    if rate > high:
        return (
            f"- warning: {where} is above {healthy}: sales receives too few MQLs; raise reach "
            "by lowering the MQL threshold (`mqlsync backtest` recommends one inside the band)"
        )
    if rate < low:
        return (
            f"- warning: {where} is below {healthy}: too many weak MQLs reach sales; raise "
            "the MQL threshold (`mqlsync backtest` recommends one inside the band)"
        )
    return None


def up_to(now: datetime) -> datetime:
    """The end of a window that takes in `now` itself (windows are `[since, until)`).

    A run on a pinned clock (MQLSYNC_FIXED_NOW) records its own promotions at exactly
    `now`; a window ending at `now` would leave them out.
    """
    return now + timedelta(microseconds=1)


def recent(engine: Engine, crm: str, now: datetime) -> tuple[list[tuple[int, Funnel]], str | None]:
    """The funnel of each window (last 30 and 90 days, `now` included), and the warning
    line when the judged window's conversion leaves the band."""
    windows = [
        (days, funnel(engine, crm, now - timedelta(days=days), up_to(now))) for days in WINDOWS_DAYS
    ]
    judged = dict(windows)[JUDGED_DAYS]
    return windows, band_warning(judged, JUDGED_DAYS)


def summary_lines(engine: Engine, crm: str, now: datetime) -> list[str]:
    """The funnel of the last 30 and 90 days, and a warning when conversion leaves the band."""
    windows, warning = recent(engine, crm, now)
    return [funnel_line(days, figures) for days, figures in windows] + (
        [warning] if warning else []
    )


def conversion_tables(
    engine: Engine, crm: str, now: datetime, months: int = MONTHS, days: int = JUDGED_DAYS
) -> str:
    """`mqlsync conversion`'s tables: by month of promotion, and by grade over `days`."""
    headers = ["MQLs", "accepted", "rejected or recycled", "open", "conversion", "of decided"]
    by_month = [
        [month, *_cells(figures)]
        for month, figures in funnel_by_month(engine, crm, months, up_to(now))
    ]
    by_grade = [
        [grade, *_cells(figures)]
        for grade, figures in funnel_by_grade(
            engine, crm, now - timedelta(days=days), up_to(now)
        ).items()
    ]
    total = funnel(engine, crm, now - timedelta(days=days), up_to(now))
    by_grade.append(["all", *_cells(total)])
    warning = band_warning(total, days)
    low, high = BAND
    return "\n".join(
        [
            f"By month of promotion, last {months} (verdicts so far):",
            render_table(["month", *headers], by_month),
            "",
            f"By grade at promotion, last {days} days:",
            render_table(["grade", *headers], by_grade),
            "",
            f"conversion: accepted / MQLs (healthy {low:.0%}-{high:.0%}); "
            "of decided: accepted / (accepted + rejected)",
            *([warning.removeprefix("- ")] if warning else []),
        ]
    )


def _cells(figures: Funnel) -> list[str]:
    return [
        str(figures.mqls),
        str(figures.accepted),
        str(figures.rejected),
        str(figures.open),
        percent(figures.conversion),
        percent(figures.acceptance),
    ]
