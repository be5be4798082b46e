"""The `backtest` flow: judge scoring models against the store's history of a CRM.

The same engine as `mqlsync backtest`, at one cut, run from the Prefect UI: a table
artifact with the models side by side and a markdown artifact with the full report and
its charts.
"""

from __future__ import annotations

import base64
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from prefect import State, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Failed

from flows import runtime
from flows.backtest import (
    Backtest,
    NotJudgeable,
    headline,
    plot_lift,
    plot_threshold,
    render_markdown,
    render_terminal,
    run_backtest,
    summary_rows,
)
from flows.history import Dataset, store_history
from flows.settings import PROJECT_ROOT
from flows.sync import CrmName, run_form
from scoring.model import ModelError, ScoringModel

DEFAULT_MODEL_FILE = "scoring/models/default.yaml"
CHARTS = {"lift.png": plot_lift, "threshold.png": plot_threshold}


@task(retries=2, retry_delay_seconds=[5, 30], cache_policy=NONE)
def read_store_history(crm: CrmName) -> Dataset:
    """The store's contacts and activities of `crm`, and sales' acceptances as outcomes."""
    return store_history(runtime.store_engine(), crm.value)


@flow(name="backtest")
def backtest_flow(
    crm: Annotated[
        CrmName,
        run_form(
            title="CRM",
            description="The CRM whose history the models are judged against: its contacts "
            "and activities as the store holds them, and sales' acceptances (a contact moved "
            "to the SQL stage, a Salesforce lead converted) as the outcomes.",
        ),
    ],
    models: Annotated[
        list[str],
        run_form(
            title="Model files",
            min_length=1,
            description="Scoring model files (YAML), shown side by side; a relative path is "
            f"taken from the project directory. Default: {DEFAULT_MODEL_FILE}.",
        ),
    ] = [DEFAULT_MODEL_FILE],  # noqa: B006 (the run form shows it; never mutated)
    as_of: Annotated[
        datetime | None,
        run_form(
            title="Cut (UTC)",
            description="The instant the contacts are scored at, from their activities up "
            "to it; a time without a zone is taken as UTC. Empty (the default): now minus "
            "the horizon, so that every outcome within the horizon after the cut is known.",
        ),
    ] = None,
    horizon_days: Annotated[
        int,
        run_form(
            title="Horizon (days)",
            gt=0,
            description="A contact counts as converted when sales accepted it within this "
            "many days after the cut; one accepted before the cut is sales' and left out. "
            "Default: 90.",
        ),
    ] = 90,
    band_low: Annotated[
        float,
        run_form(
            title="Healthy conversion, low",
            ge=0,
            le=1,
            description="Lowest healthy MQL to SQL conversion, as a rate (0.15 is 15%); the "
            "recommended threshold keeps the most converters with conversion inside the band. "
            "Default: 0.15.",
        ),
    ] = 0.15,
    band_high: Annotated[
        float,
        run_form(
            title="Healthy conversion, high",
            ge=0,
            le=1,
            description="Highest healthy MQL to SQL conversion, as a rate (0.30 is 30%). "
            "Default: 0.30.",
        ),
    ] = 0.30,
) -> str | State[None]:
    """Score the store's contacts of a CRM at a cut with each model, and judge the
    scores by who sales accepted within the horizon after it."""
    logger = get_run_logger()
    cut = _utc(as_of) if as_of is not None else runtime.now() - timedelta(days=horizon_days)
    if band_low > band_high:
        return _refuse(f"the band {band_low:g}-{band_high:g} is empty: low is above high")
    try:
        loaded = [(path, _load_model(path)) for path in map(_model_path, models)]
    except ModelError as exc:
        return _refuse(str(exc))
    dataset = read_store_history(crm)
    try:
        backtest = run_backtest(dataset, loaded, [cut], horizon_days, (band_low, band_high))
    except NotJudgeable as exc:
        notes = "".join(f"; note: {note}" for note in exc.notes)
        return _refuse(
            f"cannot judge {crm.value} at {cut.isoformat()} with a {horizon_days}-day "
            f"horizon: {exc}{notes}"
        )
    for note in backtest.notes:
        logger.warning("note: %s", note)
    publish(crm, backtest)
    return render_terminal(backtest)


def publish(crm: CrmName, backtest: Backtest) -> None:
    """The summary table (`mqlsync-backtest-<crm>`) and the report with its charts
    (`mqlsync-backtest-<crm>-report`)."""
    key = f"mqlsync-backtest-{crm.value}"
    create_table_artifact(key=key, table=summary_table(backtest), description=headline(backtest))
    create_markdown_artifact(
        key=key + "-report", markdown=report_markdown(backtest), description=headline(backtest)
    )


def summary_table(backtest: Backtest) -> list[dict[str, str]]:
    """One row a figure, one column a model, the baseline's AUC among them."""
    labels = [run.label for run in backtest.models]
    baseline = "-" if backtest.baseline is None else f"{backtest.baseline:.3f}"
    rows = summary_rows(backtest)
    # The baseline belongs beside the AUCs it is the yardstick for.
    after = next(i for i, row in enumerate(rows) if row[0] == "AUC engagement") + 1
    rows.insert(after, ["baseline AUC (count of activities)", *[baseline] * len(labels)])
    return [dict(zip(["figure", *labels], row, strict=True)) for row in rows]


def report_markdown(backtest: Backtest) -> str:
    """The full report with its charts inline: an artifact cannot point at files."""
    markdown = render_markdown(backtest)
    with tempfile.TemporaryDirectory(prefix="mqlsync-backtest-") as directory:
        for name, plot in CHARTS.items():
            path = Path(directory) / name
            plot(backtest, path)
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            markdown = markdown.replace(f"]({name})", f"](data:image/png;base64,{encoded})")
    return markdown


def _model_path(text: str) -> Path:
    path = Path(text)
    if path.is_absolute() or path.exists():
        return path
    # A worker runs in the clone; a test or a shell may not.
    return PROJECT_ROOT / path


def _load_model(path: Path) -> ScoringModel:
    from flows.check import load_model_file

    return load_model_file(path)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _refuse(why: str) -> State[None]:
    message = f"backtest: {why}"
    get_run_logger().error(message)
    return Failed(message=message)
