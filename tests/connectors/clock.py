"""A clock for tests of waiting code: it moves only when slept on, so a test waits on nothing."""

from __future__ import annotations


class Clock:
    """A `clock` and `sleep` pair: `now` starts at `start`, `slept` lists every wait."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
