"""`mqlsync calibrate`: learn a model's points from outcomes and write them as a new model.

Who is judged, and how, is what `mqlsync backtest` does at one cut: a contact that
existed by the cut and had not converted before it, scored from its activities up to the
cut, counts as converted when it converted within the horizon after it.

The split is by time when conversions are dated: the split date (`--as-of`, by default
one horizon before the end of the data) is the holdout's cut. The training cuts are one
horizon before it and then monthly earlier (`--train-cuts`, while the data reaches back
that far), each contact scored as of each cut it existed at: the model learns from
conversions before the split date only, and is judged on conversions after it. More cuts
give the regression more conversions to learn from; a contact seen at several cuts
weighs as much as several contacts would.

Without dates, one cut at `--as-of` (by default the end of the data) and a seeded
holdout, drawn within converters and non-converters alike.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from flows.history import Dataset
from flows.tables import render_table
from scoring.calibrate import (
    Calibration,
    CalibrationError,
    Comparison,
    Example,
    RuleChange,
    ThresholdCheck,
    check_threshold,
)
from scoring.model import ScoringModel

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
DEFAULT_HOLDOUT = 0.3
DEFAULT_TRAIN_CUTS = 6
TRAIN_CUT_STEP = timedelta(days=30)


class Refused(Exception):
    """Nothing was written; the message says why."""


@dataclass(frozen=True)
class Request:
    model: Path
    contacts: Path | None
    activities: Path | None
    outcomes: Path | None
    out: Path
    as_of: str | None = None
    holdout: float | None = None  # None: DEFAULT_HOLDOUT where a random split applies
    seed: int = 7
    band: str = "0.15,0.30"
    horizon_days: float = 90
    crm: str = "hubspot"
    train_cuts: int = DEFAULT_TRAIN_CUTS


@dataclass(frozen=True)
class Split:
    """The training and holdout examples, each scored as of its own cut."""

    kind: Literal["time", "random"]
    train: list[Example]
    train_cut: datetime
    holdout: list[Example]
    holdout_cut: datetime
    description: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """What a run produced, for the printout and the file's header."""

    source: ScoringModel
    calibration: Calibration
    comparison: Comparison
    split: Split
    band: tuple[float, float]
    threshold_check: ThresholdCheck | None = None


