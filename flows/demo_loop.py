"""The demo's second half: what sales made of the MQLs, and whether the model predicts.

After a simulated month the store holds sales' verdicts (accepted, rejected) beside the
CRMs' own dated history (past SQL dates, converted leads). This prints the funnel of each
CRM, as every `sync` summary does, then judges the running model on that history next
to its calibrated version: both CRMs pooled, since one model scores both, split by time
so that the figures are out of sample.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flows import runtime
from flows.backtest import NotJudgeable, render_terminal, run_backtest
from flows.calibrate import Refused, calibrate_split, split_dataset
from flows.calibrate import render_terminal as render_calibration
from flows.funnel import summary_lines
from flows.history import Dataset, store_history
from scoring.backtest import DEFAULT_BAND
from scoring.records import Crm

HORIZON_DAYS = 90
SEED = 7


def print_funnel(echo: Callable[[str], None]) -> None:
    """Each CRM's funnel of the last 30 and 90 days, as of the run's clock."""
    engine, now = runtime.store_engine(), runtime.now()
    echo("")
    echo(f"the funnel as of {now:%Y-%m-%d}:")
    for crm in Crm:
        echo(f"{crm.value}:")
        for line in summary_lines(engine, crm.value, now):
            echo(f"  {line}")


def pooled_history() -> Dataset:
    """Both CRMs' store histories as one dataset (their ids never collide)."""
    engine = runtime.store_engine()
    parts = [store_history(engine, crm.value) for crm in Crm]
    return Dataset(
        contacts=[contact for part in parts for contact in part.contacts],
        activities={k: v for part in parts for k, v in part.activities.items()},
        outcomes={k: v for part in parts for k, v in part.outcomes.items()},
    )


def print_model_check(echo: Callable[[str], None], split_at: datetime) -> None:
    """The running model against its version calibrated on the history before `split_at`,
    both judged on the contacts as of `split_at` and what sales made of them since."""
    dataset = pooled_history()
    model = runtime.scoring_model()
    echo("")
    echo("the model judged on the CRMs' history (`mqlsync backtest`, `mqlsync calibrate`):")
    try:
        split = split_dataset(dataset, split_at, HORIZON_DAYS, None, SEED)
        result = calibrate_split(model, split, DEFAULT_BAND)
    except Refused as exc:
        echo(f"  no calibration: {exc}")
        return
    echo(render_calibration(result))
    echo("")
    models = [(Path("running"), model), (Path("calibrated"), result.calibration.model)]
    try:
        backtest = run_backtest(dataset, models, [split.holdout_cut], HORIZON_DAYS)
    except NotJudgeable as exc:
        echo(f"  no backtest: {exc}")
        return
    echo(render_terminal(backtest))
