"""The one retry policy (tenacity) and the one function that classifies failures.

Retriable: 429 (honouring Retry-After, else bounded exponential backoff with jitter),
5xx, connection resets and timeouts (for a create, only 429: see `_may_have_landed`).
A batch whose answer was partial (some records failed with a retriable error) has its
failed part sent again by `retry_partial`, with the same waits.
Fatal: other 4xx. A 401 refreshes the session
and tries again (within the attempt budget); without a way to refresh it is fatal. A
daily-limit answer stops the run; Salesforce's concurrent-request limit (the same
REQUEST_LIMIT_EXCEEDED code, another message) is retried like a 503. A create that
fails in transit is never re-sent here: the caller looks it up first (see
`AmbiguousWriteError`).
"""

from __future__ import annotations

import contextvars
import http.client
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import requests
import urllib3.exceptions
from pydantic import BaseModel, ConfigDict, Field
from simple_salesforce.exceptions import SalesforceError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
)

from connectors.errors import (
    AmbiguousWriteError,
    AuthExpired,
    ConnectorError,
    DailyLimitExceeded,
    FatalError,
    RetriableError,
    UnexpectedError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")  # what names an item of a batch: a record id, an email, a task key
V = TypeVar("V")  # what is sent for it
R = TypeVar("R")  # what a site settled for it
E = TypeVar("E")  # what a site keeps of its retriable failure

_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    http.client.HTTPException,
    ConnectionError,
    socket.timeout,
)


class RetryPolicy(BaseModel):
    """How hard to try: attempts, backoff bounds, and the longest Retry-After honoured."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=6, ge=1)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    max_retry_after_s: float = Field(default=60.0, gt=0)


def retry_after_s(
    headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds a `Retry-After` header asks to wait (never negative); None without one.

    RFC 9110 allows a number of seconds or an HTTP date (`Wed, 21 Oct 2015 07:28:00
    GMT`), which is counted from `now` (epoch seconds). A value that is neither is
    ignored: the caller backs off on its own.
    """
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            return _delay_s(str(value).strip(), now)
    return None


def _delay_s(value: str, now: Callable[[], float]) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; asctime's form names no zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def _body_json(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _error_code_and_message(body: Any) -> tuple[str | None, str]:
    """Salesforce answers a list of {message, errorCode}; HubSpot one {category, message}."""
    parsed = _body_json(body)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        first = parsed[0]
        return first.get("errorCode"), str(first.get("message", ""))
    if isinstance(parsed, dict):
        code = (
            parsed.get("policyName")
            or parsed.get("category")
            or parsed.get("errorCode")
            # HubSpot's OAuth endpoint names its error in `status` ("BAD_REFRESH_TOKEN").
            or (parsed.get("status") if isinstance(parsed.get("status"), str) else None)
            # Salesforce's OAuth endpoint: {"error": "invalid_grant", "error_description"}.
            or (parsed.get("error") if isinstance(parsed.get("error"), str) else None)
        )
        if "message" not in parsed and isinstance(parsed.get("error_description"), str):
            return code, str(parsed["error_description"])
        return code, str(parsed.get("message", ""))
    return None, str(parsed or "")[:500]


def _concurrent_limit(message: str) -> bool:
    """Whether a Salesforce REQUEST_LIMIT_EXCEEDED is about requests running at once
    ("ConcurrentPerOrgLongTxn Limit exceeded.", "ConcurrentRequests (Concurrent API
    Requests) Limit exceeded"), which passes as they finish, rather than the day's
    total ("TotalRequests Limit exceeded.")."""
    return "concurrent" in message.lower()


