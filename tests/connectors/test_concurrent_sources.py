"""Activity sources pulled at once (`HubSpotConfig.concurrency`): the same records and
cursors as one after the other, real overlap at the sandbox, failures raised with no
thread left behind, and the CRM's limits held. Over real HTTPS against the sandbox, plus
the engine on plain streams."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.config import HubSpotConfig, ThrottleSettings
from connectors.errors import RetriableError
from connectors.hubspot import HubSpotConnector
from connectors.streams import Stream, at, by_time, pull
from connectors.throttle import Throttle, TokenBucket
from scoring.records import Activity
from tests.connectors.conftest import FAST, TEST_RETRY

SEED = 11
PEOPLE = 400
TEST_SEARCH = ThrottleSettings(rate=4.5, burst=5)  # as the other connector tests
PRODUCTION = HubSpotConfig.model_fields["throttle"].default
PRODUCTION_SEARCH = HubSpotConfig.model_fields["search_throttle"].default


def _connector(
    handle: Any,
    concurrency: int,
    *,
    throttle: ThrottleSettings = FAST,
    search_throttle: ThrottleSettings = TEST_SEARCH,
    shared: Throttle | None = None,
) -> HubSpotConnector:
    config = HubSpotConfig(
        access_token=handle.hubspot_token,
        host=handle.base_url,
        ca_file=handle.ca_file,
        timeout_s=5.0,
        throttle=throttle,
        search_throttle=search_throttle,
        retry=TEST_RETRY,
        concurrency=concurrency,
    )
    return HubSpotConnector(config, throttle=shared)


@dataclass
class ActivitiesPull:
    records: list[Activity] = field(default_factory=list)
    cursors: list[datetime | None] = field(default_factory=list)
    source_cursors: dict[str, datetime] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)


def _pull(connector: HubSpotConnector) -> ActivitiesPull:
    out = ActivitiesPull()
    for page in connector.pull_activities(None):
        out.records += page.records
        out.cursors.append(page.cursor)
        out.warnings += page.warnings
        out.issues += [f"{e.crm_id}: {e.message}" for e in page.errors]
        if page.source_cursors:
            out.source_cursors = page.source_cursors
    return out


def _contents(records: list[Activity]) -> Counter[str]:
    """Each record whole, as text (the records hold dicts, so they do not hash)."""
    return Counter(r.model_dump_json() for r in records)


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=PEOPLE, seed=SEED) as handle:
        yield handle


@pytest.fixture(scope="module")
def one_at_a_time(sb: Any) -> ActivitiesPull:
    return _pull(_connector(sb, 1))


def test_four_at_once_pull_the_same_records_and_cursors_as_one_at_a_time(
    sb: Any, one_at_a_time: ActivitiesPull
) -> None:
    at_once = _pull(_connector(sb, 4))
    assert one_at_a_time.records and one_at_a_time.issues == []
    assert _contents(at_once.records) == _contents(one_at_a_time.records)
    assert at_once.issues == [] and at_once.warnings == one_at_a_time.warnings
    # Each source's own cursor, and the pull's cursor on its last page only.
    assert at_once.source_cursors == one_at_a_time.source_cursors
    assert set(at_once.source_cursors) == set(_connector(sb, 1)._mapping.activity_sources)
    assert at_once.cursors[:-1] == [None] * (len(at_once.cursors) - 1)
    assert at_once.cursors[-1] == one_at_a_time.cursors[-1] is not None


def test_a_failing_source_raises_as_it_does_one_at_a_time_and_leaves_no_thread(
    sb: Any,
) -> None:
    # Every email events request fails with 500 until the retries give up.
    sb.admin.set_faults([{"kind": "500", "rate": 1.0, "path": "/email/public/v1/events"}])
    try:
        failures: list[BaseException] = []
        for concurrency in (1, 4):
            with pytest.raises(RetriableError) as raised:
                _pull(_connector(sb, concurrency))
            failures.append(raised.value)
            # The pull joins its workers before it raises: none outlives it.
            assert workers() == []
        assert type(failures[0]) is type(failures[1])
        assert str(failures[0]) == str(failures[1])
        faulted = sb.admin.stats()["faulted"]
        assert set(faulted) == {"GET /email/public/v1/events"}
    finally:
        sb.admin.clear_faults()


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pull-worker")]


def test_a_pull_left_early_stops_its_workers(sb: Any) -> None:
    assert workers() == []
    pages = _connector(sb, 4).pull_activities(None)
    next(pages)
    assert workers()
    pages.close()
    assert workers() == []


class RecordingThrottle(Throttle):
    """The connector's throttle, with a record of the holds it was asked for."""

    def __init__(self, buckets: dict[str, TokenBucket]) -> None:
        super().__init__(buckets)
        self.holds: list[tuple[str, float]] = []

    def hold(self, name: str, seconds: float) -> None:
        self.holds.append((name, seconds))
        super().hold(name, seconds)


