"""Record HubSpot exchanges (request and answer bodies) for tests that check them.

A test facility, not CRM behaviour: off unless `Sandbox.exchanges` is a list. It sits
inside the gate, so what it records is what the routes answered to requests that passed
authentication, limits and faults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.asgi import ASGIApp, Message, Receive, Scope, Send
from sandbox.state import Sandbox

HUBSPOT_PREFIXES = (
    "/crm/", "/events/", "/email/", "/form-integrations/", "/marketing/", "/account-info/",
    "/oauth/v2/",
)  # fmt: skip


@dataclass
class RecordedExchange:
    method: str
    path: str
    query: str
    status: int
    request_body: Any
    response_body: Any


def _parse(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


class Recorder:
    """ASGI middleware appending a `RecordedExchange` per HubSpot request when asked to."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app, self.sandbox = app, sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        log = self.sandbox.exchanges
        path = scope.get("path", "")
        if log is None or scope["type"] != "http" or not path.startswith(HUBSPOT_PREFIXES):
            await self.app(scope, receive, send)
            return
        sent: list[bytes] = []
        status = [0]
        answer: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                sent.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        log.append(
            RecordedExchange(
                scope["method"],
                path,
                scope.get("query_string", b"").decode(),
                status[0],
                _parse(b"".join(sent)),
                _parse(b"".join(answer)),
            )
        )