def _from_status(
    status: int, body: Any, headers: Mapping[str, str] | None, where: str
) -> ConnectorError:
    code, message = _error_code_and_message(body)
    text = (
        f"{where}: HTTP {status}"
        + (f" {code}" if code else "")
        + (f": {message}" if message else "")
    )
    if status == 401:
        return AuthExpired(text, status=status, code=code)
    if code == "REQUEST_LIMIT_EXCEEDED" and _concurrent_limit(message):
        return RetriableError(
            f"{text} (the org's limit of long-running requests at once, not its daily budget)",
            status=status,
            code=code,
            retry_after=retry_after_s(headers),
        )
    if code == "REQUEST_LIMIT_EXCEEDED" or (status == 429 and code == "DAILY"):
        return DailyLimitExceeded(
            f"{text} (the CRM's daily API budget is spent; the run stops and resumes from "
            "its cursors once the budget resets)",
            status=status,
            code=code,
        )
    if status == 429 or status >= 500:
        return RetriableError(text, status=status, code=code, retry_after=retry_after_s(headers))
    return FatalError(text, status=status, code=code, context=_context(body))


def _context(body: Any) -> dict[str, Any] | None:
    """The `context` of a HubSpot error answer (which records it is about), if any."""
    parsed = _body_json(body)
    context = parsed.get("context") if isinstance(parsed, dict) else None
    return context if isinstance(context, dict) else None


def classify(exc: BaseException) -> ConnectorError | None:
    """The connector error for a client library's exception; None if nothing in it is known.

    A client can fail inside its own error path: hubspot-api-client, given a dropped TLS
    connection, raises `ApiException(status=0)` and then an `AttributeError` while
    formatting it. The chain of causes is searched, so the dropped connection is seen.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        known = _classify_one(current)
        if known is not None:
            return known
        current = current.__cause__ or current.__context__
    return None


def _classify_one(exc: BaseException) -> ConnectorError | None:
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        r = exc.response
        return _from_status(
            r.status_code, r.content, r.headers, f"{r.request.method} {_path(r.url)}"
        )
    if isinstance(exc, SalesforceError):
        return _from_status(exc.status, exc.content, None, f"Salesforce {exc.resource_name}")
    # hubspot-api-client generates one ApiException class per API package; they share a shape.
    if type(exc).__module__.startswith("hubspot.") and hasattr(exc, "status"):
        status = int(getattr(exc, "status", 0) or 0)
        if status == 0:  # the client wraps TLS failures with status 0
            return RetriableError(f"HubSpot: {getattr(exc, 'reason', '')}", transport=True)
        headers = getattr(exc, "headers", None)
        return _from_status(status, getattr(exc, "body", None), headers, "HubSpot")
    if isinstance(exc, _TRANSPORT_ERRORS):
        return RetriableError(f"transport: {type(exc).__name__}", transport=True)
    return None


def _path(url: str | None) -> str:
    # Only the path: query strings may carry SOQL with customer data, never needed in logs.
    return (url or "").split("?", 1)[0]


class Redactor:
    """Removes known secret values from text bound for exceptions and logs."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.append(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class _RefreshedAuth(RetriableError):
    """Internal: the session was refreshed; try again at once."""


class _ReplacedAuth(_RefreshedAuth):
    """Internal: the 401 was for a token another request had already replaced while this
    one was in flight; send again with the new one, at no cost to the attempt budget."""


# Free sends after a replaced token are bounded by the renewals of others (each one costs
# its renewer an attempt); this bound only stops a pathological loop from spinning.
MAX_REPLACED_AUTH = 64


def _backoff_s(policy: RetryPolicy, failures: int) -> float:
    """The wait after the `failures`-th failure in a row: full jitter over a window that
    doubles from `backoff_base_s` up to `backoff_max_s` (so uncoordinated workers spread
    out rather than retry together)."""
    exponent = min(failures - 1, 1000)  # past that, the window is `backoff_max_s` anyway
    window = min(policy.backoff_max_s, policy.backoff_base_s * 2.0**exponent)
    return random.uniform(0.0, window)


def _pause_s(policy: RetryPolicy, failures: int, retry_after: float | None) -> float:
    """A Retry-After the CRM sent (bounded by the policy), else the backoff."""
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after_s)
    return _backoff_s(policy, failures)


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RefreshedAuth):
            return 0.0
        retry_after = exc.retry_after if isinstance(exc, RetriableError) else None
        return _pause_s(policy, state.attempt_number, retry_after)

    return wait


