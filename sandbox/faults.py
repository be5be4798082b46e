"""Seeded fault injection: which request fails (rules, `Faults.pick`) and how
(`inject`, called by the gate for the request a rule picked).

A rule names a kind and fires either with a probability (`rate`, drawn from a seeded
generator so a run is repeatable) or for the next `count` matching requests (exact, for
tests); given both, it fires with the probability until it has fired `count` times.
Rules can be limited to a CRM, a method and a path prefix.

Kinds:
  429         HubSpot-shaped rate-limit answer; HubSpot paths only. It carries
              `Retry-After: <retry_after>` (default 1 second); `retry_after=None` sends
              none, as HubSpot's ten-secondly answers often do, so a client must back off
              on its own
  500 502 503 server errors (502/503 with an HTML body, as a proxy in front would send)
  reset       the connection is dropped before any response
  slow        the answer is delayed `seconds` (past a client's timeout), then served
  partial     some records of a batch fail with a retriable error (batch endpoints only)
  expired     401: the session/token is expired (INVALID_SESSION_ID on Salesforce)
  lost_write  the write is applied, then the connection is dropped (writes only)
  concurrent  Salesforce's concurrent long-running request limit: 403
              REQUEST_LIMIT_EXCEEDED "ConcurrentPerOrgLongTxn Limit exceeded."
              (Salesforce REST paths only, /services/data/...)

Spec string (CLI `--faults`): comma-separated `kind=RATE` or `kind=xCOUNT`, each
optionally `@/path/prefix`, plus `seed=N`, `slow_seconds=S`, `partial_share=F`,
`retry_after=S` (or `retry_after=none`, for 429 rules), and `count=N` right after a
rule, which caps how often that rule fires. Examples:
`500=0.02,reset=0.01,partial=x1@/crm/v3/objects/contacts/batch/update,seed=7`;
`concurrent=1.0@/services/data/v59.0/query,count=2` (the next two queries).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request

from sandbox.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    drop_connection,
    hubspot_body,
    respond,
)
from sandbox.auth import Credentials

KINDS = (
    "429",
    "500",
    "502",
    "503",
    "reset",
    "slow",
    "partial",
    "expired",
    "lost_write",
    "concurrent",
)
CONCURRENT_BODY = [
    {"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]


@dataclass
class FaultRule:
    kind: str
    rate: float | None = None  # probability per matching request
    count: int | None = None  # the next `count` matching requests (with a rate: at most)
    path: str = ""  # path prefix the rule applies to
    method: str | None = None
    crm: str | None = None  # "hubspot" | "salesforce"
    seconds: float = 5.0  # for slow
    share: float = 0.3  # for partial: the share of a batch's records that fail
    retry_after: int | None = 1  # for 429: Retry-After seconds; None sends no header

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.rate is None and self.count is None:
            raise ValueError(f"fault {self.kind}: give a rate, a count or both")


def is_batch(path: str) -> bool:
    return "/batch/" in path or path.rstrip("/").endswith("/composite/sobjects")


def is_write(method: str, path: str) -> bool:
    """Requests that change state (searches and reads are POSTs too, but not writes)."""
    if method in ("GET", "HEAD"):
        return False
    return not (
        path.endswith("/search") or path.endswith("/batch/read") or path.endswith("/oauth2/token")
    )


class Faults:
    """The active rules and the seeded generator they draw from."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules = list(rules or [])
        self.seed = seed
        self.rng = random.Random(seed)

    def set(self, rules: list[FaultRule], seed: int | None = None) -> None:
        self.rules = list(rules)
        if seed is not None:
            self.seed = seed
            self.rng = random.Random(seed)

    def pick(self, crm: str, method: str, path: str) -> FaultRule | None:
        """The fault to inject into this request, if any (consumes counts)."""
        for rule in self.rules:
            if rule.crm and rule.crm != crm:
                continue
            if rule.method and rule.method.upper() != method:
                continue
            if not path.startswith(rule.path):
                continue
            if rule.kind == "429" and crm != "hubspot":
                continue
            if rule.kind == "concurrent" and not path.startswith("/services/data/"):
                continue  # a limit of Salesforce's REST API, not of its OAuth endpoints
            if rule.kind == "partial" and not is_batch(path):
                continue
            if rule.kind == "lost_write" and not is_write(method, path):
                continue
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.rate is not None and self.rng.random() >= rule.rate:
                continue
            if rule.count is not None:
                rule.count -= 1
            return rule
        return None

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [asdict(r) for r in self.rules]}


