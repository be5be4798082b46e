"""Raw ASGI helpers shared by the gate and the fault injector."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def respond(
    send: Send,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    """Send a whole response: JSON for dicts/lists, text for str."""
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def drop_connection(send: Send) -> None:
    """Close the TCP connection without a response (the client sees a reset/EOF).

    uvicorn hands the app its per-request cycle's bound `send`; its transport is the
    connection. Aborting it is the only way to drop a connection from inside ASGI.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not running under uvicorn")
    transport.abort()
    await asyncio.sleep(0.01)  # let the server see the connection is gone before we return


def hubspot_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error body: status, message, correlationId, category (+ extra keys)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