def test_one_429_holds_every_worker_not_only_the_one_refused(sb: Any) -> None:
    """The refused request holds the bucket every worker takes its tokens from, for the
    Retry-After the answer gave (that a held bucket makes every taker wait is
    `test_a_hold_makes_the_next_token_wait_for_it`)."""
    shared = RecordingThrottle(
        {
            "default": TokenBucket(FAST.rate, FAST.burst),
            "search": TokenBucket(TEST_SEARCH.rate, TEST_SEARCH.burst),
        }
    )
    # The first Events API request is refused with Retry-After: 1 (TEST_RETRY honours 1 s).
    sb.admin.set_faults([{"kind": "429", "count": 1, "path": "/events/v3/events"}])
    try:
        pulled = _pull(_connector(sb, 4, shared=shared))
    finally:
        sb.admin.clear_faults()
    assert sum(sb.admin.stats()["faulted"].get("GET /events/v3/events", {}).values()) == 1
    assert pulled.issues == []
    # The fault's own hold; four workers at FAST's rate may meet the sandbox's limits
    # too, and each 429 they get holds the bucket for its own (shorter) wait.
    assert ("default", 1.0) in shared.holds


@pytest.mark.parametrize("concurrency", [1, 4])
def test_requests_overlap_at_the_sandbox_only_when_sources_run_at_once(
    concurrency: int,
) -> None:
    from sandbox.testing import running_sandbox

    # Production throttles against the sandbox's professional-tier limits: none is hit.
    with running_sandbox(contacts=200, seed=SEED, latency=0.2) as handle:
        connector = _connector(
            handle, concurrency, throttle=PRODUCTION, search_throttle=PRODUCTION_SEARCH
        )
        handle.admin.reset()
        pulled = _pull(connector)
        peak = handle.admin.latency()["peak_waiting"]
        stats = handle.admin.stats()
    assert pulled.records and pulled.issues == []
    assert stats["throttled_by_policy"] == {}
    if concurrency == 1:
        assert peak == 1
    else:
        assert 2 <= peak <= concurrency


# --- the engine, on plain streams ------------------------------------------------------

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _stream(name: str, pages: int, *, fail_at: int | None = None) -> Stream[str]:
    """`pages` pages of 3 records each, a minute apart; with `fail_at`, that page raises."""

    def fetch(_start: datetime | None, _until: datetime | None) -> Iterator[list[Any]]:
        for number in range(pages):
            if number == fail_at:
                raise RetriableError(f"{name}: page {number} failed")
            yield [
                {"id": f"{name}-{number}-{i}", "t": (T0 + timedelta(minutes=number)).isoformat()}
                for i in range(3)
            ]

    return Stream(name, fetch, lambda _item, crm_id: crm_id, time=at("t"))


def test_the_engine_keeps_each_streams_order_and_cursors() -> None:
    streams = [_stream(f"s{n}", pages=n + 2) for n in range(6)]
    one = list(pull(streams, None, 5.0, now=lambda: T0 + timedelta(days=1)))
    many = list(pull(streams, None, 5.0, now=lambda: T0 + timedelta(days=1), concurrency=3))
    records = [r for page in many for r in page.records]
    assert sorted(records) == sorted(r for page in one for r in page.records)
    for stream in streams:  # within a stream, its own order
        mine = [r for r in records if r.startswith(stream.name + "-")]
        assert mine == [r for page in one for r in page.records if r.startswith(stream.name + "-")]
    assert [p.cursor for p in many[:-1]] == [None] * (len(many) - 1)
    assert many[-1].cursor == one[-1].cursor == T0 + timedelta(minutes=6)
    assert many[-1].source_cursors == one[-1].source_cursors
    assert many[-1].source_cursors["s0"] == T0 + timedelta(minutes=1)


def test_the_engine_raises_a_streams_failure_after_its_workers_end() -> None:
    streams = [_stream(f"s{n}", pages=50) for n in range(4)]
    streams[2] = _stream("s2", pages=50, fail_at=1)
    with pytest.raises(RetriableError, match="s2: page 1 failed"):
        list(pull(streams, None, 5.0, concurrency=4))
    assert workers() == []


