"""One contract suite, run against both connectors, over TLS with the real clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.protocol import CrmConnector
from scoring.records import Crm, LifecycleStage
from scoring.writes import HandoffTask, OutcomeStatus, Priority, PropertyUpdate, StageChange
from tests.connectors.conftest import make_connector


def _pull_all(pages: Any) -> tuple[list[Any], datetime | None, int]:
    records: list[Any] = []
    cursor = None
    count = 0
    for page in pages:
        records.extend(page.records)
        count += 1
        if page.cursor is not None:
            cursor = page.cursor
    return records, cursor, count


def test_connector_satisfies_protocol(crm: str, small_sandbox: Any) -> None:
    assert isinstance(make_connector(crm, small_sandbox), CrmConnector)


def test_mapping_matches_the_crm(crm: str, small_sandbox: Any) -> None:
    assert make_connector(crm, small_sandbox).check_mapping() == []


def test_full_pull_has_no_duplicates_and_returns_a_cursor(crm: str, small_sandbox: Any) -> None:
    connector = make_connector(crm, small_sandbox)
    contacts, cursor, _ = _pull_all(connector.pull_contacts(None))
    ids = [c.crm_id for c in contacts]
    assert ids and len(ids) == len(set(ids))
    assert cursor is not None
    activities, activity_cursor, _ = _pull_all(connector.pull_activities(None))
    activity_ids = [a.crm_id for a in activities]
    assert len(activity_ids) == len(set(activity_ids))
    assert activity_cursor is not None
    assert {a.contact_id for a in activities} <= set(ids) | {a.contact_id for a in activities}


def test_second_pull_reads_only_the_overlap(crm: str, small_sandbox: Any) -> None:
    connector = make_connector(crm, small_sandbox)
    everything, cursor, _ = _pull_all(connector.pull_contacts(None))
    again, _, pages = _pull_all(connector.pull_contacts(cursor))
    assert len(again) < len(everything)
    assert pages <= 2


def test_write_back_and_read_status(crm: str, small_sandbox: Any) -> None:
    connector = make_connector(crm, small_sandbox)
    contacts, _, _ = _pull_all(connector.pull_contacts(None))
    target = next(
        c
        for c in contacts
        if c.lifecycle_stage in (LifecycleStage.LEAD, LifecycleStage.SUBSCRIBER)
        and (crm == "hubspot" or c.crm_id.startswith("00Q"))
    )
    crm_enum = Crm(crm)
    outcomes = connector.update_properties(
        [PropertyUpdate(crm=crm_enum, crm_id=target.crm_id, values={"score": 42, "grade": "B"})]
    )
    assert [o.status for o in outcomes] == [OutcomeStatus.OK]
    outcomes = connector.change_stages(
        [
            StageChange(
                crm=crm_enum,
                crm_id=target.crm_id,
                from_stage=target.lifecycle_stage,
                to_stage=LifecycleStage.MQL,
                lead_status="mql" if crm == "salesforce" else None,
            )
        ]
    )
    assert [o.status for o in outcomes] == [OutcomeStatus.OK]
    status = connector.read_status([target.crm_id])[target.crm_id]
    assert status.lifecycle_stage is LifecycleStage.MQL
    # Backward (recycling): HubSpot needs a clear then a set; both must succeed.
    outcomes = connector.change_stages(
        [
            StageChange(
                crm=crm_enum,
                crm_id=target.crm_id,
                from_stage=LifecycleStage.MQL,
                to_stage=LifecycleStage.LEAD,
                lead_status="recycled",
            )
        ]
    )
    assert [o.status for o in outcomes] == [OutcomeStatus.OK]
    assert connector.read_status([target.crm_id])[target.crm_id].status_key == "recycled"


def test_tasks_are_created_once_and_found_by_key(crm: str, small_sandbox: Any) -> None:
    connector = make_connector(crm, small_sandbox)
    contacts, _, _ = _pull_all(connector.pull_contacts(None))
    due = datetime.now(UTC) + timedelta(days=1)
    tasks = [
        HandoffTask(
            crm=Crm(crm),
            key=f"{crm}:{c.crm_id}:t1",
            contact_id=c.crm_id,
            owner_id=c.owner_id,
            subject="New MQL",
            body="Fit A",
            due_at=due,
            priority=Priority.HIGH,
        )
        for c in contacts[:3]
    ]
    outcomes = connector.create_tasks(tasks)
    assert all(o.status is OutcomeStatus.OK and o.crm_object_id for o in outcomes)
    found = connector.find_tasks([t.key for t in tasks] + ["no-such-key"])
    assert found == {t.key: o.crm_object_id for t, o in zip(tasks, outcomes, strict=True)}
