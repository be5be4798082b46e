"""The requests session the Salesforce connector owns: TLS, auth, throttle and retries.

simple-salesforce sends every request (including `query_all_iter`'s follow-up pages)
through this session, so each HTTP call passes the throttle and the retry policy here,
once, and a 401 swaps in a fresh token without simple-salesforce knowing.
"""

from __future__ import annotations

from typing import Any

import requests

from connectors.config import SalesforceConfig
from connectors.errors import AuthExpired
from connectors.retry import Redactor, call_with_retry
from connectors.throttle import Throttle

_NOT_IDEMPOTENT = frozenset({"POST"})


class SalesforceSession(requests.Session):
    """A `requests.Session` with the configured CA (not the environment's) and the policy."""

    def __init__(self, config: SalesforceConfig, throttle: Throttle, redact: Redactor) -> None:
        super().__init__()
        # REQUESTS_CA_BUNDLE in the environment would otherwise override `verify`.
        self.trust_env = False
        self.verify = str(config.ca_file) if config.ca_file else True
        self._config = config
        self._throttle = throttle
        self._redact = redact
        self.token: str | None = config.session_id.get_secret_value() if config.session_id else None
        redact.add(self.token)
        if config.client_secret:
            redact.add(config.client_secret.get_secret_value())

    @property
    def token_url(self) -> str:
        return (
            self._config.token_url
            or self._config.instance_url.rstrip("/") + "/services/oauth2/token"
        )

    def can_refresh(self) -> bool:
        return bool(self._config.client_id and self._config.client_secret)

    def refresh(self) -> None:
        """A new access token through the OAuth client-credentials flow."""
        if not self.can_refresh():
            raise AuthExpired("Salesforce session expired and no client credentials are configured")
        assert self._config.client_secret is not None
        data = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret.get_secret_value(),
        }

        def post() -> str:
            self._throttle.acquire()
            response = super(SalesforceSession, self).request(
                "POST", self.token_url, data=data, timeout=self._config.timeout_s
            )
            if response.status_code >= 400:
                raise requests.HTTPError(response=response)
            return str(response.json()["access_token"])

        self.token = call_with_retry(
            post, policy=self._config.retry, redact=self._redact, what="oauth token"
        )
        self._redact.add(self.token)

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send once per attempt through the throttle; raise `ConnectorError` on failure."""
        method_name = method.decode() if isinstance(method, bytes) else method
        kwargs.setdefault("timeout", self._config.timeout_s)
        if self.token is None and self.can_refresh():
            self.refresh()

        base_headers = dict(kwargs.pop("headers", None) or {})

        def send() -> requests.Response:
            headers = dict(base_headers)
            if self.token is not None:
                # Always the current token: a refresh after a 401 applies to the next attempt.
                headers["Authorization"] = f"Bearer {self.token}"
            response = super(SalesforceSession, self).request(
                method,
                url,
                *args,
                headers=headers,
                **kwargs,  # type: ignore[misc]
            )
            if response.status_code >= 400:
                raise requests.HTTPError(response=response)
            return response

        return call_with_retry(
            send,
            policy=self._config.retry,
            redact=self._redact,
            refresh_auth=self.refresh if self.can_refresh() else None,
            idempotent=method_name.upper() not in _NOT_IDEMPOTENT,
            what=f"{method_name} {str(url).split('?', 1)[0]}",
            before_attempt=self._throttle.acquire,
        )
