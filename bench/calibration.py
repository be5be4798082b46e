"""Does a calibrated model predict? Figures on the sandbox's people against its hidden truth.

The sandbox draws each person's propensity to become SQL; the CRMs show only journeys and
the conversions that already happened (HubSpot's SQL date, Salesforce's converted leads),
which are consistent with it. This pulls everyone through the real connectors and:

- calibrates on the history before the sandbox's `as_of` only: contacts as of monthly cut
  dates (`as_of` - 90 days and earlier), each labelled by whether the CRM shows them
  accepted within 90 days after the cut;
- scores everyone not yet accepted at `as_of`, and judges against who the admin API says
  becomes SQL in the 90 days after it: out of time and out of sample.

Printed: the AUC of the propensity itself (the ceiling: no model can know more), of the
count of activities (the naive baseline), of `scoring/models/default.yaml` as shipped and
of the calibrated model; the calibrated model's share of the ceiling; and the conversion
and recall at `as_of` of the threshold it learned from the past.

    python bench/calibration.py --contacts 2000 --seed 42
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox_history import pull_history  # noqa: E402
from flows.calibrate import calibrate_split, split_dataset  # noqa: E402
from flows.history import Dataset, Outcome  # noqa: E402
from scoring.backtest import DEFAULT_BAND, auc, recommend_threshold  # noqa: E402
from scoring.calibrate import totals  # noqa: E402
from scoring.model import parse_model  # noqa: E402

MODEL = ROOT / "scoring" / "models" / "default.yaml"
CANDIDATES = ROOT / "scoring" / "models" / "candidates.yaml"
HORIZON_DAYS = 90


def main() -> None:
    from sandbox.run import running_sandbox

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cuts", type=int, default=6, help="monthly training cut dates")
    parser.add_argument(
        "--model", type=Path, default=CANDIDATES, help="the model whose points are learned"
    )
    args = parser.parse_args()
    with running_sandbox(contacts=args.contacts, seed=args.seed, hubspot_search_per_s=1000) as sb:
        history = pull_history(sb)
    now, data = history.as_of, history.dataset
    # What `mqlsync calibrate --as-of AS_OF` does on the files `bench/sandbox_history.py`
    # writes: learn from the conversions the CRMs show, be judged on the hidden ones.
    truth = {
        crm_id: Outcome(crm_id=crm_id, converted=True, converted_at=at)
        for crm_id, at in history.future.items()
    }
    judged = Dataset(data.contacts, data.activities, {**truth, **data.outcomes})
    split = split_dataset(judged, now, HORIZON_DAYS, None, args.seed, args.cuts)
    train, holdout = split.train, split.holdout
    labels = [e.converted for e in holdout]

    model = parse_model(MODEL.read_text(encoding="utf-8"), str(MODEL))
    start = parse_model(args.model.read_text(encoding="utf-8"), str(args.model))
    result = calibrate_split(start, split, DEFAULT_BAND)
    calibration = result.calibration
    learned = calibration.model
    figures = {
        "propensity (ceiling)": auc(
            [history.propensity[e.contact.crm_id] for e in holdout], labels
        ),
        "count of activities (baseline)": auc([len(e.activities) for e in holdout], labels),
        "default.yaml": auc(totals(model, holdout, now), labels),
        f"{args.model.name}, calibrated": auc(totals(learned, holdout, now), labels),
    }
    print(f"seed {args.seed}, {args.contacts} people: split {split.description}")
    print(
        f"learned from {len(train)} contact-cuts, {calibration.train_converters} accepted "
        "within 90 days (as the CRMs show it)"
    )
    print(
        f"judged at {now:%Y-%m-%d}: {len(holdout)} not yet accepted, {sum(labels)} become "
        "SQL within 90 days (hidden truth)"
    )
    for name, value in figures.items():
        print(f"  AUC {name:32} {value:.3f}" if value is not None else f"  AUC {name}: n/a")
    ceiling = figures["propensity (ceiling)"]
    calibrated = figures[f"{args.model.name}, calibrated"]
    if ceiling and calibrated:
        print(f"  calibrated / ceiling: {calibrated / ceiling:.3f} (target >= 0.93)")
    check = result.threshold_check
    if check is not None:
        print(
            f"  threshold learned from the past: {check.threshold:g}, over it "
            f"{check.train_share:.1%} of the training contacts; at {now:%Y-%m-%d}: "
            f"{check.holdout_mqls} MQLs ({check.holdout_share:.1%}), conversion "
            + (f"{check.holdout_conversion:.1%}" if check.holdout_conversion is not None else "n/a")
            + (" (band 15-30%)" if check.holds else " (band 15-30%; does not hold)")
        )
    pick = recommend_threshold(totals(learned, holdout, now), labels)
    print(f"  the threshold the judged data itself recommends: {pick.reason}")
    learned_points = {c.rule: c.new for c in calibration.rules if c.new}
    print(f"  points learned: {learned_points}")


if __name__ == "__main__":
    main()
