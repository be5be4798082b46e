"""The one retry policy (tenacity) and the one function that classifies failures.

Retriable: 429 (honouring Retry-After, else bounded exponential backoff with jitter),
5xx, connection resets and timeouts (for a create, only 429: see `_may_have_landed`).
Fatal: other 4xx. A 401 refreshes the session
and tries again (within the attempt budget); without a way to refresh it is fatal. A
daily-limit answer stops the run; Salesforce's concurrent-request limit (the same
REQUEST_LIMIT_EXCEEDED code, another message) is retried like a 503. A create that
fails in transit is never re-sent here: the caller looks it up first (see
`AmbiguousWriteError`).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from pydantic import BaseModel, ConfigDict, Field
from simple_salesforce.exceptions import SalesforceError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
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


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None  # an HTTP date: fall back to backoff rather than parse clocks
    return None


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
            retry_after=_retry_after(headers),
        )
    if code == "REQUEST_LIMIT_EXCEEDED" or (status == 429 and code == "DAILY"):
        return DailyLimitExceeded(
            f"{text} (the CRM's daily API budget is spent; the run stops and resumes from "
            "its cursors once the budget resets)",
            status=status,
            code=code,
        )
    if status == 429 or status >= 500:
        return RetriableError(text, status=status, code=code, retry_after=_retry_after(headers))
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


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RefreshedAuth):
            return 0.0
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_retry_after_s)
        return float(backoff(state))

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
    refresh_auth: Callable[[], None] | None = None,
    idempotent: bool = True,
    what: str = "request",
    before_attempt: Callable[[], None] | None = None,
) -> T:
    """Run `fn` under the policy; raise a `ConnectorError` (never a library error) when it gives up.

    `idempotent=False` (creates): a failure in transit or a 5xx answer raises
    `AmbiguousWriteError` instead of re-sending (the caller looks the records up first);
    only a 429, which the CRM answers before doing anything, is retried here.
    """
    attempts = 0

    def one() -> T:
        nonlocal attempts
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
                refresh_auth()
                raise _RefreshedAuth(err.message, status=401) from None
            if isinstance(err, RetriableError) and not idempotent and _may_have_landed(err):
                raise AmbiguousWriteError(f"{what}: {err.message}") from None
            if isinstance(err, RetriableError):
                log.info("%s: retriable failure (attempt %d): %s", what, attempts, err.message)
            raise err from None

    retrying = Retrying(
        retry=retry_if_exception_type(RetriableError),
        wait=_wait(policy),
        stop=stop_after_attempt(policy.max_attempts),
        reraise=True,
    )
    try:
        return retrying(one)
    except _RefreshedAuth as exc:
        raise AuthExpired(exc.message, status=401) from None