def _may_have_landed(err: RetriableError) -> bool:
    """Whether a create that failed this way may still have been applied.

    A 5xx can come after the CRM (or a proxy in front of it) has processed the request,
    and a lost connection or a timeout says nothing either way. A 429 is refused before
    any work is done: the create did not happen and may simply be sent again.
    """
    return err.transport or (err.status is not None and err.status >= 500)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    redact: Redactor,
    refresh_auth: Callable[[], bool] | None = None,
    idempotent: bool = True,
    what: str = "request",
    before_attempt: Callable[[], None] | None = None,
) -> T:
    """Run `fn` under the policy; raise a `ConnectorError` (never a library error) when it gives up.

    `idempotent=False` (creates): a failure in transit or a 5xx answer raises
    `AmbiguousWriteError` instead of re-sending (the caller looks the records up first);
    only a 429, which the CRM answers before doing anything, is retried here.

    `refresh_auth` renews the credentials after a 401 and says whether it did: False means
    another request had already replaced the refused token, so the 401 says nothing about
    this call and its next send is free (requests in flight together all see the same
    expiry; only the one that renews spends an attempt on it).
    """
    attempts = 0
    replaced = 0  # sends after a token replaced in flight: not counted against the budget

    def one() -> T:
        nonlocal attempts, replaced
        attempts += 1
        if before_attempt is not None:
            before_attempt()
        try:
            return fn()
        except Exception as exc:
            err = classify(exc)
            if err is None:
                # Nothing known in it: a create may have landed (look it up, never re-send
                # blind); anything else fails this call with the error's kind, not its text,
                # which may quote a request carrying credentials.
                if not idempotent:
                    raise AmbiguousWriteError(
                        f"{what}: unexpected {type(exc).__name__}; may have been applied"
                    ) from None
                raise UnexpectedError(f"{what}: unexpected {type(exc).__name__}") from exc
            err.message = redact(err.message)
            err.args = (err.message,)
            if isinstance(err, AuthExpired) and refresh_auth is not None:
                # Each 401 earns one refresh. A refresh that succeeds proves the credentials
                # are good (a session can expire again, or be revoked by another worker), so
                # the call goes on within its attempt budget; a failing refresh raises.
                if not refresh_auth() and replaced < MAX_REPLACED_AUTH:
                    replaced += 1
                    raise _ReplacedAuth(err.message, status=401) from None
                raise _RefreshedAuth(err.message, status=401) from None
            if isinstance(err, RetriableError) and not idempotent and _may_have_landed(err):
                raise AmbiguousWriteError(f"{what}: {err.message}") from None
            if isinstance(err, RetriableError):
                log.info("%s: retriable failure (attempt %d): %s", what, attempts, err.message)
            raise err from None

    retrying = Retrying(
        retry=retry_if_exception_type(RetriableError),
        wait=_wait(policy),
        stop=lambda state: state.attempt_number - replaced >= policy.max_attempts,
        reraise=True,
    )
    try:
        return retrying(one)
    except _RefreshedAuth as exc:
        raise AuthExpired(exc.message, status=401) from None


# --- partial answers ---------------------------------------------------------------------


@dataclass(frozen=True)
class PartialAnswer(Generic[K, R, E]):
    """What one send of a batch came back with, as its site reads the answer.

    `settled`: items done with (written, read, or failed in a way another try cannot
    mend); `retriable`: items worth sending again, each with its error; `retry_after`:
    seconds the answer asked to wait before that (a Retry-After it carried; 0 when the
    site has already waited what was needed).
    """

    settled: Mapping[K, R] = field(default_factory=dict)
    retriable: Mapping[K, E] = field(default_factory=dict)
    retry_after: float | None = None


