"""A store with a known history, for the tests of the backtest's store input: forty
Salesforce leads, the first twenty with a demo request, some of those accepted by sales."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from scoring.records import Activity, ActivityType, Contact, Crm
from store import audit, mirror
from store.audit import AuditEvent
from store.db import make_engine, migrate

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def build_history_store(url: str, accepted: int, more: Sequence[AuditEvent] = ()) -> None:
    """Forty leads; the first twenty asked for a demo three days before AS_OF, and sales
    accepted the first `accepted` of them ten days after it; `more` events are recorded
    with them."""
    engine = make_engine(url)
    migrate(engine)
    contacts = [
        Contact(crm=Crm.SALESFORCE, crm_id=f"00Q{i:03d}", created_at=AS_OF - timedelta(days=60))
        for i in range(40)
    ]
    mirror.upsert_contacts(engine, contacts, AS_OF)
    demos = [
        Activity(
            crm=Crm.SALESFORCE,
            crm_id=f"00T{i:03d}",
            contact_id=f"00Q{i:03d}",
            type=ActivityType.DEMO_REQUEST,
            occurred_at=AS_OF - timedelta(days=3),
        )
        for i in range(20)
    ]
    mirror.upsert_activities(engine, demos)
    events = [
        AuditEvent("salesforce", f"00Q{i:03d}", "feedback", "accepted", detail={"stage": "sql"})
        for i in range(accepted)
    ]
    audit.record(engine, [*events, *more], None, AS_OF + timedelta(days=10))
    engine.dispose()