def run_command(request: Request, say: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """0 written; 1 refused (nothing written); 2 a usage error."""
    from flows.backtest import UsageProblem, parse_band
    from flows.history import OutcomesFileError, read_history, report_problems

    try:
        band = parse_band(request.band)
        holdout = _holdout(request.holdout)
        if request.horizon_days <= 0:
            raise UsageProblem(f"--horizon-days {request.horizon_days:g}: expected more than 0")
        if request.train_cuts < 1:
            raise UsageProblem(f"--train-cuts {request.train_cuts}: expected 1 or more")
        as_of = _instant(request.as_of)
    except UsageProblem as exc:
        warn(str(exc))
        return EXIT_USAGE
    try:
        _refuse_same_file(request.model, request.out)
        model = _read_model(request.model)
        dataset = read_history(request.contacts, request.activities, request.outcomes, request.crm)
    except (Refused, OutcomesFileError) as exc:
        warn(str(exc))
        return EXIT_REFUSED
    except OSError as exc:
        warn(f"{exc.filename}: cannot read: {exc.strerror or exc}")
        return EXIT_REFUSED
    report_problems(dataset, warn)
    try:
        split = split_dataset(
            dataset, as_of, request.horizon_days, holdout, request.seed, request.train_cuts
        )
        for note in split.notes:
            warn(f"note: {note}")
        result = calibrate_split(model, split, band)
        text = model_text(result, request, _template(request.model))
    except Refused as exc:
        warn(f"refused, nothing written: {exc}")
        return EXIT_REFUSED
    try:
        request.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        warn(f"{request.out}: cannot write: {exc.strerror or exc}")
        return EXIT_REFUSED
    say(render_terminal(result))
    check = result.threshold_check
    if check is not None and not check.holds:
        warn(f"warning: {_drift_text(check)}")
    say(f"wrote {request.out}")
    return EXIT_OK


def split_dataset(
    dataset: Dataset,
    as_of: datetime | None,
    horizon_days: float,
    holdout: float | None,
    seed: int,
    train_cuts: int = DEFAULT_TRAIN_CUTS,
) -> Split:
    """By time when any conversion is dated, else a seeded holdout (see the module)."""
    from flows.backtest import candidates

    horizon = timedelta(days=horizon_days)
    end = end_of_data(dataset)
    dated = any(o.converted_at is not None for o in dataset.outcomes.values() if o.converted)
    if dated:
        assert end is not None  # a dated conversion is an instant of the data
        cut = as_of or end - horizon
        start = start_of_data(dataset) or cut - horizon
        learn_at = [cut - horizon - TRAIN_CUT_STEP * j for j in range(train_cuts)]
        learn_at = [at for at in learn_at if at >= start] or learn_at[:1]
        rows, notes = candidates(dataset, [*sorted(learn_at), cut], horizon_days)
        if holdout is not None:
            notes.append(f"a time split: --holdout {holdout:g} does not apply")
        if cut + horizon > end:
            notes.append(
                f"the holdout's horizon runs past the end of the data ({_when(end)}): "
                "conversions after it are not known yet"
            )
        learned_from = (
            f"contacts as of {_when(learn_at[0])}"
            if len(learn_at) == 1
            else f"contacts as of {len(learn_at)} monthly cuts, {_when(min(learn_at))} to "
            f"{_when(max(learn_at))},"
        )
        description = (
            f"by time at {_when(cut)}: trained on {learned_from} "
            f"and conversions up to {_when(cut)}, judged on contacts as of {_when(cut)} and "
            f"conversions up to {_when(cut + horizon)} (horizon {horizon_days:g} days)"
        )
        return Split(
            kind="time",
            train=[_example(row, as_of=row.cut) for row in rows if row.cut < cut],
            train_cut=cut - horizon,
            holdout=[_example(row) for row in rows if row.cut == cut],
            holdout_cut=cut,
            description=description,
            notes=notes,
        )
    cut = as_of or end or datetime.now(UTC)
    share = DEFAULT_HOLDOUT if holdout is None else holdout
    rows, notes = candidates(dataset, [cut], horizon_days)
    train, kept = _draw([_example(row) for row in rows], share, seed)
    description = (
        f"a {share:.0%} holdout (seed {seed}) drawn within converters and non-converters; "
        f"every contact as of {_when(cut)}, its conversion taken as given (none is dated)"
    )
    return Split("random", train, cut, kept, cut, description, notes)


def calibrate_split(model: ScoringModel, split: Split, band: tuple[float, float]) -> Result:
    """Learn on the training side, judge both models on the holdout."""
    from scoring.calibrate import calibrate, compare

    try:
        calibration = calibrate(model, split.train, split.train_cut, band=band)
    except CalibrationError as exc:
        hint = (
            "an earlier --as-of or a longer --horizon-days gives the training side more"
            if split.kind == "time"
            else "more outcomes, or a smaller --holdout, gives the training side more"
        )
        raise Refused(f"{exc} ({hint})") from None
    comparison = compare(model, calibration.model, split.holdout, split.holdout_cut)
    # Both sides as `compare` scores them: training examples at their cuts (or the
    # training cut), the holdout at its cut.
    trained = [e if e.as_of else replace(e, as_of=split.train_cut) for e in split.train]
    check = check_threshold(calibration.model, trained, split.holdout, split.holdout_cut, band)
    return Result(model, calibration, comparison, split, band, check)


def start_of_data(dataset: Dataset) -> datetime | None:
    """The earliest contact creation or activity in the data, if any is dated."""
    instants = [a.occurred_at for items in dataset.activities.values() for a in items]
    instants += [c.created_at for c in dataset.contacts if c.created_at is not None]
    return min(instants, default=None)


def end_of_data(dataset: Dataset) -> datetime | None:
    """The latest activity or conversion in the data, if any is dated."""
    instants = [a.occurred_at for items in dataset.activities.values() for a in items]
    instants += [o.converted_at for o in dataset.outcomes.values() if o.converted_at is not None]
    return max(instants, default=None)


def model_text(result: Result, request: Request, template: Any) -> str:
    """The new model file: a comment header, then the model shaped like its source."""
    data = _whole_numbers(
        result.calibration.model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    )
    body = yaml.dump(
        _inline_leaves(_ordered_like(data, template)),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    text = "".join(
        "\n".join(textwrap.wrap(line, 98, initial_indent="# ", subsequent_indent="#   ")) + "\n"
        for line in header_lines(result, request)
    )
    text += "\n" + body
    _check(text, request.out)
    return text


def header_lines(result: Result, request: Request) -> list[str]:
    calibration, comparison, split = result.calibration, result.comparison, result.split
    pick = calibration.threshold
    low, high = result.band
    lines = [
        f"{calibration.model.version_label}: the rules of {result.source.version_label} "
        f"({request.model.name}) with points learned from outcomes by `mqlsync calibrate`.",
        f"Data: {_source(request)}.",
        f"Split: {split.description}.",
        f"Train: {calibration.train_size} contacts, {calibration.train_converters} converters. "
        f"Holdout: {comparison.size} contacts, {comparison.converters} converters.",
        f"AUC on the holdout: before {_num(comparison.auc_before)}, "
        f"after {_num(comparison.auc_after)}.",
        f"MQL threshold {_threshold_text(result)} for the band {low:.0%}-{high:.0%}: "
        f"{pick.reason}; on training {pick.volume} MQLs, recall {_pct(pick.recall)}.",
        _strength_text(calibration.strength) + ".",
    ]
    if calibration.zeroed:
        lines.append("At 0 points: " + _listed(calibration.zeroed) + ".")
    if calibration.kept:
        lines.append("Not judged, points kept: " + _listed(calibration.kept) + ".")
    if calibration.dropped_cap is not None:
        lines.append(_dropped_cap_text(calibration.dropped_cap) + ".")
    return lines


def _strength_text(strength: float | None) -> str:
    return (
        "Pull toward the old points: "
        + ("none" if strength is None else f"strength {strength:g}")
        + " (chosen by cross-validation over contacts)"
    )


def _dropped_cap_text(cap: float) -> str:
    return (
        f"The engagement section's cap ({cap:g} points) is dropped: the points were "
        "learned without it"
    )


def _source(request: Request) -> str:
    files = [p.name for p in (request.contacts, request.activities, request.outcomes) if p]
    return ", ".join(files) if files else f"the store's {request.crm} history"


def render_terminal(result: Result) -> str:
    """The diff of points, the rules at 0 and the before/after figures."""
    calibration, comparison = result.calibration, result.comparison
    rows = [
        [
            change.rule,
            change.section,
            f"{change.old:g}",
            f"{change.new:g}",
            "" if change.z is None else f"{change.z:+.1f}",
            change.why,
        ]
        for change in calibration.rules
    ]
    lines = [
        f"{result.source.version_label} -> {calibration.model.version_label}",
        "",
        render_table(["rule", "section", "old", "new", "z", "note"], rows),
        "",
        "at 0 points: " + (", ".join(change.rule for change in calibration.zeroed) or "none"),
        f"split: {result.split.description}",
        f"train: {calibration.train_size} contacts, {calibration.train_converters} converters; "
        f"holdout: {comparison.size} contacts, {comparison.converters} converters",
        f"AUC on the holdout: before {_num(comparison.auc_before)}, "
        f"after {_num(comparison.auc_after)}",
        f"MQL threshold: {_threshold_text(result)} ({calibration.threshold.reason})",
        _strength_text(calibration.strength).lower(),
    ]
    check = result.threshold_check
    if check is not None:
        lines.append(
            f"at threshold {check.threshold:g}: {_pct(check.train_share)} of the training "
            f"contacts; on the holdout {_pct(check.holdout_share)} ({check.holdout_mqls}), "
            f"conversion {_pct(check.holdout_conversion)}"
        )
    if calibration.dropped_cap is not None:
        lines.append(_dropped_cap_text(calibration.dropped_cap))
    return "\n".join(lines)


def _drift_text(check: ThresholdCheck) -> str:
    low, high = check.band
    return (
        f"the learned threshold does not hold on the holdout: it lets through "
        f"{_pct(check.holdout_share)} there against {_pct(check.train_share)} of the training "
        f"contacts, with conversion {_pct(check.holdout_conversion)} (band {low:.0%}-{high:.0%}). "
        "Scores moved between the training data and the holdout; the ranking may still "
        "hold (see the AUC), but check the threshold with `mqlsync backtest` before using it"
    )


def _example(row: Any, as_of: datetime | None = None) -> Example:
    return Example(
        contact=row.contact, activities=row.activities, converted=row.converted, as_of=as_of
    )


def _draw(
    examples: Sequence[Example], share: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, holdout): `share` of the converters and of the others, drawn with `seed`."""
    rng = random.Random(seed)
    held: set[int] = set()
    for label in (True, False):
        members = [i for i, example in enumerate(examples) if example.converted is label]
        held.update(rng.sample(members, round(len(members) * share)))
    train = [example for i, example in enumerate(examples) if i not in held]
    return train, [example for i, example in enumerate(examples) if i in held]


def _holdout(value: float | None) -> float | None:
    from flows.backtest import UsageProblem

    if value is not None and not 0 < value < 1:
        raise UsageProblem(f"--holdout {value:g}: expected a share between 0 and 1, e.g. 0.3")
    return value


def _instant(text: str | None) -> datetime | None:
    from flows.backtest import UsageProblem
    from flows.history import parse_when

    if text is None:
        return None
    try:
        return parse_when(text)
    except ValueError as exc:
        raise UsageProblem(f"--as-of: {exc}") from None


def _refuse_same_file(model: Path, out: Path) -> None:
    same = out.resolve() == model.resolve() or (
        out.exists() and model.exists() and out.samefile(model)
    )
    if same:
        raise Refused(
            f"--out {out} is the input model {model}: a calibration never overwrites its "
            "input; write it to a new file and compare them first"
        )


def _read_model(path: Path) -> ScoringModel:
    from flows.check import load_model_file
    from scoring.model import ModelError

    try:
        return load_model_file(path)
    except ModelError as exc:
        raise Refused(str(exc)) from None


def _template(path: Path) -> Any:
    """The source model's own mapping, whose key order the new file follows."""
    from scoring.yaml_lines import load_with_lines

    data, _ = load_with_lines(path.read_bytes(), str(path))
    return data


def _ordered_like(value: Any, template: Any) -> Any:
    """`value` with its keys in `template`'s order, recursively.

    A key the template lacks goes right after the key it follows in `value`.
    """
    if isinstance(value, dict):
        shape = template if isinstance(template, dict) else {}
        keys = [key for key in shape if key in value]
        previous: str | None = None
        for key in value:
            if key not in shape:
                keys.insert(keys.index(previous) + 1 if previous is not None else 0, key)
            previous = key
        return {key: _ordered_like(value[key], shape.get(key)) for key in keys}
    if isinstance(value, list):
        shapes = template if isinstance(template, list) else []
        return [
            _ordered_like(item, shapes[i] if i < len(shapes) else None)
            for i, item in enumerate(value)
        ]
    return value


class _Dumper(yaml.SafeDumper):
    """Block style, but lists of values and small nested mappings on one line."""


class _InlineList(list[Any]):
    pass


class _InlineMap(dict[str, Any]):
    pass


_Dumper.add_representer(
    _InlineList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)
_Dumper.add_representer(
    _InlineMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True)
)


def _inline_leaves(value: Any, depth: int = 0, *, keyed: bool = False) -> Any:
    """`value` marked for the dumper the way people write a model by hand.

    Lists of values go inline (`in: [a, b]`), and so does a key's mapping of values from
    the second level down (`grades:`, `where:`); sections and rules stay blocks.
    """
    if isinstance(value, list):
        items = [_inline_leaves(item, depth) for item in value]
        return _InlineList(items) if all(_is_value(item) for item in value) else items
    if not isinstance(value, dict):
        return value
    mapping = {key: _inline_leaves(item, depth + 1, keyed=True) for key, item in value.items()}
    leaf = keyed and depth >= 2 and all(_is_value(item) for item in value.values())
    return _InlineMap(mapping) if leaf else mapping


def _is_value(item: Any) -> bool:
    return not isinstance(item, dict | list)


def _whole_numbers(value: Any) -> Any:
    """40.0 as 40: the file reads as a person would write it."""
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check(text: str, out: Path) -> None:
    """The file must load with the project's own loader, or it is not written."""
    from scoring.model import ModelError, parse_model

    try:
        parse_model(text, str(out))
    except ModelError as exc:
        raise Refused(f"the learned model does not validate:\n{exc}") from None


def _threshold_text(result: Result) -> str:
    pick = result.calibration.threshold
    value = "-" if pick.threshold is None else f"{pick.threshold:g}"
    if result.calibration.model.qualify.threshold is None:
        return f"{value} (recommended; the model has no score threshold to write it in)"
    return value + ("" if pick.in_band else " (outside the band)")


def _listed(changes: Sequence[RuleChange]) -> str:
    return ", ".join(
        f"{change.rule} ({change.why}" + ("" if change.z is None else f", z={change.z:+.2f}") + ")"
        for change in changes
    )


def _when(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
