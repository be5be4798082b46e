"""Replay a history through scoring models at cut dates, and report how they did.

At each cut every contact that existed by then is scored from its activities up to the
cut, and labelled converted when it converted within the horizon after the cut. The
figures come from `scoring.backtest`; this module renders them as a terminal table,
`report.md`, `metrics.json` and two charts.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flows.history import Dataset
from flows.tables import render_table
from scoring.backtest import (
    DEFAULT_BAND,
    UNKNOWN_SOURCE,
    GroupFigures,
    ModelFigures,
    ScoredContact,
    baseline_auc,
    judge,
    label_at,
    unjudgeable,
)
from scoring.engine import compile_model
from scoring.model import ScoringModel
from scoring.records import Activity, Contact

EVERY_PATTERN = re.compile(r"^\s*(\d+)\s*([dw])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    """A contact at a cut, before any model scores it."""

    contact: Contact
    cut: datetime
    timeline: Sequence[Activity]  # all of the contact's activities, oldest first
    known: int  # how many of them happened up to the cut
    converted: bool
    lead_days: float | None

    @property
    def activities(self) -> Sequence[Activity]:
        """The activities up to the cut: all that scoring at the cut may see."""
        return self.timeline[: self.known]


@dataclass(frozen=True)
class ModelRun:
    label: str  # name@version, with the file when two models share it
    path: Path
    pooled: ModelFigures
    by_cut: list[tuple[datetime, ModelFigures]]


@dataclass
class Backtest:
    cuts: list[datetime]
    horizon_days: float
    band: tuple[float, float]
    contacts: int
    rows: int
    converters: int
    baseline: float | None
    baseline_by_cut: list[tuple[datetime, float | None]]
    models: list[ModelRun]
    notes: list[str] = field(default_factory=list)


class NotJudgeable(Exception):
    """The data cannot be judged; the message says why, `notes` what was left out."""

    def __init__(self, why: str, notes: Sequence[str] = ()) -> None:
        super().__init__(why)
        self.notes = list(notes)


def parse_every(text: str) -> timedelta:
    """A step between cuts: `30d` or `4w`."""
    found = EVERY_PATTERN.match(text)
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"{text!r}: expected a number of days or weeks, e.g. 30d or 4w")
    days = int(found.group(1)) * (7 if found.group(2).lower() == "w" else 1)
    return timedelta(days=days)


def cut_dates(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """From `start` to `end` (both included when the step lands on it), `every` apart."""
    if end < start:
        raise ValueError(f"the end {end.isoformat()} is before the start {start.isoformat()}")
    cuts: list[datetime] = []
    cut = start
    while cut <= end:
        cuts.append(cut)
        cut += every
    return cuts


def candidates(
    dataset: Dataset, cuts: Sequence[datetime], horizon_days: float
) -> tuple[list[Candidate], list[str]]:
    """Who is judged at each cut, with their label; and notes on who was left out.

    With several cuts a conversion without a date cannot be placed against them, so
    such contacts are left out (and noted); with one cut it is taken as given.
    """
    notes: list[str] = []
    undated = sorted(
        crm_id
        for crm_id, outcome in dataset.outcomes.items()
        if outcome.converted and outcome.converted_at is None
    )
    left_out: set[str] = set()
    if len(cuts) > 1 and undated:
        left_out = set(undated)
        shown = ", ".join(undated[:5]) + (", ..." if len(undated) > 5 else "")
        notes.append(
            f"{len(undated)} converted contact(s) without converted_at cannot be placed "
            f"against several cuts and are left out: {shown}"
        )
    timelines = {
        crm_id: sorted(items, key=lambda a: (a.occurred_at, a.crm_id))
        for crm_id, items in dataset.activities.items()
    }
    instants = {crm_id: [a.occurred_at for a in items] for crm_id, items in timelines.items()}
    result: list[Candidate] = []
    for cut in cuts:
        for contact in dataset.contacts:
            if contact.crm_id in left_out or not _existed(contact, cut):
                continue
            outcome = dataset.outcomes.get(contact.crm_id)
            label = (
                (False, None)
                if outcome is None
                else label_at(outcome.converted, outcome.converted_at, cut, horizon_days)
            )
            if label is None:
                continue
            timeline = timelines.get(contact.crm_id, [])
            upto = bisect.bisect_right(instants.get(contact.crm_id, []), cut)
            result.append(
                Candidate(
                    contact=contact,
                    cut=cut,
                    timeline=timeline,
                    known=upto,
                    converted=label[0],
                    lead_days=label[1],
                )
            )
    return result, notes


def score_candidates(model: ScoringModel, rows: Sequence[Candidate]) -> list[ScoredContact]:
    compiled = compile_model(model)
    scored: list[ScoredContact] = []
    for row in rows:
        result = compiled.score(row.contact, row.activities, row.cut)
        scored.append(
            ScoredContact(
                contact_id=row.contact.crm_id,
                cut=row.cut,
                total=result.total,
                fit=result.fit,
                engagement=result.engagement,
                grade=result.grade,
                is_mql=result.is_mql,
                source=lead_source(row.contact),
                activities=row.known,
                converted=row.converted,
                lead_days=row.lead_days,
            )
        )
    return scored


def run_backtest(
    dataset: Dataset,
    models: Sequence[tuple[Path, ScoringModel]],
    cuts: Sequence[datetime],
    horizon_days: float = 90,
    band: tuple[float, float] = DEFAULT_BAND,
) -> Backtest:
    """Score, label and judge; raises `NotJudgeable` when the data cannot be judged."""
    if not dataset.contacts:
        raise NotJudgeable("no contacts were read: nothing to judge")
    rows, notes = candidates(dataset, cuts, horizon_days)
    # The labels and the population do not depend on the model: judge them once.
    reference = score_candidates(models[0][1], rows)
    why = unjudgeable(reference)
    if why is not None:
        raise NotJudgeable(why, notes)
    labels = _labels([model for _, model in models], [path for path, _ in models])
    runs: list[ModelRun] = []
    for (path, model), label in zip(models, labels, strict=True):
        scored = reference if model is models[0][1] else score_candidates(model, rows)
        runs.append(
            ModelRun(
                label=label,
                path=path,
                pooled=judge(scored, band),
                by_cut=[(cut, judge(_at(scored, cut), band)) for cut in cuts],
            )
        )
    return Backtest(
        cuts=list(cuts),
        horizon_days=horizon_days,
        band=band,
        contacts=len(dataset.contacts),
        rows=len(reference),
        converters=sum(1 for row in reference if row.converted),
        baseline=baseline_auc(reference),
        baseline_by_cut=[(cut, baseline_auc(_at(reference, cut))) for cut in cuts],
        models=runs,
        notes=notes,
    )


def lead_source(contact: Contact) -> str:
    """The contact's `lead_source` property, or UNKNOWN_SOURCE."""
    value = contact.properties.get("lead_source")
    text = str(value).strip() if value is not None else ""
    return text or UNKNOWN_SOURCE


