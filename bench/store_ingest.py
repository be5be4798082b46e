"""Rows per second ingesting activities into the store (SQLite file by default).

Target: 20,000 rows/s on SQLite for 100,000 activities, in pages of 1,000 as pulls deliver
them. Pass a SQLAlchemy URL as the first argument to measure another database.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring.records import Activity  # noqa: E402
from store.db import make_engine, migrate  # noqa: E402
from store.mirror import upsert_activities  # noqa: E402

TOTAL = 100_000
PAGE = 1_000
TARGET = 20_000
NOW = datetime(2026, 11, 1, tzinfo=UTC)
KINDS = ["page_view", "email_open", "content_download", "webinar_attended", "form_submission"]


def activities() -> list[Activity]:
    return [
        Activity(
            crm="hubspot",
            crm_id=f"act-{i}",
            contact_id=f"c{i % 5_000}",
            type=KINDS[i % len(KINDS)],
            occurred_at=NOW - timedelta(minutes=i),
            url=f"https://example.com/page/{i % 50}",
            campaign="Q4" if i % 3 == 0 else None,
        )
        for i in range(TOTAL)
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        migrate(engine)
        rows = activities()
        start = time.perf_counter()
        for offset in range(0, TOTAL, PAGE):
            upsert_activities(engine, rows[offset : offset + PAGE])
        first = time.perf_counter() - start
        start = time.perf_counter()
        for offset in range(0, TOTAL, PAGE):  # the overlap window re-reads: all conflicts
            upsert_activities(engine, rows[offset : offset + PAGE])
        again = time.perf_counter() - start
        engine.dispose()
    dialect = url.split(":", 1)[0]
    print(f"store ingest: {TOTAL:,} activities in pages of {PAGE:,} on {dialect}")
    print(f"  new rows:      {TOTAL / first:,.0f} rows/s   target {TARGET:,}")
    print(f"  re-read rows:  {TOTAL / again:,.0f} rows/s (upsert over existing rows)")
    print(f"  target met: {'yes' if TOTAL / first >= TARGET else 'NO'}")


if __name__ == "__main__":
    main()
