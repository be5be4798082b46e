"""The ASGI layer in front of both CRMs: counts every request, checks credentials,
applies the rate limits, and injects faults, in the order a real edge would.

It wraps the raw ASGI callable (not a Starlette middleware) because two faults need
the connection itself: `reset` and `lost_write` drop it with no response.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sandbox.faults import PARTIAL_KEY, FaultRule
from sandbox.state import Sandbox, endpoint_label

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_PATH = "/services/oauth2/token"


def crm_of(path: str) -> str | None:
    if path.startswith(("/crm/", "/events/")):
        return "hubspot"
    if path.startswith("/services/"):
        return "salesforce"
    return None


async def _respond(
    send: Send,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def _drop_connection(send: Send) -> None:
    """Close the TCP connection without a response (the client sees a reset/EOF).

    uvicorn hands the app its per-request cycle's bound `send`; its transport is the
    connection. Aborting it is the only way to drop a connection from inside ASGI.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not running under uvicorn")
    transport.abort()
    await asyncio.sleep(0.01)  # let the server see the connection is gone before we return


def _hubspot_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            return text[7:].strip() if text.lower().startswith("bearer ") else text.strip()
    return None


class Gate:
    """Wraps the CRM app; `/_sandbox/` requests pass straight through."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        sb = self.sandbox
        method = scope["method"]
        key = endpoint_label(method, path)
        sb.stats.requests[key] += 1
        crm = crm_of(path)
        if crm is None:
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if crm == "hubspot" and token != sb.credentials.hubspot_token:
            await _respond(
                send,
                401,
                _hubspot_body(
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API "
                    "supports OAuth 2.0 authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            )
            return
        if crm == "salesforce" and path != TOKEN_PATH and token not in sb.credentials.sessions:
            await _respond(
                send,
                401,
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            )
            return

        extra: dict[str, str] = {}
        if crm == "hubspot":
            rejection, extra = sb.limiter.hubspot(path)
        elif path != TOKEN_PATH:
            rejection, extra = sb.limiter.salesforce()
        else:
            rejection = None
        if rejection is not None:
            sb.stats.throttled[key] += 1
            sb.stats.policies[rejection.policy] += 1
            if crm == "hubspot":
                names = {
                    "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
                    "SECONDLY": "secondly",
                    "DAILY": "daily",
                }
                await _respond(
                    send,
                    429,
                    _hubspot_body(
                        "RATE_LIMITS",
                        f"You have reached your {names[rejection.policy]} limit.",
                        errorType="RATE_LIMIT",
                        policyName=rejection.policy,
                        groupName="publicapi:private-app:sandbox",
                    ),
                    rejection.headers,
                )
            else:
                await _respond(
                    send,
                    403,
                    [
                        {
                            "message": "TotalRequests Limit exceeded.",
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                        }
                    ],
                    rejection.headers,
                )
            return

        rule = sb.faults.pick(crm, method, path)
        if rule is not None:
            sb.stats.faulted[key][rule.kind] += 1
            if await self._inject(rule, crm, token, scope, receive, send, extra):
                return
        started = time.perf_counter()
        await self.app(scope, receive, _with_headers(send, extra))
        # The sandbox's own cost per endpoint, so benchmarks can subtract it.
        sb.stats.seconds[key] += time.perf_counter() - started

    async def _inject(
        self,
        rule: FaultRule,
        crm: str,
        token: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: dict[str, str],
    ) -> bool:
        """Apply a fault; True if the request is finished, False to serve it after all."""
        kind = rule.kind
        if kind == "429":
            await _respond(
                send,
                429,
                _hubspot_body(
                    "RATE_LIMITS",
                    "You have reached your ten_secondly_rolling limit.",
                    errorType="RATE_LIMIT",
                    policyName="TEN_SECONDLY_ROLLING",
                    groupName="publicapi:private-app:sandbox",
                ),
                {**extra, "X-HubSpot-RateLimit-Remaining": "0", "Retry-After": "1"},
            )
            return True
        if kind in ("500", "502", "503"):
            status = int(kind)
            if status == 502 or (status == 503 and crm == "hubspot"):
                reason = "Bad Gateway" if status == 502 else "Service Unavailable"
                await _respond(
                    send,
                    status,
                    f"<html><body><h1>{status} {reason}</h1></body></html>",
                    content_type="text/html",
                )
            elif crm == "hubspot":
                await _respond(send, 500, _hubspot_body("INTERNAL_ERROR", "Internal Server Error"))
            else:
                code = "UNKNOWN_EXCEPTION" if status == 500 else "SERVER_UNAVAILABLE"
                await _respond(
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
                )
            return True
        if kind == "reset":
            await _drop_connection(send)
            return True
        if kind == "slow":
            await asyncio.sleep(rule.seconds)
            return False
        if kind == "expired":
            if crm == "hubspot":
                await _respond(
                    send,
                    401,
                    _hubspot_body(
                        "EXPIRED_AUTHENTICATION",
                        "The OAuth token used to make this call expired 1 minute(s) ago.",
                    ),
                )
            else:
                # The session really expires: the client has to get a new one.
                self.sandbox.credentials.expire_salesforce_sessions(token)
                await _respond(
                    send,
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                )
            return True
        if kind == "partial":
            scope[PARTIAL_KEY] = (self.sandbox.faults.rng, rule.share)
            return False
        if kind == "lost_write":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)  # the write lands...
            await _drop_connection(send)  # ...and its answer never arrives
            return True
        return False


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    if not headers:
        return send
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *raw]}
        await send(message)

    return wrapped