def test_a_hold_makes_the_next_token_wait_for_it() -> None:
    clock = [0.0]
    slept: list[float] = []
    bucket = TokenBucket(10.0, 10, clock=lambda: clock[0], sleep=slept.append)
    bucket.hold(2.0)
    bucket.hold(0.5)  # holds do not add up, and a shorter one does not shorten it
    assert bucket.acquire() == pytest.approx(2.0)
    assert bucket.acquire() == pytest.approx(2.1)  # the next queues behind it
    clock[0] = 5.0
    assert bucket.acquire() == 0.0


def test_the_engine_reads_a_split_streams_parts_at_once_under_one_cursor() -> None:
    parts = [_stream(f"p{n}", pages=n + 2) for n in range(3)]
    asked: list[int] = []

    def whole(start: datetime | None, until: datetime | None) -> Iterator[list[Any]]:
        for part in parts:
            yield from part.fetch(start, until)

    # Each part waits at the barrier before its first page: the three are read at once,
    # or the barrier breaks (its timeout only ends a hung test).
    barrier = threading.Barrier(3, timeout=60)

    def together(part: Stream[str]) -> Any:
        def fetch(start: datetime | None, until: datetime | None) -> Iterator[Any]:
            barrier.wait()
            yield from part.fetch(start, until)

        return fetch

    def split(_start: datetime | None, _until: datetime | None, count: int) -> list[Any]:
        asked.append(count)
        return [together(part) for part in parts]

    stream = Stream("whole", whole, lambda _item, crm_id: crm_id, time=at("t"), split=split)
    later = T0 + timedelta(days=1)
    one = list(pull([stream], None, 5.0, now=lambda: later))
    assert asked == []  # one at a time: read whole, never asked to split
    many = list(pull([stream], None, 5.0, now=lambda: later, concurrency=3))
    assert asked == [3]
    records = [r for page in many for r in page.records]
    assert sorted(records) == sorted(r for page in one for r in page.records)
    for part in parts:  # within a part, its own order
        mine = [r for r in records if r.startswith(part.name + "-")]
        assert mine == [r for page in one for r in page.records if r.startswith(part.name + "-")]
    assert [p.cursor for p in many[:-1]] == [None] * (len(many) - 1)
    # The highest time over every part: the longest part's last page.
    assert many[-1].cursor == one[-1].cursor == T0 + timedelta(minutes=3)
    assert many[-1].source_cursors == one[-1].source_cursors == {"whole": T0 + timedelta(minutes=3)}
    assert workers() == []


def test_by_time_slices_a_long_window_and_reads_a_short_or_open_one_whole() -> None:
    asked: list[tuple[datetime | None, datetime | None]] = []

    def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[Any]]:
        asked.append((start, until))
        return iter([])

    later = T0 + timedelta(days=40)
    split = by_time(fetch, shortest=timedelta(days=7), now=lambda: later)
    assert split(None, None, 4) == []  # no start: the length is unknown
    assert split(T0, T0 + timedelta(days=13), 4) == []  # one slice of 7 days at most
    # Four slices of ten days up to now; the last keeps the window's open end.
    for part in split(T0, None, 4):
        list(part(T0, None))
    assert asked == [
        (T0, T0 + timedelta(days=10)),
        (T0 + timedelta(days=10), T0 + timedelta(days=20)),
        (T0 + timedelta(days=20), T0 + timedelta(days=30)),
        (T0 + timedelta(days=30), None),
    ]
    asked.clear()
    # A closed window of 21 days: three slices at the most the shortest allows.
    for part in split(T0, T0 + timedelta(days=21), 8):
        list(part(T0, T0 + timedelta(days=21)))
    assert asked == [
        (T0, T0 + timedelta(days=7)),
        (T0 + timedelta(days=7), T0 + timedelta(days=14)),
        (T0 + timedelta(days=14), T0 + timedelta(days=21)),
    ]


def test_by_time_cuts_on_whole_milliseconds() -> None:
    asked: list[tuple[datetime | None, datetime | None]] = []

    def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[Any]]:
        asked.append((start, until))
        return iter([])

    end = T0 + timedelta(days=10, milliseconds=1)
    for part in by_time(fetch, shortest=timedelta(days=1))(T0, end, 3):
        list(part(T0, end))
    starts = [start for start, _ in asked]
    ends = [until for _, until in asked]
    assert starts[0] == T0 and ends[-1] == end and starts[1:] == ends[:-1]
    # A third of the window is no whole number of milliseconds: the cut is, a little early.
    for cut in starts[1:]:
        assert cut is not None and cut.microsecond % 1000 == 0
    exact = T0 + (end - T0) / 3
    assert exact.microsecond % 1000 != 0
    assert cut_before(exact, starts[1])


def cut_before(exact: datetime, cut: datetime | None) -> bool:
    return cut is not None and timedelta(0) < exact - cut < timedelta(milliseconds=1)