# --- the command ---------------------------------------------------------------------


class UsageProblem(Exception):
    """The command was asked something it cannot do (exit 2)."""


@dataclass(frozen=True)
class Request:
    models: list[Path]
    contacts: Path | None
    activities: Path | None
    outcomes: Path | None
    as_of: str | None = None
    cuts: str | None = None
    start: str | None = None
    end: str | None = None
    every: str = "30d"
    horizon_days: float = 90
    band: str = "0.15,0.30"
    as_json: bool = False
    out: Path | None = None
    crm: str = "hubspot"


EXIT_OK, EXIT_NOT_JUDGEABLE, EXIT_USAGE = 0, 1, 2


def run_command(request: Request, say: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """`mqlsync backtest`: 0 done, 1 the data cannot be judged, 2 a usage error."""
    from flows.history import OutcomesFileError, read_history, report_problems

    try:
        cuts = resolve_cuts(request)
        band = parse_band(request.band)
        if request.horizon_days <= 0:
            raise UsageProblem(f"--horizon-days {request.horizon_days:g}: expected more than 0")
        models = [(path, _read_model(path)) for path in request.models]
        if not models:
            raise UsageProblem("give at least one --model")
        dataset = read_history(request.contacts, request.activities, request.outcomes, request.crm)
    except (UsageProblem, OutcomesFileError) as exc:
        warn(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        warn(f"{exc.filename}: cannot read: {exc.strerror or exc}")
        return EXIT_USAGE
    report_problems(dataset, warn)
    try:
        backtest = run_backtest(dataset, models, cuts, request.horizon_days, band)
    except NotJudgeable as exc:
        for note in exc.notes:
            warn(f"note: {note}")
        warn(f"cannot judge: {exc}")
        return EXIT_NOT_JUDGEABLE
    for note in backtest.notes:
        warn(f"note: {note}")
    if request.as_json:
        say(json.dumps(metrics(backtest), indent=2))
    else:
        say(render_terminal(backtest))
    if request.out is not None:
        written = write_report(backtest, request.out)
        (warn if request.as_json else say)("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


def resolve_cuts(request: Request) -> list[datetime]:
    """The cut dates from --as-of, --cuts, or --start/--end/--every (exactly one form)."""
    from flows.history import parse_when

    ranged = request.start is not None or request.end is not None
    forms = sum([request.as_of is not None, request.cuts is not None, ranged])
    if forms != 1:
        raise UsageProblem(
            "give exactly one of --as-of TIME, --cuts DATE,DATE,... or --start DATE --end DATE"
        )
    try:
        if request.as_of is not None:
            return [parse_when(request.as_of)]
        if request.cuts is not None:
            texts = [text for text in request.cuts.split(",") if text.strip()]
            if not texts:
                raise UsageProblem("--cuts: expected dates separated by commas")
            return sorted({parse_when(text) for text in texts})
        if request.start is None or request.end is None:
            raise UsageProblem("--start and --end go together")
        return cut_dates(
            parse_when(request.start), parse_when(request.end), parse_every(request.every)
        )
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


def parse_band(text: str) -> tuple[float, float]:
    """`0.15,0.30` (or `15%,30%`) as a pair of rates."""
    try:
        low, high = (_rate(part) for part in text.split(","))
    except ValueError:
        raise UsageProblem(f"--band {text!r}: expected LOW,HIGH such as 0.15,0.30") from None
    if not 0 <= low <= high <= 1:
        raise UsageProblem(f"--band {text!r}: expected 0 <= LOW <= HIGH <= 1")
    return low, high


def _rate(text: str) -> float:
    text = text.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def _read_model(path: Path) -> ScoringModel:
    from flows.check import load_model_file
    from scoring.model import ModelError

    try:
        return load_model_file(path)
    except ModelError as exc:
        raise UsageProblem(str(exc)) from None


# --- rendering -------------------------------------------------------------------------


def metrics(backtest: Backtest) -> dict[str, Any]:
    """Everything as plain JSON data."""
    return {
        "dataset": {
            "contacts": backtest.contacts,
            "cuts": [cut.isoformat() for cut in backtest.cuts],
            "horizon_days": backtest.horizon_days,
            "band": list(backtest.band),
            "rows": backtest.rows,
            "converters": backtest.converters,
            "baseline": {
                "name": "count of activities up to the cut",
                "auc": backtest.baseline,
                "by_cut": [
                    {"cut": cut.isoformat(), "auc": value}
                    for cut, value in backtest.baseline_by_cut
                ],
            },
            "notes": backtest.notes,
        },
        "models": [
            {
                "label": run.label,
                "file": str(run.path),
                "pooled": asdict(run.pooled),
                "by_cut": [
                    {"cut": cut.isoformat(), **asdict(figures)} for cut, figures in run.by_cut
                ],
            }
            for run in backtest.models
        ],
    }


def summary_rows(backtest: Backtest) -> list[list[str]]:
    """The side-by-side summary: one row a figure, one column a model."""
    pooled = [run.pooled for run in backtest.models]

    def row(name: str, cells: list[str]) -> list[str]:
        return [name, *cells]

    return [
        row("AUC total", [_num(f.auc_total) for f in pooled]),
        row("AUC fit", [_num(f.auc_fit) for f in pooled]),
        row("AUC engagement", [_num(f.auc_engagement) for f in pooled]),
        row("MQL rate", [_pct(f.mql.mql_rate) for f in pooled]),
        row("MQLs", [str(f.mql.mqls) for f in pooled]),
        row("MQL -> SQL conversion", [_pct(f.mql.conversion) for f in pooled]),
        row("recall", [_pct(f.mql.recall) for f in pooled]),
        row("median lead time (days)", [_num(f.mql.median_lead_days, 1) for f in pooled]),
        row("lift, top decile", [_num(f.lift[0].lift, 2) for f in pooled]),
        row("recommended threshold", [_pick(f) for f in pooled]),
        row("  at it: MQLs", [str(f.recommended.volume) for f in pooled]),
        row("  at it: conversion", [_pct(f.recommended.conversion) for f in pooled]),
        row("  at it: recall", [_pct(f.recommended.recall) for f in pooled]),
    ]


def headline(backtest: Backtest) -> str:
    first, last = backtest.cuts[0].date(), backtest.cuts[-1].date()
    when = (
        f"at {first}"
        if len(backtest.cuts) == 1
        else f"at {len(backtest.cuts)} cuts, {first} to {last}"
    )
    return (
        f"{backtest.contacts} contacts {when}, horizon {backtest.horizon_days:g} days: "
        f"{backtest.rows} judged, {backtest.converters} converted "
        f"({_pct(backtest.converters / backtest.rows)})"
    )


def render_terminal(backtest: Backtest) -> str:
    headers = ["figure", *(run.label for run in backtest.models)]
    lines = [
        headline(backtest),
        f"baseline (count of activities up to the cut): AUC {_num(backtest.baseline)}",
        "",
        render_table(headers, summary_rows(backtest)),
        "",
        *(f"{run.label}: {run.pooled.recommended.reason}" for run in backtest.models),
    ]
    return "\n".join(lines)


def render_markdown(backtest: Backtest) -> str:
    low, high = backtest.band
    parts = [
        "# Backtest",
        "",
        headline(backtest) + ".",
        "",
        f"A contact is judged at a cut when it existed by then (created at or before it, or "
        f"creation unknown) and had not converted before it; it counts as converted when it "
        f"converted within {backtest.horizon_days:g} days after the cut. Scores use only the "
        f"activities up to the cut, but contact fields are as exported, not as they were "
        f"at the cut. Healthy MQL -> SQL conversion band: {low:.0%}-{high:.0%}.",
        "",
        "## Summary",
        "",
        _markdown_table(
            ["figure", *(run.label for run in backtest.models)], summary_rows(backtest)
        ),
        "",
        f"Baseline, count of activities up to the cut: AUC {_num(backtest.baseline)}.",
        "",
    ]
    for note in backtest.notes:
        parts += [f"Note: {note}", ""]
    parts += _per_cut_section(backtest)
    for run in backtest.models:
        parts += _model_section(run)
    parts += ["## Charts", "", "![lift by decile](lift.png)", "", "![threshold](threshold.png)"]
    return "\n".join(parts) + "\n"


def write_report(backtest: Backtest, directory: Path) -> list[Path]:
    """`report.md`, `metrics.json`, `lift.png` and `threshold.png` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / "report.md"
    report.write_text(render_markdown(backtest), encoding="utf-8")
    data = directory / "metrics.json"
    data.write_text(json.dumps(metrics(backtest), indent=2) + "\n", encoding="utf-8")
    lift, threshold = directory / "lift.png", directory / "threshold.png"
    plot_lift(backtest, lift)
    plot_threshold(backtest, threshold)
    return [report, data, lift, threshold]


def plot_lift(backtest: Backtest, path: Path) -> None:
    """Lift by decile, one line per model."""
    figure, axes = _figure(1)
    plot = axes[0]
    for run in backtest.models:
        # An empty decile (a tie filled the one before it) is a gap in the line.
        lifts = [float("nan") if d.lift is None else d.lift for d in run.pooled.lift]
        plot.plot(range(1, len(lifts) + 1), lifts, marker="o", label=run.label)
    plot.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="no lift")
    plot.set_xticks(range(1, 11))
    plot.set_xlabel("decile by score (1 = highest)")
    plot.set_ylabel("conversion / overall conversion")
    plot.set_title("Lift by decile")
    plot.legend()
    _save(figure, path)


def plot_threshold(backtest: Backtest, path: Path) -> None:
    """Per model: MQL conversion and MQL volume against the threshold, band shaded."""
    figure, axes = _figure(len(backtest.models))
    low, high = backtest.band
    for plot, run in zip(axes, backtest.models, strict=True):
        points = run.pooled.sweep
        thresholds = [p.threshold for p in points]
        plot.axhspan(low, high, color="tab:green", alpha=0.15, label="healthy band")
        plot.plot(
            thresholds,
            [p.conversion for p in points],
            color="tab:blue",
            marker=".",
            label="conversion",
        )
        plot.set_ylabel("MQL -> SQL conversion")
        plot.set_xlabel("threshold (MQL when total >= threshold)")
        plot.set_title(run.label)
        pick = run.pooled.recommended.threshold
        if pick is not None:
            plot.axvline(pick, color="tab:red", linestyle=":", label="recommended")
        volume = plot.twinx()
        volume.plot(
            thresholds, [p.volume for p in points], color="tab:orange", marker=".", label="MQLs"
        )
        volume.set_ylabel("MQLs")
        handles, names = plot.get_legend_handles_labels()
        more, more_names = volume.get_legend_handles_labels()
        plot.legend(handles + more, names + more_names, loc="upper center")
    _save(figure, path)


# --- helpers ---------------------------------------------------------------------------


def _existed(contact: Contact, cut: datetime) -> bool:
    created = contact.created_at
    if created is None:
        return True
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created <= cut


def _at(rows: Sequence[ScoredContact], cut: datetime) -> list[ScoredContact]:
    return [row for row in rows if row.cut == cut]


def _labels(models: Sequence[ScoringModel], paths: Sequence[Path]) -> list[str]:
    names = [f"{model.name}@{model.version}" for model in models]
    return [
        f"{name} ({path.name})" if names.count(name) > 1 else name
        for name, path in zip(names, paths, strict=True)
    ]


def _per_cut_section(backtest: Backtest) -> list[str]:
    if len(backtest.cuts) < 2:
        return []
    headers = ["cut", "judged", "converted", "baseline AUC"]
    headers += [f"AUC {run.label}" for run in backtest.models]
    rows = []
    for index, (cut, base) in enumerate(backtest.baseline_by_cut):
        first = backtest.models[0].by_cut[index][1]
        rows.append(
            [
                cut.date().isoformat(),
                str(first.rows),
                str(first.converters),
                _num(base),
                *(_num(run.by_cut[index][1].auc_total) for run in backtest.models),
            ]
        )
    return ["## By cut", "", _markdown_table(headers, rows), ""]


def _model_section(run: ModelRun) -> list[str]:
    figures = run.pooled
    lift_rows = [
        [
            str(d.decile),
            str(d.contacts),
            str(d.converters),
            _pct(d.conversion),
            _num(d.lift, 2),
            _span(d.low, d.high),
        ]
        for d in figures.lift
    ]
    sweep_rows = [
        [f"{p.threshold:g}", str(p.volume), _pct(p.conversion), _pct(p.recall)]
        for p in figures.sweep
    ]
    group_headers = ["contacts", "converted", "MQLs", "conversion", "recall"]
    return [
        f"## {run.label} (`{run.path}`)",
        "",
        "### Lift by decile",
        "",
        _markdown_table(
            ["decile", "contacts", "converted", "conversion", "lift", "scores"], lift_rows
        ),
        "",
        "### By grade",
        "",
        _markdown_table(["grade", *group_headers], _group_rows(figures.by_grade)),
        "",
        "### By lead source",
        "",
        _markdown_table(["source", *group_headers], _group_rows(figures.by_source)),
        "",
        "### Threshold sweep",
        "",
        f"Recommended: {_pick(figures)}, {figures.recommended.reason}.",
        "",
        _markdown_table(["threshold", "MQLs", "conversion", "recall"], sweep_rows),
        "",
    ]


def _group_rows(groups: Sequence[GroupFigures]) -> list[list[str]]:
    return [
        [
            g.group,
            str(g.figures.contacts),
            str(g.figures.converters),
            str(g.figures.mqls),
            _pct(g.figures.conversion),
            _pct(g.figures.recall),
        ]
        for g in groups
    ]


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def _span(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


def _pick(figures: ModelFigures) -> str:
    pick = figures.recommended
    if pick.threshold is None:
        return "-"
    return f"{pick.threshold:g}" + ("" if pick.in_band else " (outside the band)")


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _figure(panels: int) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(panels, 1, figsize=(8, 4.5 * panels), squeeze=False)
    return figure, [row[0] for row in axes]


def _save(figure: Any, path: Path) -> None:
    from matplotlib import pyplot

    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
