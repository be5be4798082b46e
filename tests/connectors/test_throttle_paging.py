from __future__ import annotations

import pytest

from connectors.errors import RepeatedPageToken
from connectors.paging import SeenIds, paginate, with_last
from connectors.throttle import Throttle, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(105):
        bucket.acquire()
    # 5 free in the burst, then 100 at 10/s.
    assert clock.now == pytest.approx(10.0)


def test_throttle_passes_every_named_bucket_and_the_shared_hook() -> None:
    clock = FakeClock()
    shared: list[str] = []
    throttle = Throttle(
        {
            "default": TokenBucket(100, 1, clock=clock, sleep=clock.sleep),
            "search": TokenBucket(5, 1, clock=clock, sleep=clock.sleep),
        },
        shared=shared.append,
    )
    for _ in range(6):
        throttle.acquire("search")
    assert clock.now == pytest.approx(1.0, abs=0.05)
    assert shared == ["default", "search"] * 6


def test_paginator_follows_tokens_and_refuses_a_repeat() -> None:
    pages = {None: ("a", 1), 1: ("b", 2), 2: ("c", None)}
    assert [p for p, _ in paginate(lambda t: pages[t], lambda r: r[1])] == ["a", "b", "c"]
    looping = {None: ("a", 1), 1: ("b", 1)}
    with pytest.raises(RepeatedPageToken):
        list(paginate(lambda t: looping[t], lambda r: r[1]))


def test_helpers() -> None:
    assert list(with_last([1, 2, 3])) == [(1, False), (2, False), (3, True)]
    assert list(with_last([])) == []
    seen = SeenIds()
    assert [seen.first_time(i) for i in ["a", "b", "a"]] == [True, True, False]