def parse_spec(spec: str | None) -> tuple[list[FaultRule], int]:
    """Rules and seed from a `--faults` spec string (see the module docstring)."""
    rules: list[FaultRule] = []
    seed, slow, share = 0, 5.0, 0.3
    retry_after: int | None = 1
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        if key == "seed":
            seed = int(value)
            continue
        if key == "slow_seconds":
            slow = float(value)
            continue
        if key == "partial_share":
            share = float(value)
            continue
        if key == "retry_after":
            retry_after = None if value.lower() == "none" else int(value)
            continue
        if key == "count":
            if not rules:
                raise ValueError("count=N caps the rule before it; no rule comes first")
            rules[-1].count = int(value)
            continue
        value, _, path = value.partition("@")
        if value.startswith("x"):
            rules.append(FaultRule(key, count=int(value[1:]), path=path))
        else:
            rules.append(FaultRule(key, rate=float(value), path=path))
    for rule in rules:
        rule.seconds, rule.share, rule.retry_after = slow, share, retry_after
    return rules, seed


def rules_from_json(items: list[dict[str, Any]]) -> list[FaultRule]:
    """Rules from the admin API's JSON (the FaultRule fields)."""
    return [FaultRule(**item) for item in items]


PARTIAL_KEY = "sandbox.partial"


def partial_failures(request: Request, ids: list[str]) -> set[str]:
    """The ids of this batch that should fail with a retriable error (usually none).

    The gate marks the request when a `partial` fault fires; the batch handler asks here
    which of its records to fail, so the rest of the batch is applied as usual.
    """
    mark = request.scope.get(PARTIAL_KEY)
    if not mark or not ids:
        return set()
    rng, share = mark
    n = max(1, min(len(ids) - 1 if len(ids) > 1 else 1, round(len(ids) * share)))
    return set(rng.sample(ids, n))


async def inject(
    rule: FaultRule,
    crm: str,
    token: str | None,
    credentials: Credentials,
    rng: random.Random,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    extra: dict[str, str],
) -> bool:
    """Apply a fault to one request; True if the request is finished, False if the app
    should now serve it (slow: after the delay; partial: with the batch marked)."""
    kind = rule.kind
    if kind == "429":
        headers = {**extra, "X-HubSpot-RateLimit-Remaining": "0"}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        await respond(
            send,
            429,
            hubspot_body(
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
                groupName="publicapi:private-app:sandbox",
            ),
            headers,
        )
        return True
    if kind in ("500", "502", "503"):
        status = int(kind)
        if status == 502 or (status == 503 and crm == "hubspot"):
            reason = "Bad Gateway" if status == 502 else "Service Unavailable"
            await respond(
                send,
                status,
                f"<html><body><h1>{status} {reason}</h1></body></html>",
                content_type="text/html",
            )
        elif crm == "hubspot":
            await respond(send, 500, hubspot_body("INTERNAL_ERROR", "Internal Server Error"))
        else:
            code = "UNKNOWN_EXCEPTION" if status == 500 else "SERVER_UNAVAILABLE"
            await respond(
                send,
                status,
                [
                    {
                        "message": "An unexpected error occurred. Please "
                        "include this ErrorId if you contact support: "
                        f"{uuid.uuid4().hex[:10]} (-1)",
                        "errorCode": code,
                    }
                ],
                extra,  # Salesforce's own answers carry Sforce-Limit-Info
            )
        return True
    if kind == "reset":
        await drop_connection(send)
        return True
    if kind == "slow":
        await asyncio.sleep(rule.seconds)
        return False
    if kind == "expired":
        if crm == "hubspot":
            # An OAuth access token really expires; a private-app token is only refused.
            credentials.expire_hubspot_token(token)
            await respond(
                send,
                401,
                hubspot_body(
                    "EXPIRED_AUTHENTICATION",
                    "The OAuth token used to make this call expired 1 minute(s) ago.",
                ),
            )
        else:
            # The session really expires: the client has to get a new one.
            credentials.expire_salesforce_sessions(token)
            await respond(
                send,
                401,
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            )
        return True
    if kind == "partial":
        scope[PARTIAL_KEY] = (rng, rule.share)
        return False
    if kind == "concurrent":
        # Salesforce's other REQUEST_LIMIT_EXCEEDED: too many long-running requests at
        # once (not the daily allowance). The usage header comes with it.
        await respond(send, 403, CONCURRENT_BODY, extra)
        return True
    if kind == "lost_write":

        async def swallow(message: Message) -> None:
            return None

        await app(scope, receive, swallow)  # the write lands...
        await drop_connection(send)  # ...and its answer never arrives
        return True
    return False
