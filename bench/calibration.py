"""Does a calibrated model predict? Figures on the sandbox's people against its hidden truth.

The sandbox draws each person's propensity to become SQL, and the outcome (SQL within 90
days after its `as_of`) from it; the CRMs only ever see the journeys. This pulls everyone
through the real connectors, scores them at `as_of`, and compares, on a seeded holdout of
people (the calibration learns from the others):

- the propensity itself (the ceiling: no model can know more),
- the count of activities (the naive baseline),
- `scoring/models/default.yaml` as shipped,
- the same model with points calibrated on the training people.

Printed: each AUC, the calibrated model's share of the ceiling, and the conversion and
recall of its recommended threshold on the holdout. People already past SQL at `as_of`
are sales' and left out. The split is by people at one instant, not by time: the
sandbox's history holds no dated conversions before `as_of` to learn from.

    python bench/calibration.py --contacts 2000 --seed 42
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox_history import pull_history  # noqa: E402
from scoring.backtest import auc, recommend_threshold  # noqa: E402
from scoring.calibrate import Example, calibrate, totals  # noqa: E402
from scoring.model import parse_model  # noqa: E402

MODEL = ROOT / "scoring" / "models" / "default.yaml"
CANDIDATES = ROOT / "scoring" / "models" / "candidates.yaml"


def main() -> None:
    from sandbox.testing import running_sandbox

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdout", type=float, default=0.3)
    parser.add_argument(
        "--model", type=Path, default=CANDIDATES, help="the model whose points are learned"
    )
    args = parser.parse_args()
    with running_sandbox(contacts=args.contacts, seed=args.seed, hubspot_search_per_s=1000) as sb:
        history = pull_history(sb)
    now = history.as_of
    data = history.dataset
    examples: list[Example] = []
    for contact in data.contacts:
        outcome = data.outcomes.get(contact.crm_id)
        if outcome is not None and outcome.converted_at and outcome.converted_at < now:
            continue  # already sales' at `as_of`
        acts = [a for a in data.activities.get(contact.crm_id, []) if a.occurred_at <= now]
        examples.append(Example(contact, acts, outcome is not None))
    rng = random.Random(args.seed)
    rng.shuffle(examples)
    cut = int(len(examples) * args.holdout)
    holdout, train = examples[:cut], examples[cut:]
    labels = [e.converted for e in holdout]

    model = parse_model(MODEL.read_text(encoding="utf-8"), str(MODEL))
    start = parse_model(args.model.read_text(encoding="utf-8"), str(args.model))
    calibration = calibrate(start, train, now)
    learned = calibration.model
    figures = {
        "propensity (ceiling)": auc(
            [history.propensity[e.contact.crm_id] for e in holdout], labels
        ),
        "count of activities (baseline)": auc([len(e.activities) for e in holdout], labels),
        "default.yaml": auc(totals(model, holdout, now), labels),
        f"{args.model.name}, calibrated": auc(totals(learned, holdout, now), labels),
    }
    print(
        f"seed {args.seed}, {args.contacts} people: {len(train)} to learn from, "
        f"{len(holdout)} held out ({sum(labels)} became SQL within 90 days of {now:%Y-%m-%d})"
    )
    for name, value in figures.items():
        print(f"  AUC {name:32} {value:.3f}" if value is not None else f"  AUC {name}: n/a")
    ceiling = figures["propensity (ceiling)"]
    calibrated = figures[f"{args.model.name}, calibrated"]
    if ceiling and calibrated:
        print(f"  calibrated / ceiling: {calibrated / ceiling:.3f} (target >= 0.93)")
    pick = recommend_threshold(totals(learned, holdout, now), labels)
    trained_pick = recommend_threshold(totals(learned, train, now), [e.converted for e in train])
    if trained_pick.threshold is not None:
        scores = totals(learned, holdout, now)
        mqls = [label for score, label in zip(scores, labels, strict=True)
                if score >= trained_pick.threshold]  # fmt: skip
        conversion = sum(mqls) / len(mqls) if mqls else None
        recall = sum(mqls) / sum(labels) if sum(labels) else None
        print(
            f"  threshold learned on the training people: {trained_pick.threshold:g}; on the "
            f"holdout: {len(mqls)} MQLs, conversion "
            + (f"{conversion:.1%}" if conversion is not None else "n/a")
            + ", recall "
            + (f"{recall:.1%}" if recall is not None else "n/a")
            + " (band 15-30%)"
        )
    print(f"  best threshold on the holdout itself: {pick.reason}")
    learned_points = {c.rule: c.new for c in calibration.rules if c.new}
    print(f"  points learned: {learned_points}")


if __name__ == "__main__":
    main()
