"""Partial answers: only the retriable part of a batch is sent again, after a backoff (or
the Retry-After the answer carried), up to the policy's attempts; and Retry-After is read
in both of its forms."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.common import failed, ok
from connectors.creates import create_once
from connectors.errors import RetriableError
from connectors.retry import (
    PartialAnswer,
    RetryPolicy,
    classify,
    retry_after_s,
    retry_partial,
)
from scoring.records import Crm
from scoring.writes import HandoffTask, OutcomeStatus, Priority, WriteOutcome
from tests.connectors.clock import Clock
from tests.connectors.test_retry import _hubspot

POLICY = RetryPolicy(max_attempts=3, backoff_base_s=0.1, backoff_max_s=0.3, max_retry_after_s=5.0)
Answer = PartialAnswer[str, str, str]


class FakeCrm:
    """Answers each item as `plan` says for its n-th send: "ok", "busy" (retriable) or
    "bad" (the last answer holds for any later send).

    Every send and every sleep is written to `events`, in order.
    """

    def __init__(self, plan: dict[str, list[str]], retry_after: float | None = None) -> None:
        self.plan = plan
        self.retry_after = retry_after
        self.sent: list[list[str]] = []
        self.sends: dict[str, int] = {}
        self.attempts: list[int] = []
        self.events: list[str] = []
        self.clock = Clock()

    def send(self, batch: dict[str, int], attempt: int) -> Answer:
        self.sent.append(list(batch))
        self.attempts.append(attempt)
        self.events.append("send")
        settled: dict[str, str] = {}
        retriable: dict[str, str] = {}
        for key in batch:
            self.sends[key] = self.sends.get(key, 0) + 1
            answers = self.plan[key]
            answer = answers[min(self.sends[key], len(answers)) - 1]
            if answer == "busy":
                retriable[key] = f"{key}: RATE_LIMITS on attempt {attempt}"
            else:
                settled[key] = f"{key}: {answer} on attempt {attempt}"
        return PartialAnswer(settled=settled, retriable=retriable, retry_after=self.retry_after)

    def sleep(self, seconds: float) -> None:
        self.events.append("sleep")
        self.clock.sleep(seconds)


def items(*keys: str) -> dict[str, int]:
    return {key: n for n, key in enumerate(keys)}


# --- the helper ------------------------------------------------------------------------


def test_only_the_retriable_part_is_sent_again_and_after_a_backoff() -> None:
    crm = FakeCrm({"a": ["ok"], "b": ["busy", "ok"], "c": ["bad"]})
    result = retry_partial(crm.send, items("a", "b", "c"), POLICY, what="t", sleep=crm.sleep)
    assert crm.sent == [["a", "b", "c"], ["b"]]
    assert crm.events == ["send", "sleep", "send"], "the retriable part was re-sent at once"
    [waited] = crm.clock.slept
    assert 0 < waited <= POLICY.backoff_base_s  # the first window of the backoff
    assert result.settled == {
        "a": "a: ok on attempt 1",
        "b": "b: ok on attempt 2",
        "c": "c: bad on attempt 1",
    }
    assert result.failing == {}


def test_a_non_retriable_failure_is_not_sent_again() -> None:
    crm = FakeCrm({"a": ["bad"], "b": ["ok"]})
    result = retry_partial(crm.send, items("a", "b"), POLICY, what="t", sleep=crm.sleep)
    assert crm.sent == [["a", "b"]]
    assert crm.clock.slept == []
    assert set(result.settled) == {"a", "b"} and result.failing == {}


def test_gives_up_after_the_policys_attempts_and_reports_the_rest_with_its_last_error() -> None:
    crm = FakeCrm({"a": ["ok"], "b": ["busy"]})
    result = retry_partial(crm.send, items("a", "b"), POLICY, what="t", sleep=crm.sleep)
    assert crm.sent == [["a", "b"], ["b"], ["b"]]
    assert crm.events == ["send", "sleep", "send", "sleep", "send"]  # no wait after the last
    assert result.settled == {"a": "a: ok on attempt 1"}
    assert result.failing == {"b": "b: RATE_LIMITS on attempt 3"}


def test_the_backoff_window_doubles_up_to_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # The top of each jittered window, so the windows themselves are seen.
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    policy = POLICY.model_copy(update={"max_attempts": 5})
    crm = FakeCrm({"a": ["busy"]})
    retry_partial(crm.send, items("a"), policy, what="t", sleep=crm.sleep)
    assert crm.clock.slept == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_a_retry_after_the_answer_carried_is_honoured_within_the_policys_bound() -> None:
    crm = FakeCrm({"a": ["busy", "ok"]}, retry_after=2.0)
    retry_partial(crm.send, items("a"), POLICY, what="t", sleep=crm.sleep)
    assert crm.clock.slept == [2.0]

    crm = FakeCrm({"a": ["busy", "ok"]}, retry_after=600.0)
    retry_partial(crm.send, items("a"), POLICY, what="t", sleep=crm.sleep)
    assert crm.clock.slept == [POLICY.max_retry_after_s]


def test_an_answer_that_says_no_wait_is_sent_again_at_once() -> None:
    crm = FakeCrm({"a": ["busy", "ok"]}, retry_after=0.0)
    result = retry_partial(crm.send, items("a"), POLICY, what="t", sleep=crm.sleep)
    assert crm.events == ["send", "send"]
    assert result.settled == {"a": "a: ok on attempt 2"}


def test_batches_keep_their_order_and_attempts_count_from_the_first() -> None:
    plan = {"a": ["busy", "ok"], "b": ["ok"], "c": ["ok"], "d": ["busy", "ok"], "e": ["busy"]}
    crm = FakeCrm(plan)
    result = retry_partial(
        crm.send,
        items("a", "b", "c", "d", "e"),
        POLICY,
        what="t",
        batch_size=2,
        first_attempt=4,
        sleep=crm.sleep,
    )
    # One wait per round, not per batch; a round re-sends what is pending in its order.
    assert crm.sent == [["a", "b"], ["c", "d"], ["e"], ["a", "d"], ["e"], ["e"]]
    assert crm.attempts == [4, 4, 4, 5, 5, 6]
    assert crm.events.count("sleep") == 2
    assert result.failing == {"e": "e: RATE_LIMITS on attempt 6"}


def test_a_retriable_error_for_an_item_not_sent_is_ignored() -> None:
    def send(batch: dict[str, int], attempt: int) -> Answer:
        return PartialAnswer(settled=dict.fromkeys(batch, "ok"), retriable={"stranger": "busy"})

    clock = Clock()
    result = retry_partial(send, items("a"), POLICY, what="t", sleep=clock.sleep)
    assert result.settled == {"a": "ok"} and result.failing == {}
    assert clock.slept == []


# --- a site: creates re-send a 207's retriable part after a backoff ---------------------


def task(n: int) -> HandoffTask:
    return HandoffTask(
        crm=Crm.HUBSPOT, key=f"k{n}", contact_id=str(n), owner_id=None, subject="s", body="b",
        due_at=datetime(2026, 11, 1, tzinfo=UTC), priority=Priority.HIGH,
    )  # fmt: skip


def test_a_create_answered_rate_limited_is_sent_again_after_a_backoff() -> None:
    clock = Clock()
    sent: list[list[str]] = []

    def send(
        pending: list[HandoffTask], attempt: int
    ) -> tuple[dict[str, WriteOutcome], list[HandoffTask]]:
        sent.append([t.key for t in pending])
        if attempt == 1:  # k2 shed for the rate limit, as in a 207
            return {
                "k1": ok(Crm.HUBSPOT, "k1", "id-k1", attempt),
                "k2": failed(Crm.HUBSPOT, "k2", "RATE_LIMITS", attempt),
            }, [t for t in pending if t.key == "k2"]
        return {t.key: ok(Crm.HUBSPOT, t.key, f"id-{t.key}", attempt) for t in pending}, []

    outcomes = create_once(
        Crm.HUBSPOT, [task(1), task(2)], send, lambda keys: {}, 3, 0.0,
        clock=clock, sleep=clock.sleep, backoff=POLICY,
    )  # fmt: skip
    assert sent == [["k1", "k2"], ["k2"]]
    [waited] = clock.slept
    assert 0 < waited <= POLICY.backoff_base_s
    assert {k: (o.status, o.attempts) for k, o in outcomes.items()} == {
        "k1": (OutcomeStatus.OK, 1),
        "k2": (OutcomeStatus.OK, 2),
    }


# --- Retry-After -----------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC).timestamp()


def at_now() -> float:
    return NOW


def test_retry_after_in_seconds() -> None:
    assert retry_after_s({"Retry-After": "2"}) == 2.0
    assert retry_after_s({"retry-after": " 1.5 "}) == 1.5
    assert retry_after_s({"Retry-After": "-3"}) == 0.0


def test_retry_after_as_an_http_date_is_counted_from_now() -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_s({"Retry-After": date}, now=at_now) == 30.0
    # asctime's form (RFC 9110 accepts it too) names no zone: it is GMT.
    assert retry_after_s({"Retry-After": "Wed Oct 21 07:28:00 2015"}, now=at_now) == 30.0
    # A date already past asks for no wait, never a negative one.
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:00:00 GMT"}, now=at_now) == 0.0


def test_retry_after_that_is_neither_is_ignored() -> None:
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({"Retry-After": ""}) is None
    assert retry_after_s({"Retry-After": "Wed, 99 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_s({"Content-Type": "application/json"}) is None
    assert retry_after_s(None) is None


def test_a_429_with_an_http_date_retry_after_waits_until_then() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    headers = {"Retry-After": format_datetime(later, usegmt=True)}
    err = classify(_hubspot(429, {"policyName": "TEN_SECONDLY_ROLLING"}, headers))
    assert isinstance(err, RetriableError)
    assert err.retry_after is not None and 100 < err.retry_after <= 120
