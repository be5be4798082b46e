"""HubSpot OAuth: a refresh token and the app's client id and secret buy access tokens.

A private-app token never expires, so it needs none of this; an OAuth access token
lives 30 minutes, and a scheduled sync must renew it on a 401 rather than fail.
"""

from __future__ import annotations

import json
from threading import Lock
from typing import Any

from hubspot import HubSpot  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.errors import AuthExpired, ConnectorError
from connectors.retry import Redactor, RetryPolicy, call_with_retry


class HubSpotOAuth(BaseModel):
    """What HubSpot's token endpoint needs (`POST /oauth/v1/token`, grant refresh_token)."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr


class HubSpotTokenProvider:
    """Callable that returns a fresh access token; each call asks the token endpoint."""

    def __init__(
        self,
        oauth: HubSpotOAuth,
        host: str,
        ca_file: str | None,
        policy: RetryPolicy,
        redact: Redactor,
        timeout_s: float,
    ) -> None:
        self._oauth = oauth
        self._policy = policy
        self._redact = redact
        self._timeout_s = timeout_s
        redact.add(oauth.client_secret.get_secret_value())
        redact.add(oauth.refresh_token.get_secret_value())
        client = HubSpot(host=host.rstrip("/"), ssl_ca_cert=ca_file, retry=False)
        self._tokens = client.oauth.tokens_api
        self._lock = Lock()

    def __call__(self) -> str:
        with self._lock:  # one refresh at a time: parallel requests share its result

            def attempt() -> dict[str, Any]:
                response = self._tokens.create(
                    grant_type="refresh_token",
                    client_id=self._oauth.client_id,
                    client_secret=self._oauth.client_secret.get_secret_value(),
                    refresh_token=self._oauth.refresh_token.get_secret_value(),
                    _preload_content=False,
                    _request_timeout=self._timeout_s,
                )
                try:
                    return dict(json.loads(response.data))
                finally:
                    response.release_conn()

            try:
                answer = call_with_retry(
                    attempt, policy=self._policy, redact=self._redact, what="HubSpot oauth token"
                )
            except ConnectorError as exc:
                if exc.status in (400, 401):
                    raise AuthExpired(
                        f"HubSpot refused the OAuth refresh: {exc.message}", status=exc.status
                    ) from None
                raise
            token = str(answer["access_token"])
            self._redact.add(token)
            return token
