"""`mqlsync calibrate`: a new model file that `mqlsync score` reads, the diff, refusals."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from flows.check import load_model_file
from flows.cli import app
from scoring.calibrate import Example
from tests.scoring.factories import AS_OF
from tests.scoring.test_calibrate import PLANTED, planted

runner = CliRunner()
WHEN = AS_OF.isoformat()


def write_data(
    tmp_path: Path, examples: list[Example], dated: dict[str, datetime] | None = None
) -> dict[str, Path]:
    contacts, activities, outcomes = (
        tmp_path / "contacts.jsonl",
        tmp_path / "activities.jsonl",
        tmp_path / "outcomes.csv",
    )
    contacts.write_text(
        "".join(
            json.dumps(e.contact.model_dump(mode="json", exclude_none=True)) + "\n"
            for e in examples
        )
    )
    activities.write_text(
        "".join(
            json.dumps(a.model_dump(mode="json", exclude_none=True)) + "\n"
            for e in examples
            for a in e.activities
        )
    )
    when = {crm_id: instant.isoformat() for crm_id, instant in (dated or {}).items()}
    rows = [
        f"{e.contact.crm_id},{int(e.converted)},{when.get(e.contact.crm_id, '')}" for e in examples
    ]
    outcomes.write_text("crm_id,converted,converted_at\n" + "\n".join(rows) + "\n")
    model = tmp_path / "model.yaml"
    model.write_text(PLANTED)
    return {"contacts": contacts, "activities": activities, "outcomes": outcomes, "model": model}


def calibrate(files: dict[str, Path], out: Path, *extra: str):
    args = ["calibrate", "--out", str(out), *extra]
    for name in ("model", "contacts", "activities", "outcomes"):
        args += [f"--{name}", str(files[name])]
    return runner.invoke(app, args)


def test_writes_a_model_that_score_reads_and_prints_the_diff(tmp_path: Path) -> None:
    files = write_data(tmp_path, planted(1, 600))
    out = tmp_path / "new.yaml"
    result = calibrate(files, out, "--as-of", WHEN)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    text = out.read_text()
    assert text.startswith("# planted-calibrated@2: the rules of planted@1 (model.yaml)")
    assert "# Split: a 30% holdout (seed 7)" in text
    assert "# Train: 420 contacts" in text and "Holdout: 180 contacts" in text
    assert re.search(r"# AUC on the holdout: before 0\.\d{3}, after 0\.\d{3}\.", text)
    # The source's key order: `matches` before `points`, as it was written.
    senior = text.index("id: senior")
    assert text.index("matches:", senior) < text.index("points:", senior)
    learned = load_model_file(out)
    assert learned.version_label == "planted-calibrated@2"
    out_text = result.stdout
    assert re.search(r"^senior\s+fit\s+5\s+40\s", out_text, re.MULTILINE)
    assert re.search(r"^big-company\s+fit\s+40\s+0\s", out_text, re.MULTILINE)
    assert "at 0 points: big-company" in out_text
    before, after = map(
        float, re.findall(r"AUC on the holdout: before ([\d.]+), after ([\d.]+)", out_text)[0]
    )
    assert after > before + 0.1
    # The learned threshold on both sides of the split; it holds, so no warning (stderr).
    assert re.search(
        r"^at threshold [\d.]+: [\d.]+% of the training contacts; on the holdout [\d.]+% "
        r"\(\d+\), conversion [\d.]+%$",
        out_text,
        re.MULTILINE,
    )
    scored = runner.invoke(
        app,
        ["score", "--model", str(out), "--contacts", str(files["contacts"]),
         "--activities", str(files["activities"]), "--as-of", WHEN],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    lines = [json.loads(line) for line in scored.stdout.splitlines()]
    assert len(lines) == 600 and {line["model"] for line in lines} == {"planted-calibrated@2"}
    threshold = learned.qualify.threshold
    assert threshold is not None
    mqls = [line for line in lines if line["is_mql"]]
    assert mqls and all(line["total"] >= threshold for line in mqls)


def test_never_overwrites_its_input(tmp_path: Path) -> None:
    files = write_data(tmp_path, planted(1, 600))
    before = files["model"].read_text()
    for out in (files["model"], tmp_path / "." / "sub" / ".." / "model.yaml"):
        result = calibrate(files, out, "--as-of", WHEN)
        assert result.exit_code == 1
        assert "never overwrites its input" in result.stderr
    assert files["model"].read_text() == before


def test_bad_outcome_rows_are_reported_and_the_rest_used(tmp_path: Path) -> None:
    files = write_data(tmp_path, planted(1, 600))
    outcomes = files["outcomes"]
    with outcomes.open("a") as handle:
        handle.write("c5,maybe,\nghost,1,\n")
    out = tmp_path / "new.yaml"
    result = calibrate(files, out, "--as-of", WHEN)
    assert result.exit_code == 0, result.output
    assert f"{outcomes}:602: contact 'c5': converted 'maybe' is not" in result.stderr
    assert f"{outcomes}:603: contact 'ghost' is not in" in result.stderr
    assert "2 line(s) or row(s) skipped" in result.stderr
    assert out.exists()


def test_too_few_converters_is_refused_and_nothing_written(tmp_path: Path) -> None:
    examples = [Example(e.contact, e.activities, i < 40) for i, e in enumerate(planted(1, 600))]
    files = write_data(tmp_path, examples)
    out = tmp_path / "new.yaml"
    result = calibrate(files, out, "--as-of", WHEN)
    assert result.exit_code == 1
    assert "refused, nothing written: the training data has 28 converters" in result.stderr
    assert "a smaller --holdout" in result.stderr
    assert not out.exists()


def test_a_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    files = write_data(tmp_path, planted(1, 100))
    for extra in (["--holdout", "1.5"], ["--band", "0.3,0.1"], ["--as-of", "soon"]):
        result = calibrate(files, tmp_path / "new.yaml", *extra)
        assert result.exit_code == 2, extra
    assert not (tmp_path / "new.yaml").exists()


def _dated_groups(
    tmp_path: Path,
) -> tuple[list[Example], list[Example], dict[str, datetime], list[Path]]:
    """500 contacts whose journeys end at the training cut and who convert within 80 days
    after it, 300 who begin after it and convert within 80 days after the split date."""
    split = datetime(2026, 8, 1, tzinfo=UTC)
    train_cut = split - timedelta(days=90)
    rng = random.Random(5)
    early = _moved(planted(11, 500), train_cut, created=train_cut - timedelta(days=200))
    late = _moved(planted(12, 300, offset=500), split, created=train_cut + timedelta(days=1))
    dated = {
        e.contact.crm_id: cut + timedelta(days=rng.uniform(1, 80))
        for group, cut in ((early, train_cut), (late, split))
        for e in group
        if e.converted
    }
    return early, late, dated, write_data(tmp_path, early + late, dated)


def test_dated_conversions_split_by_time(tmp_path: Path) -> None:
    early, late, _, files = _dated_groups(tmp_path)
    out = tmp_path / "new.yaml"
    result = calibrate(files, out, "--as-of", "2026-08-01", "--train-cuts", "1")
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr
    early_converters = sum(e.converted for e in early)
    holdout = 300 + 500 - early_converters
    assert "split: by time at 2026-08-01T00:00:00Z" in result.stdout
    assert f"train: 500 contacts, {early_converters} converters" in result.stdout
    assert f"holdout: {holdout} contacts, {sum(e.converted for e in late)} converters" in (
        result.stdout
    )
    assert "trained on contacts as of 2026-05-03T00:00:00Z" in out.read_text()


def test_monthly_training_cuts_learn_from_each(tmp_path: Path) -> None:
    """Three training cuts: the early contacts are judged as of each, a conversion counting
    at a cut when it falls within the 90 days after that cut; the holdout is unchanged."""
    early, late, dated, files = _dated_groups(tmp_path)
    train_cut = datetime(2026, 5, 3, tzinfo=UTC)
    out = tmp_path / "new.yaml"
    result = calibrate(files, out, "--as-of", "2026-08-01", "--train-cuts", "3")
    assert result.exit_code == 0, result.output
    converters = sum(
        1
        for cut in (train_cut - timedelta(days=60), train_cut - timedelta(days=30), train_cut)
        for e in early
        if e.contact.crm_id in dated and dated[e.contact.crm_id] <= cut + timedelta(days=90)
    )
    assert f"train: 1500 contacts, {converters} converters" in result.stdout
    holdout = 300 + 500 - sum(e.converted for e in early)
    assert f"holdout: {holdout} contacts, {sum(e.converted for e in late)} converters" in (
        result.stdout
    )
    assert "3 monthly cuts, 2026-03-04T00:00:00Z to 2026-05-03T00:00:00Z" in result.stdout
    assert calibrate(files, out, "--train-cuts", "0").exit_code == 2


def _moved(examples: list[Example], cut: datetime, created: datetime) -> list[Example]:
    """The examples with their activities moved from before AS_OF to before `cut`."""
    shift = AS_OF - cut
    return [
        Example(
            e.contact.model_copy(update={"created_at": created}),
            [a.model_copy(update={"occurred_at": a.occurred_at - shift}) for a in e.activities],
            e.converted,
        )
        for e in examples
    ]
