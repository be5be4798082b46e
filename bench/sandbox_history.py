"""A sandbox's people as a backtest dataset: contacts, activities and dated outcomes
pulled through the real connectors (both CRMs); the admin API's hidden truth beside it.

`python bench/sandbox_history.py --contacts 2000 --seed 42 --out DIR` writes
`contacts.jsonl`, `activities.jsonl` and `outcomes.csv` in the formats `mqlsync
backtest` and `mqlsync calibrate` read, so both can be run on them by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.config import HubSpotConfig, SalesforceConfig, ThrottleSettings  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from connectors.protocol import CrmConnector  # noqa: E402
from connectors.salesforce import SalesforceConnector  # noqa: E402
from flows.history import Dataset, Outcome  # noqa: E402
from sandbox.clock import DEFAULT_AS_OF_MS  # noqa: E402
from scoring.records import Activity, Contact  # noqa: E402
from store.audit import keep_earliest  # noqa: E402

AS_OF = datetime.fromtimestamp(DEFAULT_AS_OF_MS / 1000, tz=UTC)
FAST = ThrottleSettings(rate=1000.0, burst=200)


@dataclass
class SandboxHistory:
    dataset: Dataset  # outcomes as the CRMs date them: HubSpot's SQL date, conversions
    as_of: datetime
    propensity: dict[str, float]  # the hidden chance of becoming SQL, by contact id
    future: dict[str, datetime]  # the hidden outcome: who becomes SQL after `as_of`, when


def connectors(sb: Any) -> list[CrmConnector]:
    hubspot = HubSpotConnector(
        HubSpotConfig(
            access_token=sb.hubspot_token,
            host=sb.base_url,
            ca_file=sb.ca_file,
            throttle=FAST,
            search_throttle=FAST,
            activity_lookback_days=None,  # the whole journey, not the first-pull window
        )
    )
    salesforce = SalesforceConnector(
        SalesforceConfig(
            instance_url=sb.base_url,
            session_id=sb.salesforce_session_id,
            ca_file=sb.ca_file,
            throttle=FAST,
        )
    )
    return [hubspot, salesforce]


def pull_history(sb: Any) -> SandboxHistory:
    """Everyone live in the sandbox with their activities and the outcomes the CRMs show
    (the day HubSpot stamped SQL, the day a Salesforce lead was converted, which counts
    for the Contact it became); and, apart, the admin API's hidden truth."""
    contacts: list[Contact] = []
    activities: dict[str, list[Activity]] = {}
    accepted: dict[str, datetime] = {}
    for crm in connectors(sb):
        for page in crm.pull_contacts(None):
            contacts.extend(page.records)
        for activity_page in crm.pull_activities(None):
            for activity in activity_page.records:
                activities.setdefault(activity.contact_id, []).append(activity)
        for deletion_page in crm.pull_deletions(None):
            for deletion in deletion_page.records:
                if deletion.converted_to and deletion.converted_at:
                    keep_earliest(accepted, deletion.converted_to, deletion.converted_at)
    for contact in contacts:
        if contact.accepted_at is not None:
            keep_earliest(accepted, contact.crm_id, contact.accepted_at)
    live = {c.crm_id for c in contacts}
    outcomes = {
        crm_id: Outcome(crm_id=crm_id, converted=True, converted_at=at)
        for crm_id, at in accepted.items()
        if crm_id in live
    }
    propensity: dict[str, float] = {}
    future: dict[str, datetime] = {}
    for row in sb.admin.outcomes():
        crm_id = str(row["id"])
        if crm_id not in live:
            continue
        propensity[crm_id] = float(row["propensity"])
        if row["became_sql"] and row["sql_at"]:
            at = datetime.fromisoformat(str(row["sql_at"]).replace("+0000", "+00:00"))
            if at > AS_OF:
                future[crm_id] = at
    dataset = Dataset(contacts=contacts, activities=activities, outcomes=outcomes)
    return SandboxHistory(dataset=dataset, as_of=AS_OF, propensity=propensity, future=future)


def write_files(history: SandboxHistory, out: Path) -> list[Path]:
    """The dataset as the files `mqlsync backtest` and `calibrate` read.

    `outcomes.csv` holds the conversions the CRMs show (before `as_of`) and, after it, the
    hidden ones: `mqlsync calibrate --as-of AS_OF` on these files learns from the past and
    is judged against the truth, as `bench/calibration.py` does.
    """
    out.mkdir(parents=True, exist_ok=True)
    contacts, activities, outcomes = (
        out / "contacts.jsonl",
        out / "activities.jsonl",
        out / "outcomes.csv",
    )
    with contacts.open("w", encoding="utf-8") as f:
        for contact in history.dataset.contacts:
            f.write(json.dumps(contact.model_dump(mode="json", exclude_none=True)) + "\n")
    with activities.open("w", encoding="utf-8") as f:
        for acts in history.dataset.activities.values():
            for activity in acts:
                f.write(json.dumps(activity.model_dump(mode="json", exclude_none=True)) + "\n")
    with outcomes.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["crm_id", "converted", "converted_at"])
        for contact in history.dataset.contacts:
            outcome = history.dataset.outcomes.get(contact.crm_id)
            at = outcome.converted_at if outcome else history.future.get(contact.crm_id)
            writer.writerow([contact.crm_id, 1 if at else 0, at.isoformat() if at else ""])
    return [contacts, activities, outcomes]


def main() -> None:
    from sandbox.run import running_sandbox

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with running_sandbox(contacts=args.contacts, seed=args.seed, hubspot_search_per_s=1000) as sb:
        history = pull_history(sb)
    for path in write_files(history, args.out):
        print(path)
    print(f"as of {history.as_of.isoformat()}")


if __name__ == "__main__":
    main()
