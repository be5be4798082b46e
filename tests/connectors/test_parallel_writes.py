"""Batches of one write sent at once (`concurrency` above 1): the same outcomes as one
after the other, real overlap at the sandbox only when asked, and no send left running
when one fails. The helper on plain sends, the connectors over real HTTPS."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.config import HubSpotConfig, SalesforceConfig
from connectors.errors import FatalError
from connectors.hubspot import BATCH_SIZE, HubSpotConnector
from connectors.retry import PartialAnswer, RetryPolicy, retry_partial
from connectors.salesforce import COLLECTION_SIZE, SalesforceConnector
from scoring.records import Crm
from scoring.writes import OutcomeStatus, PropertyUpdate
from tests.connectors.clock import Clock
from tests.connectors.conftest import FAST, TEST_RETRY

POLICY = RetryPolicy(max_attempts=3, backoff_base_s=0.1, backoff_max_s=0.3, max_retry_after_s=5.0)
Answer = PartialAnswer[str, str, str]
WAIT_S = 30.0  # a bound on waiting for each other, never reached unless the sends are serial


def _keys(count: int) -> dict[str, int]:
    return {f"k{n:02d}": n for n in range(count)}


# --- the helper --------------------------------------------------------------------------


def test_a_rounds_batches_are_in_flight_together_and_read_in_their_order() -> None:
    # Three sends must be in flight at once to pass the barrier; one at a time, the first
    # would wait in vain and the barrier break.
    together = threading.Barrier(3, timeout=WAIT_S)
    sends: list[tuple[list[str], int]] = []
    lock = threading.Lock()
    busy_once = {"k01", "k07"}

    def send(batch: dict[str, int], attempt: int) -> Answer:
        with lock:
            sends.append((list(batch), attempt))
        if attempt == 1:
            together.wait()
        retriable = {k: f"{k} busy" for k in batch if k in busy_once and attempt == 1}
        settled = {k: f"{k} ok on {attempt}" for k in batch if k not in retriable}
        return PartialAnswer(settled=settled, retriable=retriable)

    clock = Clock()
    result = retry_partial(
        send, _keys(9), POLICY, what="t", batch_size=3, concurrency=3, sleep=clock.sleep
    )
    first = sorted(batch for batch, attempt in sends if attempt == 1)
    assert first == [["k00", "k01", "k02"], ["k03", "k04", "k05"], ["k06", "k07", "k08"]]
    # The busy part went again after one wait for the round, not one per batch.
    assert [batch for batch, attempt in sends if attempt == 2] == [["k01", "k07"]]
    assert len(clock.slept) == 1
    assert list(result.settled) == [f"k{n:02d}" for n in (0, 2, 3, 4, 5, 6, 8, 1, 7)]
    assert result.settled["k07"] == "k07 ok on 2" and result.failing == {}


def test_a_failing_send_ends_the_call_only_once_every_started_send_has_answered() -> None:
    started: list[str] = []
    answered: list[str] = []
    lock = threading.Lock()
    failed = threading.Event()

    def send(batch: dict[str, int], attempt: int) -> Answer:
        [key] = batch
        with lock:
            started.append(key)
        if key == "k01":
            failed.set()
            raise FatalError("k01 refused", status=400)
        if key == "k00":
            # Still in flight when its neighbour fails: the call must wait for it.
            assert failed.wait(WAIT_S)
        with lock:
            answered.append(key)
        return PartialAnswer(settled={key: "ok"})

    with pytest.raises(FatalError, match="k01 refused"):
        retry_partial(send, _keys(6), POLICY, what="t", batch_size=1, concurrency=2)
    # Every send that started, but the failed one, had answered when the call raised.
    assert sorted(answered) == sorted(k for k in started if k != "k01")
    assert "k00" in answered


# --- the connectors, over HTTPS ----------------------------------------------------------

PEOPLE = 1_000
SEED = 23


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    # Batch writes' real answer times (HubSpot's median 600 ms, Salesforce's 900 ms at
    # scale 0.3): writes sent at once meet at the sandbox however busy the machine.
    with running_sandbox(contacts=PEOPLE, seed=SEED, latency=0.3) as handle:
        yield handle


def _hubspot(
    handle: Any, concurrency: int, token_provider: Callable[[], str] | None = None
) -> HubSpotConnector:
    return HubSpotConnector(
        HubSpotConfig(
            access_token=handle.hubspot_token,
            host=handle.base_url,
            ca_file=handle.ca_file,
            timeout_s=10.0,
            throttle=FAST,
            retry=TEST_RETRY,
            concurrency=concurrency,
        ),
        token_provider=token_provider,
    )


def _salesforce(handle: Any, concurrency: int) -> SalesforceConnector:
    return SalesforceConnector(
        SalesforceConfig(
            instance_url=handle.base_url,
            session_id=handle.salesforce_session_id,
            ca_file=handle.ca_file,
            timeout_s=10.0,
            throttle=FAST,
            retry=TEST_RETRY,
            concurrency=concurrency,
        )
    )


def _written(handle: Any, crm: Crm, crm_id: str) -> Any:
    if crm is Crm.HUBSPOT:
        return handle.admin.hubspot_contact(crm_id)["properties"].get("mqlsync_score")
    return handle.admin.salesforce_record(crm_id)["fields"].get("MQL_Score__c")


@pytest.mark.parametrize("crm", [Crm.HUBSPOT, Crm.SALESFORCE])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_score_batches_overlap_at_the_sandbox_only_when_asked(
    slow_sandbox: Any, crm: Crm, concurrency: int
) -> None:
    handle = slow_sandbox
    if crm is Crm.HUBSPOT:
        connector: HubSpotConnector | SalesforceConnector = _hubspot(handle, concurrency)
        batch = BATCH_SIZE
    else:
        connector = _salesforce(handle, concurrency)
        batch = COLLECTION_SIZE
    contacts = [c for page in connector.pull_contacts(None) for c in page.records]
    ids = sorted(c.crm_id for c in contacts)[: 4 * batch]
    assert len(ids) > 2 * batch, "enough contacts for at least three batches"
    connector.check_mapping()  # its requests before the counting starts
    score = 10 + concurrency
    handle.admin.reset()
    outcomes = connector.update_properties(
        [PropertyUpdate(crm=crm, crm_id=i, values={"score": score}) for i in ids]
    )
    peak = handle.admin.latency()["peak_waiting"]
    assert [o.target for o in outcomes] == ids, "outcomes stay aligned with the inputs"
    assert {o.status for o in outcomes} == {OutcomeStatus.OK}
    for crm_id in ids[:: batch // 4]:  # a few of every batch
        assert str(_written(handle, crm, crm_id)) in (str(score), f"{score}.0"), crm_id
    if concurrency == 1:
        assert peak == 1
    else:
        assert 2 <= peak <= concurrency


@pytest.mark.parametrize("crm", [Crm.HUBSPOT, Crm.SALESFORCE])
def test_concurrency_bounds_the_requests_in_flight_across_callers(
    slow_sandbox: Any, crm: Crm
) -> None:
    # Three callers at once share one connector, as a flow's pulls and write batches
    # share the one of their process: two requests in flight at most, not two each.
    handle = slow_sandbox
    if crm is Crm.HUBSPOT:
        connector: HubSpotConnector | SalesforceConnector = _hubspot(handle, 2)
    else:
        connector = _salesforce(handle, 2)
    ids = sorted(c.crm_id for page in connector.pull_contacts(None) for c in page.records)
    connector.check_mapping()
    callers = 3
    start = threading.Barrier(callers, timeout=WAIT_S)
    outcomes: list[list[Any]] = [[] for _ in range(callers)]

    def write(n: int) -> None:
        start.wait()
        outcomes[n] = connector.update_properties(
            [PropertyUpdate(crm=crm, crm_id=i, values={"score": 7}) for i in ids[n::callers][:40]]
        )

    handle.admin.reset()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    peak = handle.admin.latency()["peak_waiting"]
    assert all(len(o) == 40 and {x.status for x in o} == {OutcomeStatus.OK} for o in outcomes)
    assert peak == 2


def test_requests_refused_one_expired_token_together_share_one_renewal(
    slow_sandbox: Any,
) -> None:
    handle = slow_sandbox
    callers = 3
    renewals: list[str] = []

    def renew() -> str:
        # Renewed only once every caller's request has been refused: all three were sent
        # with the token that expired, as requests in flight together are.
        assert _faulted_reaches(handle, callers)
        renewals.append("renewed")
        return str(handle.hubspot_token)

    connector = _hubspot(handle, callers, token_provider=renew)
    ids = sorted(c.crm_id for page in connector.pull_contacts(None) for c in page.records)
    handle.admin.reset()
    handle.admin.set_faults(
        [{"kind": "expired", "count": callers, "path": "/crm/v3/objects/contacts/batch/read"}]
    )
    start = threading.Barrier(callers, timeout=WAIT_S)
    read: list[int] = []

    def status(n: int) -> None:
        start.wait()
        read.append(len(connector.read_status(ids[n * 10 : n * 10 + 10])))

    try:
        threads = [threading.Thread(target=status, args=(n,)) for n in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
    finally:
        handle.admin.clear_faults()
    assert read == [10] * callers, "every caller read its contacts after the renewal"
    assert renewals == ["renewed"]


def _faulted_reaches(handle: Any, count: int) -> bool:
    """Wait (on the sandbox's own count, never a fixed time) until `count` requests have
    been refused; False if they never are."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT_S, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            faulted = handle.admin.stats()["faulted"]  # endpoint -> kind -> count
            if sum(n for kinds in faulted.values() for n in kinds.values()) >= count:
                return True
            deadline.wait(0.05)
        return False
    finally:
        timer.cancel()