@dataclass(frozen=True)
class PartialResult(Generic[K, R, E]):
    """Every item's end: settled, or still failing (with its last error) when the
    attempts ran out. An item its site answered neither way is in neither."""

    settled: dict[K, R]
    failing: dict[K, E]


def retry_partial(
    send: Callable[[dict[K, V], int], PartialAnswer[K, R, E]],
    items: Mapping[K, V],
    policy: RetryPolicy,
    *,
    what: str,
    batch_size: int | None = None,
    first_attempt: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    concurrency: int = 1,
) -> PartialResult[K, R, E]:
    """Send `items` (in batches of `batch_size`, if given) and send again only what came
    back retriable, up to `policy.max_attempts` rounds, waiting between rounds as for a
    whole request (a Retry-After an answer carried, else the backoff).

    `send(batch, attempt)` gets the items in their original order and the attempt's
    number (counted from `first_attempt`); an exception from it ends the call. Nothing
    is sent again at once unless its answer said so (`retry_after=0`): a CRM that shed
    part of a batch for its rate limits would shed it again.

    With `concurrency` above 1, up to that many batches of a round are in flight at once
    (for items independent of each other: no item is in two batches of a round). The
    answers are read in batch order, as one at a time would read them; an exception ends
    the call once every batch already sent has been answered, so no send outlives it.
    """
    settled: dict[K, R] = {}
    failing: dict[K, E] = {}
    pending = dict(items)
    last = first_attempt + policy.max_attempts - 1
    for attempt in range(first_attempt, last + 1):
        failing = {}
        asked: list[float | None] = []  # per answer with a retriable part: its Retry-After
        for batch, answer in _sent(send, _batches(pending, batch_size), attempt, concurrency):
            retriable = {k: e for k, e in answer.retriable.items() if k in batch}
            settled.update((k, r) for k, r in answer.settled.items() if k not in retriable)
            failing.update(retriable)
            if retriable:
                asked.append(answer.retry_after)
        pending = {k: v for k, v in pending.items() if k in failing}
        if not pending or attempt == last:
            break
        wait = _round_pause_s(policy, attempt - first_attempt + 1, asked)
        log.info(
            "%s: %d items answered retriable (attempt %d); sending them again in %.2fs",
            what,
            len(pending),
            attempt,
            wait,
        )
        if wait > 0:
            sleep(wait)
    return PartialResult(settled=settled, failing=failing)


def _sent(
    send: Callable[[dict[K, V], int], PartialAnswer[K, R, E]],
    batches: Iterable[dict[K, V]],
    attempt: int,
    concurrency: int,
) -> Iterator[tuple[dict[K, V], PartialAnswer[K, R, E]]]:
    """Each batch with its answer, in batch order; `concurrency` sends at a time."""
    if concurrency <= 1:
        for batch in batches:
            yield batch, send(batch, attempt)
        return
    listed = list(batches)
    if len(listed) <= 1:
        yield from ((batch, send(batch, attempt)) for batch in listed)
        return
    # Each send runs in a copy of the caller's context (a Prefect run's settings, read by
    # the shared rate limit); leaving the pool waits for every send that started.
    with ThreadPoolExecutor(min(concurrency, len(listed)), "batch-send") as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, send, batch, attempt) for batch in listed
        ]
        try:
            for batch, future in zip(listed, futures, strict=True):
                yield batch, future.result()
        finally:
            for future in futures:
                future.cancel()  # those not started yet; the pool waits for the others


def _round_pause_s(policy: RetryPolicy, rounds: int, asked: list[float | None]) -> float:
    """The wait before the next round: long enough for every answer that failed a part,
    each by its Retry-After or, without one, the backoff (drawn once for the round)."""
    backoff = _backoff_s(policy, rounds)
    return max(backoff if hint is None else _pause_s(policy, rounds, hint) for hint in asked)


def _batches(items: dict[K, V], size: int | None) -> Iterator[dict[K, V]]:
    keys = list(items)
    step = size or len(keys) or 1
    for start in range(0, len(keys), step):
        yield {k: items[k] for k in keys[start : start + step]}
