"""Contacts scored per second: 20 activities each, the example model, one core.

Target: 10,000 contacts/s, five times the fastest rate HubSpot can deliver records
(190 requests per 10 s x 100 records = 1,900 records/s).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring.engine import compile_model  # noqa: E402
from scoring.model import parse_model  # noqa: E402
from scoring.records import Activity, ActivityType, Contact  # noqa: E402

TARGET = 10_000
HUBSPOT_MAX_RECORDS_PER_S = 190 / 10 * 100
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
URLS = ["/pricing", "/blog/a", "/features", "/pricing/enterprise", "/docs"]
TITLES = ["VP Sales", "Engineer", "Director of IT", "Student", "Head of Growth", None]


def population(n: int, per_contact: int, seed: int = 7) -> list[tuple[Contact, list[Activity]]]:
    rng = random.Random(seed)
    kinds = list(ActivityType)
    data = []
    for i in range(n):
        contact = Contact(
            crm="hubspot",
            crm_id=str(i),
            job_title=rng.choice(TITLES),
            company_size=rng.randint(1, 5000),
            industry=rng.choice(["software", "retail", "saas", None]),
        )
        acts = [
            Activity(
                crm="hubspot",
                crm_id=f"{i}-{j}",
                contact_id=str(i),
                type=rng.choice(kinds),
                occurred_at=AS_OF - timedelta(minutes=rng.randint(0, 200 * 24 * 60)),
                url=rng.choice(URLS),
                asset_type=rng.choice(["case_study", "ebook", None]),
            )
            for j in range(per_contact)
        ]
        data.append((contact, acts))
    return data


def main() -> None:
    model = parse_model((ROOT / "scoring/models/example.yaml").read_text(), "example.yaml")
    compiled = compile_model(model)
    data = population(20_000, 20)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        mqls = 0
        for contact, acts in data:
            mqls += compiled.score(contact, acts, AS_OF).is_mql
        elapsed = time.perf_counter() - start
        best = max(best, len(data) / elapsed)
    print(f"scoring: {len(data)} contacts x 20 activities, example model, one core")
    print(f"  contacts/s (best of 3): {best:,.0f}   target {TARGET:,}   MQLs: {mqls}")
    print(
        f"  vs HubSpot's fastest delivery ({HUBSPOT_MAX_RECORDS_PER_S:,.0f}/s): "
        f"{best / HUBSPOT_MAX_RECORDS_PER_S:.1f}x"
    )
    print(f"  target met: {'yes' if best >= TARGET else 'NO'}")


if __name__ == "__main__":
    main()
