"""HubSpot writes against the answers a real portal gives, over HTTPS to the sandbox.

A whole batch refused for one bad input, a backward stage set ignored with a 200, a
search that lags writes by seconds, rate-limit headers and the daily budget: every
other record is written, the bad one fails with its reason, nothing is created twice,
and a move HubSpot ignored is never recorded as done. Tests wait on states (the sandbox's
admin API shows what exists), never on sleeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.config import HubSpotConfig, ThrottleSettings
from connectors.errors import RunBudgetSpent
from connectors.hubspot import HubSpotConnector
from connectors.throttle import DailyQuota, RateLimitHeaders
from scoring.records import Crm, LifecycleStage
from scoring.writes import HandoffTask, OutcomeStatus, Priority, PropertyUpdate, StageChange
from tests.connectors.clock import Clock
from tests.connectors.conftest import TEST_RETRY

FAST = ThrottleSettings(rate=1_000.0, burst=100)
TASKS = "/crm/v3/objects/tasks"
UPDATE = "POST /crm/v3/objects/contacts/batch/update"
KEY = "mqlsync_handoff_key"


def connector(sb: Any, **overrides: Any) -> HubSpotConnector:
    values: dict[str, Any] = {
        "access_token": sb.hubspot_token,
        "host": sb.base_url,
        "ca_file": sb.ca_file,
        "timeout_s": 5.0,
        "throttle": FAST,
        "search_throttle": ThrottleSettings(rate=50.0, burst=10),
        "retry": TEST_RETRY,
        "settle_s": 0.0,
    }
    values.update(overrides)
    return HubSpotConnector(HubSpotConfig(**values))


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    # 500 people: enough HubSpot contacts at each stage (8 at SQL) for the stage moves.
    with running_sandbox(contacts=500, seed=21, hubspot_search_per_s=1_000) as handle:
        yield handle


def live_ids(sb: Any, n: int, start: int = 0) -> list[str]:
    return [str(i) for i in sb.sandbox.portal.live_ids[start : start + n]]


def gone_id(sb: Any, n: int) -> str:
    """The id of a contact that no longer exists (merged away or deleted since the pull)."""
    portal = sb.sandbox.portal
    archived = getattr(portal, "archived_ids", [])
    return str(archived[n]) if len(archived) > n else str(max(portal.contacts) + 1_000 + n)


def stage_of(sb: Any, crm_id: str) -> str | None:
    value = sb.admin.hubspot_contact(crm_id)["properties"].get("lifecyclestage")
    return str(value) if value else None


def tasks_by_key(sb: Any) -> Counter[str]:
    return Counter(str((t.get("properties") or {}).get(KEY)) for t in sb.admin.hubspot_tasks())


def task(key: str, contact_id: str, owner_id: str | None = None) -> HandoffTask:
    return HandoffTask(
        crm=Crm.HUBSPOT, key=key, contact_id=contact_id, owner_id=owner_id,
        subject="Follow up on MQL", body="why", priority=Priority.HIGH,
        due_at=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip


# --- whole-batch refusals ---------------------------------------------------------------


def test_a_batch_update_refused_for_one_contact_writes_all_the_others(sb: Any) -> None:
    ids = live_ids(sb, 12)
    bad = ids[7]
    updates = [
        PropertyUpdate(
            crm=Crm.HUBSPOT, crm_id=i, values={"score": "not a number" if i == bad else 41}
        )
        for i in ids
    ]
    hs = connector(sb)
    before = sb.admin.stats()["requests"].get(UPDATE, 0)
    outcomes = hs.update_properties(updates)
    sent = sb.admin.stats()["requests"].get(UPDATE, 0) - before

    assert [o.target for o in outcomes] == ids, "outcomes stay aligned with the inputs"
    # Halved down to the bad record: a few requests, never one per contact.
    assert 3 <= sent <= 1 + 2 * 4, sent
    failed = [o for o in outcomes if o.status is OutcomeStatus.FAILED]
    assert [o.target for o in failed] == [bad]
    message = failed[0].message or ""
    assert f"contact {bad}" in message and "VALIDATION_ERROR" in message, message
    assert sb.hubspot_token not in message
    for i in ids:
        score = sb.admin.hubspot_contact(i)["properties"].get("mqlsync_score")
        assert (str(score) in ("41", "41.0")) == (i != bad), (i, score)


def test_a_contact_gone_since_the_pull_fails_alone(sb: Any) -> None:
    gone = gone_id(sb, 0)
    ids = [*live_ids(sb, 3, start=20), gone]
    hs = connector(sb)
    outcomes = hs.update_properties(
        [PropertyUpdate(crm=Crm.HUBSPOT, crm_id=i, values={"score": 17}) for i in ids]
    )
    by_id = {o.target: o for o in outcomes}
    assert by_id[gone].status is OutcomeStatus.FAILED
    assert f"contact {gone}" in (by_id[gone].message or "")
    assert all(by_id[i].status is OutcomeStatus.OK for i in ids if i != gone)


def test_a_task_batch_refused_for_one_task_creates_all_the_others(sb: Any) -> None:
    portal = sb.sandbox.portal
    owners = sorted(portal.owner_ids())
    good_owner, leaving = str(owners[0]), str(owners[1])
    contacts = live_ids(sb, 9, start=40)
    tasks = [
        task(f"refusal-{n}", c, leaving if n == 4 else good_owner) for n, c in enumerate(contacts)
    ]
    gone = gone_id(sb, 1)
    tasks.append(task("refusal-gone", gone, good_owner))
    sb.admin.set_hubspot_owner_active(leaving, False)
    try:
        hs = connector(sb)
        outcomes = hs.create_tasks(tasks)
    finally:
        sb.admin.set_hubspot_owner_active(leaving, True)

    assert [o.target for o in outcomes] == [t.key for t in tasks]
    by_key = {o.target: o for o in outcomes}
    refused = {"refusal-4", "refusal-gone"}
    assert {k for k, o in by_key.items() if o.status is OutcomeStatus.FAILED} == refused
    assert "task refusal-4" in (by_key["refusal-4"].message or "")
    assert leaving in (by_key["refusal-4"].message or ""), "the message gives HubSpot's reason"
    assert gone in (by_key["refusal-gone"].message or "")
    created = tasks_by_key(sb)
    for t in tasks:
        assert created[t.key] == (0 if t.key in refused else 1), t.key
        if t.key not in refused:
            assert by_key[t.key].crm_object_id


# --- stage moves ------------------------------------------------------------------------


def contacts_at(sb: Any, stage: str, n: int) -> list[str]:
    portal = sb.sandbox.portal
    found = [
        str(cid)
        for cid in portal.live_ids
        if portal.contact_value(portal.contacts[cid], "lifecyclestage") == stage
    ]
    assert len(found) >= n, f"the sandbox has too few contacts at {stage}"
    return found[:n]


def test_a_move_hubspot_ignores_is_not_recorded_as_done(sb: Any) -> None:
    # The service believes these are leads; sales made one a customer since the pull, so
    # the "forward" move to MQL is in fact backward, and HubSpot ignores it with a 200.
    lead, customer = contacts_at(sb, "lead", 1)[0], contacts_at(sb, "customer", 1)[0]
    hs = connector(sb)
    changes = [
        StageChange(
            crm=Crm.HUBSPOT, crm_id=i, from_stage=LifecycleStage.LEAD,
            to_stage=LifecycleStage.MQL,
        )
        for i in (lead, customer)
    ]  # fmt: skip
    ok, ignored = hs.change_stages(changes)
    assert ok.status is OutcomeStatus.OK, ok.message
    assert stage_of(sb, lead) == "marketingqualifiedlead"
    assert ignored.status is OutcomeStatus.FAILED
    assert stage_of(sb, customer) == "customer"
    assert "did not happen" in (ignored.message or "") and customer in (ignored.message or "")


def test_a_backward_move_is_cleared_then_set_and_read_back(sb: Any) -> None:
    moving = contacts_at(sb, "salesqualifiedlead", 2)
    hs = connector(sb)
    outcomes = hs.change_stages(
        [
            StageChange(
                crm=Crm.HUBSPOT, crm_id=i, from_stage=LifecycleStage.SQL,
                to_stage=LifecycleStage.LEAD,
            )
            for i in moving
        ]
    )  # fmt: skip
    assert [o.status for o in outcomes] == [OutcomeStatus.OK, OutcomeStatus.OK]
    assert [stage_of(sb, i) for i in moving] == ["lead", "lead"]


def test_a_stage_batch_refused_for_one_contact_moves_the_others(sb: Any) -> None:
    leads = contacts_at(sb, "lead", 6)[2:6]
    gone = gone_id(sb, 2)
    hs = connector(sb)
    changes = [
        StageChange(
            crm=Crm.HUBSPOT, crm_id=i, from_stage=LifecycleStage.LEAD,
            to_stage=LifecycleStage.MQL, lead_status="mql",
        )
        for i in [*leads, gone]
    ]  # fmt: skip
    outcomes = hs.change_stages(changes)
    assert [o.target for o in outcomes] == [*leads, gone]
    assert [o.status for o in outcomes[:-1]] == [OutcomeStatus.OK] * 4
    assert outcomes[-1].status is OutcomeStatus.FAILED
    assert all(stage_of(sb, i) == "marketingqualifiedlead" for i in leads)


def test_a_move_whose_read_back_fails_is_unconfirmed_not_failed(sb: Any) -> None:
    """Accepted but not read back: it may have landed, so it must not be given up as
    "not moved" (its caller would release the handoff of a contact now at MQL)."""
    leads = contacts_at(sb, "lead", 9)[6:8]
    hs = connector(sb)
    # Every read of the contacts fails for longer than the retries last.
    sb.admin.set_faults([{"kind": "500", "count": 50, "crm": "hubspot",
                          "path": "/crm/v3/objects/contacts/batch/read"}])  # fmt: skip
    try:
        outcomes = hs.change_stages(
            [
                StageChange(
                    crm=Crm.HUBSPOT, crm_id=i, from_stage=LifecycleStage.LEAD,
                    to_stage=LifecycleStage.MQL, lead_status="mql",
                )
                for i in leads
            ]
        )  # fmt: skip
    finally:
        sb.admin.clear_faults()
    assert [o.status for o in outcomes] == [OutcomeStatus.UNCONFIRMED] * 2
    assert all("not confirmed" in (o.message or "") for o in outcomes)
    assert all(stage_of(sb, i) == "marketingqualifiedlead" for i in leads)


# --- creates that may have landed ------------------------------------------------------


# The settle time covers the lag and what a busy machine adds: a create the client gave
# up on may be processed by the (in-process) sandbox a moment after the client failed.
LAG_S = 0.5
SETTLE_S = 3.0


@pytest.fixture
def lagging() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(
        contacts=60, seed=22, hubspot_search_per_s=1_000, search_lag_s=LAG_S
    ) as handle:
        yield handle


def test_a_lost_create_is_found_once_the_search_index_caught_up(lagging: Any) -> None:
    sb = lagging
    contacts = live_ids(sb, 3)
    tasks = [task(f"lost-{n}", c) for n, c in enumerate(contacts)]
    # The write lands and its answer is lost; search sees it only after the lag.
    sb.admin.set_faults([{"kind": "lost_write", "count": 1, "path": TASKS, "crm": "hubspot"}])
    hs = connector(sb, settle_s=SETTLE_S)
    outcomes = hs.create_tasks(tasks)
    sb.admin.clear_faults()
    assert {o.status for o in outcomes} == {OutcomeStatus.OK}
    created = tasks_by_key(sb)
    assert [created[t.key] for t in tasks] == [1, 1, 1], "a task was created twice"


def test_the_lag_is_the_same_after_a_bulk_write_ran_the_stamps_ahead(lagging: Any) -> None:
    """Stamps are strictly increasing, so a bulk write of thousands of records within a
    few milliseconds runs them seconds ahead of the wall clock; the search lag must still
    last what it says (it once lasted that much longer, and a lookup made after the
    settle time missed tasks that existed: each was created twice)."""
    from sandbox.clock import now_ms, wall_ms

    for _ in range(20_000):  # what stamping 20,000 records in one burst does
        now_ms()
    assert now_ms() - wall_ms() > 5_000, "the stamps did not run ahead: nothing is tested"
    sb = lagging
    tasks = [task(f"bulk-{n}", c) for n, c in enumerate(live_ids(sb, 2, start=20))]
    sb.admin.set_faults([{"kind": "lost_write", "count": 1, "path": TASKS, "crm": "hubspot"}])
    outcomes = connector(sb, settle_s=SETTLE_S).create_tasks(tasks)
    sb.admin.clear_faults()
    assert {o.status for o in outcomes} == {OutcomeStatus.OK}
    created = tasks_by_key(sb)
    assert [created[t.key] for t in tasks] == [1, 1], "a task was created twice"


def test_without_waiting_out_the_lag_the_task_would_be_created_twice(lagging: Any) -> None:
    # The control: the sandbox's lag is real, so the test above proves the wait.
    sb = lagging
    t = task("lost-control", live_ids(sb, 1, start=10)[0])
    sb.admin.set_faults([{"kind": "lost_write", "count": 1, "path": TASKS, "crm": "hubspot"}])
    connector(sb, settle_s=0.0).create_tasks([t])
    sb.admin.clear_faults()
    assert tasks_by_key(sb)[t.key] == 2


@pytest.mark.parametrize("kind", ["500", "503"])
def test_a_create_answered_with_a_5xx_is_looked_up_before_it_is_sent_again(
    sb: Any, kind: str
) -> None:
    t = task(f"answered-{kind}", live_ids(sb, 1, start=60)[0])
    before = sb.admin.stats()["requests"]
    sb.admin.set_faults([{"kind": kind, "count": 1, "path": TASKS, "crm": "hubspot"}])
    (outcome,) = connector(sb).create_tasks([t])
    sb.admin.clear_faults()
    after = sb.admin.stats()["requests"]
    searches = after.get(f"POST {TASKS}/search", 0) - before.get(f"POST {TASKS}/search", 0)
    assert outcome.status is OutcomeStatus.OK
    assert tasks_by_key(sb)[t.key] == 1
    assert searches >= 1, "the second create went out without a lookup"


# --- rate-limit headers and the daily budget --------------------------------------------


def test_the_daily_quota_is_read_from_the_answers(sb: Any) -> None:
    hs = connector(sb)
    assert hs.quota() is None
    hs.read_status(live_ids(sb, 2))
    quota = hs.quota()
    limits = sb.admin.stats()["limits"]["hubspot"]
    assert quota is not None and quota.limit == limits["daily"]
    assert quota.remaining == limits["daily"] - limits["used_today"]


def test_a_run_stops_at_its_share_of_the_daily_budget() -> None:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=30, seed=23, hubspot_daily=40) as sb:
        hs = connector(sb, daily_budget_share=0.25)
        with pytest.raises(RunBudgetSpent, match="daily API budget is spent"):
            for _ in range(40):
                hs.read_status(live_ids(sb, 1))
        stats = sb.admin.stats()
        assert stats["limits"]["hubspot"]["used_today"] == 10 == hs.requests_sent
        assert stats["throttled_by_policy"].get("DAILY", 0) == 0


def test_the_ten_second_window_is_paced_from_the_headers() -> None:
    from sandbox.testing import running_sandbox

    # The local bucket allows 1,000 requests/s; the account's window holds 10 per 10 s.
    with running_sandbox(contacts=30, seed=24, hubspot_per_10s=10) as sb:
        hs = connector(sb)
        for _ in range(14):
            hs.read_status(live_ids(sb, 1))
        stats = sb.admin.stats()
        assert stats["throttled_by_policy"].get("TEN_SECONDLY_ROLLING", 0) == 0
        assert stats["limits"]["hubspot"]["used_today"] == 14


def headers(remaining: int, daily_remaining: int = 900) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Daily": "1000",
        "X-HubSpot-RateLimit-Daily-Remaining": str(daily_remaining),
    }


def test_pacing_by_headers() -> None:
    clock = Clock(100.0)
    limits = RateLimitHeaders(0.1, clock=clock, sleep=clock.sleep)
    assert limits.pace() == 0 and limits.quota() is None
    limits.observe(headers(50, 800))
    assert limits.quota() == DailyQuota(1000, 800)
    assert [limits.pace() for _ in range(5)] == [0.0] * 5  # plenty left: no wait
    limits.observe(headers(3))
    # Low: spaced at the window's average rate (10 s / 100 = 0.1 s).
    assert [limits.pace() for _ in range(3)] == pytest.approx([0.1, 0.1, 0.1])
    # Nothing left: wait until the window seen in the last answer has passed.
    seen = clock.now
    limits.observe(headers(0))
    assert limits.pace() == pytest.approx(10.0) and clock.now == pytest.approx(seen + 10.0)
    limits.observe({"content-type": "application/json"})  # a search answer: no headers
    assert limits.quota() == DailyQuota(1000, 900)
