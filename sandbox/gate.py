"""The ASGI layer in front of both CRMs: counts every request, checks credentials,
applies the rate limits, injects faults, and waits a realistic answer time when the
latency profile is on, in the order a real edge would.

It wraps the raw ASGI callable (not a Starlette middleware) because two faults need
the connection itself: `reset` and `lost_write` drop it with no response.
"""

from __future__ import annotations

import time

from sandbox import faults
from sandbox.asgi import ASGIApp, Message, Receive, Scope, Send, hubspot_body, respond
from sandbox.state import Sandbox, endpoint_label

TOKEN_PATH = "/services/oauth2/token"
HUBSPOT_TOKEN_PATH = "/oauth/v1/token"
TOKEN_PATHS = (TOKEN_PATH, HUBSPOT_TOKEN_PATH)
# Salesforce answers outside the REST API's request limits, so without Sforce-Limit-Info:
# the OAuth endpoints, and the versions list (which needs no session either).
SALESFORCE_OAUTH = "/services/oauth2/"
SALESFORCE_VERSIONS = ("/services/data", "/services/data/")


def crm_of(path: str) -> str | None:
    if path.startswith(("/crm/", "/events/", "/oauth/", "/email/", "/form-integrations/",
                        "/marketing/", "/account-info/")):  # fmt: skip
        return "hubspot"
    if path.startswith("/services/"):
        return "salesforce"
    return None


def bearer(scope: Scope) -> str | None:
    """The request's token: its Authorization header without the `Bearer ` prefix."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = bytes(value).decode("latin-1")
            return text[7:].strip() if text.lower().startswith("bearer ") else text.strip()
    return None


class Gate:
    """Wraps the CRM app; `/_sandbox/` requests pass straight through."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox
        # The portal's search index lags writes by the current limits' setting, which
        # `PUT /_sandbox/limits` may change while the sandbox serves.
        sandbox.portal.search_lag = lambda: float(sandbox.limiter.limits.search_lag_s)

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
        sb.crm_requests += 1
        number, hook = sb.crm_requests, sb.on_request  # test facility (state.Sandbox)
        if hook is not None:
            hook(method, path, number, "before")
        token = bearer(scope)
        if (
            crm == "hubspot"
            and path != HUBSPOT_TOKEN_PATH
            and not sb.credentials.hubspot_token_valid(token)
        ):
            await respond(
                send,
                401,
                hubspot_body(
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API "
                    "supports OAuth 2.0 authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            )
            return
        if (
            crm == "salesforce"
            and path != TOKEN_PATH
            and path not in SALESFORCE_VERSIONS
            and token not in sb.credentials.sessions
        ):
            await respond(
                send,
                401,
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            )
            return

        extra: dict[str, str] = {}
        rejection = None
        if path in TOKEN_PATHS or path.startswith(SALESFORCE_OAUTH) or path in SALESFORCE_VERSIONS:
            pass  # token endpoints are outside the API's request limits
        elif crm == "hubspot":
            rejection, extra = sb.limiter.hubspot(
                path, oauth=token in sb.credentials.hubspot_oauth_tokens
            )
        else:
            rejection, extra = sb.limiter.salesforce()
        if rejection is not None:
            sb.stats.throttled[key] += 1
            sb.stats.policies[rejection.policy] += 1
            if crm == "hubspot":
                names = {
                    "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
                    "SECONDLY": "secondly",
                    "DAILY": "daily",
                }
                await respond(
                    send,
                    429,
                    hubspot_body(
                        "RATE_LIMITS",
                        f"You have reached your {names[rejection.policy]} limit.",
                        errorType="RATE_LIMIT",
                        policyName=rejection.policy,
                        groupName="publicapi:private-app:sandbox",
                    ),
                    rejection.headers,
                )
            else:
                await respond(
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
            if await faults.inject(
                rule,
                crm,
                token,
                sb.credentials,
                sb.faults.rng,
                self.app,
                scope,
                receive,
                send,
                extra,
            ):
                return
        # A real CRM's answer time (off unless a latency profile is on). Answers given at
        # the edge above (401, rate limits, faults) come at once; only served requests
        # wait, and before `started`, so that `seconds` stays the sandbox's own cost.
        waited = await sb.latency.wait(crm, method, path, key)
        if waited:
            sb.stats.waited[key] += waited
        started = time.perf_counter()
        await self.app(scope, receive, _with_headers(send, extra))
        # The sandbox's own cost per endpoint, so benchmarks can subtract it.
        sb.stats.seconds[key] += time.perf_counter() - started
        if hook is not None:
            hook(method, path, number, "after")


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    if not headers:
        return send
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *raw]}
        await send(message)

    return wrapped
