"""Seeded fault injection: which request fails, and how.

A rule names a kind and fires either with a probability (`rate`, drawn from a seeded
generator so a run is repeatable) or for the next `count` matching requests (exact, for
tests). Rules can be limited to a CRM, a method and a path prefix.

Kinds:
  429         HubSpot-shaped rate-limit answer (with Retry-After); HubSpot paths only
  500 502 503 server errors (502/503 with an HTML body, as a proxy in front would send)
  reset       the connection is dropped before any response
  slow        the answer is delayed `seconds` (past a client's timeout), then served
  partial     some records of a batch fail with a retriable error (batch endpoints only)
  expired     401: the session/token is expired (INVALID_SESSION_ID on Salesforce)
  lost_write  the write is applied, then the connection is dropped (writes only)

Spec string (CLI `--faults`): comma-separated `kind=RATE` or `kind=xCOUNT`, each
optionally `@/path/prefix`, plus `seed=N`, `slow_seconds=S`, `partial_share=F`. Example:
`500=0.02,reset=0.01,partial=x1@/crm/v3/objects/contacts/batch/update,seed=7`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request

KINDS = ("429", "500", "502", "503", "reset", "slow", "partial", "expired", "lost_write")


@dataclass
class FaultRule:
    kind: str
    rate: float | None = None  # probability per matching request
    count: int | None = None  # or: the next `count` matching requests
    path: str = ""  # path prefix the rule applies to
    method: str | None = None
    crm: str | None = None  # "hubspot" | "salesforce"
    seconds: float = 5.0  # for slow
    share: float = 0.3  # for partial: the share of a batch's records that fail

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if (self.rate is None) == (self.count is None):
            raise ValueError(f"fault {self.kind}: give exactly one of rate and count")


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
            if rule.kind == "partial" and not is_batch(path):
                continue
            if rule.kind == "lost_write" and not is_write(method, path):
                continue
            if rule.count is not None:
                if rule.count <= 0:
                    continue
                rule.count -= 1
                return rule
            if rule.rate is not None and self.rng.random() < rule.rate:
                return rule
        return None

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [asdict(r) for r in self.rules]}


def parse_spec(spec: str | None) -> tuple[list[FaultRule], int]:
    """Rules and seed from a `--faults` spec string (see the module docstring)."""
    rules: list[FaultRule] = []
    seed, slow, share = 0, 5.0, 0.3
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
        value, _, path = value.partition("@")
        if value.startswith("x"):
            rules.append(FaultRule(key, count=int(value[1:]), path=path))
        else:
            rules.append(FaultRule(key, rate=float(value), path=path))
    for rule in rules:
        rule.seconds, rule.share = slow, share
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
