"""Salesforce sessions: the OAuth grants that buy one, and when to buy the next.

Two grants, both `POST <login URL>/services/oauth2/token` (form-encoded):
- client credentials: `grant_type=client_credentials`, `client_id`, `client_secret`;
- JWT bearer: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion`,
  an RS256 JWT with `iss` = the connected app's consumer key, `sub` = the username,
  `aud` = the login URL (https://login.salesforce.com, https://test.salesforce.com or a
  My Domain / site URL) and `exp` at most 3 minutes ahead, signed with the private key
  of the certificate uploaded to the connected app.

The answer carries `access_token`, `instance_url` (the org's API host) and `issued_at`
(milliseconds since the epoch), but neither a refresh token nor an expiry: the session
lives for the org's session timeout (2 hours unless an admin changed it). So a session
is renewed `session_minutes` after `issued_at` (or after the answer arrived, when
`issued_at` is missing or implausible), and on any 401 (INVALID_SESSION_ID: expired,
revoked, logged out). A refusal is HTTP 400 with
`{"error": "invalid_grant", "error_description": "..."}`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from connectors.config import SalesforceConfig, require_tls
from connectors.errors import AuthExpired, ConnectorError, FatalError
from connectors.retry import Redactor, call_with_retry

log = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce accepts an assertion whose `exp` is at most 3 minutes ahead; 2 leaves room
# for a clock that runs a little fast.
ASSERTION_LIFETIME_S = 120
# The message of a dead static session that nothing can renew (flows name the remedy).
NO_RENEWAL = "Salesforce session expired and no client credentials are configured"

Clock = Callable[[], float]
TokenPost = Callable[[str, dict[str, str]], requests.Response]


@dataclass(frozen=True)
class SalesforceToken:
    """One session: its id (never printed), its API host, and how old it is."""

    access_token: str = field(repr=False)
    instance_url: str | None
    received_at: float  # epoch seconds, by the session's clock
    issued_at: float | None = None  # epoch seconds, as the token answer said
    age_at_receipt: float = 0.0  # seconds between `issued_at` and the answer's arrival

    @property
    def born(self) -> float:
        """When this session began, by the session's clock."""
        return self.received_at - self.age_at_receipt


def age_at_receipt(issued_at: float | None, lifetime_s: float, wall: Clock = time.time) -> float:
    """How old a session is on arrival, from the answer's `issued_at` (epoch seconds).

    0 when unknown, in the future (clocks differ), or older than a whole lifetime:
    Salesforce may answer a still-valid earlier session again, and counting from its
    first `issued_at` would then renew it on every request.
    """
    if issued_at is None:
        return 0.0
    age = wall() - issued_at
    return age if 0.0 <= age < lifetime_s else 0.0


class Grant(Protocol):
    """What one OAuth grant sends to the token endpoint."""

    kind: str

    def form(self) -> dict[str, str]: ...

    def hint(self) -> str: ...


class ClientCredentials:
    """The client-credentials grant (a connected app with a Run As user)."""

    kind = "client credentials"

    def __init__(self, client_id: str, client_secret: str) -> None:
        self._client_id = client_id
        self._client_secret = client_secret

    def form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }

    def hint(self) -> str:
        return (
            "check the client id and secret, and that the connected app enables the "
            "client credentials flow with a Run As user"
        )

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._client_id!r})"


def load_private_key(pem: bytes, source: str) -> RSAPrivateKey:
    """An RSA private key from PEM text; `FatalError` naming `source` (never the key)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise FatalError(
            f"the Salesforce JWT key ({source}) is not an unencrypted PEM private key",
            code="JWT_KEY",
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise FatalError(
            f"the Salesforce JWT key ({source}) is not an RSA key: RS256 needs one",
            code="JWT_KEY",
        )
    return key


def read_private_key(config: SalesforceConfig, redact: Redactor | None = None) -> RSAPrivateKey:
    """The configured JWT key, from its file or its text; each PEM line joins `redact`."""
    if config.jwt_key_file is not None:
        source = f"file {config.jwt_key_file}"
        try:
            pem = config.jwt_key_file.read_bytes()
        except OSError as exc:
            raise FatalError(
                f"cannot read the Salesforce JWT key {source}: {exc.strerror or exc}",
                code="JWT_KEY",
            ) from None
    elif config.jwt_private_key is not None:
        source = "key text"
        pem = config.jwt_private_key.get_secret_value().encode()
    else:
        raise FatalError("no Salesforce JWT key is configured", code="JWT_KEY")
    if redact is not None:
        text = pem.decode("ascii", "replace")
        redact.add(text.strip())
        for line in text.splitlines():
            if line.strip() and not line.startswith("-----"):
                redact.add(line.strip())
    return load_private_key(pem, source)


class JwtBearer:
    """The JWT bearer grant: a fresh signed assertion for every token request."""

    kind = "JWT bearer"

    def __init__(
        self,
        client_id: str,
        username: str,
        audience: str,
        key: RSAPrivateKey,
        redact: Redactor,
        clock: Clock = time.time,
    ) -> None:
        self._client_id = client_id
        self._username = username
        self._audience = audience
        self._key = key
        self._redact = redact
        self._clock = clock

    def assertion(self) -> str:
        claims = {
            "iss": self._client_id,
            "sub": self._username,
            "aud": self._audience,
            "exp": int(self._clock()) + ASSERTION_LIFETIME_S,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256")
        self._redact.add(token)
        return token

    def form(self) -> dict[str, str]:
        return {"grant_type": JWT_BEARER, "assertion": self.assertion()}

    def hint(self) -> str:
        return (
            f"check the consumer key (client id), the username, the login URL "
            f"{self._audience} (the JWT audience), that the connected app holds the "
            "certificate of this key, and that the user is pre-authorised for the app"
        )

    def __repr__(self) -> str:
        return (
            f"JwtBearer(client_id={self._client_id!r}, username={self._username!r}, "
            f"audience={self._audience!r})"
        )


def grant_for(config: SalesforceConfig, redact: Redactor) -> Grant | None:
    """The grant the config describes (JWT bearer first), or None (a static session).

    An assertion's `exp` is read by Salesforce's clock: it is set by the wall clock.
    """
    if config.uses_jwt:
        assert config.client_id is not None and config.username is not None
        return JwtBearer(
            config.client_id,
            config.username,
            config.effective_login_url,
            read_private_key(config, redact),
            redact,
        )
    if config.client_id and config.client_secret:
        secret = config.client_secret.get_secret_value()
        redact.add(secret)
        return ClientCredentials(config.client_id, secret)
    return None


class SalesforceAuth:
    """Holds the current session and renews it: before it gets old, and after a 401.

    Thread-safe: one renewal at a time, and a 401 seen by several requests that used the
    same session renews it once.
    """

    def __init__(
        self,
        config: SalesforceConfig,
        redact: Redactor,
        post: TokenPost,
        *,
        clock: Clock = time.time,
    ) -> None:
        # `clock` (epoch seconds) measures a session's age; tests move it.
        self._config = config
        self._redact = redact
        self._post = post
        self._clock = clock
        self._lock = threading.Lock()
        self._grant = grant_for(config, redact)
        self._lifetime_s = config.session_minutes * 60.0
        self._token: SalesforceToken | None = None
        self.renewals = 0  # token requests answered, for diagnostics and tests
        if config.session_id is not None:
            session = config.session_id.get_secret_value()
            redact.add(session)
            self._token = SalesforceToken(session, config.instance_url, received_at=clock())

    def __repr__(self) -> str:
        return f"SalesforceAuth(grant={self._grant!r}, token_url={self.token_url!r})"

    @property
    def grant(self) -> Grant | None:
        return self._grant

    @property
    def token_url(self) -> str:
        return self._config.token_endpoint

    @property
    def token(self) -> str | None:
        """The session id in use now (None before the first one is fetched)."""
        held = self._token
        return held.access_token if held is not None else None

    def can_renew(self) -> bool:
        return self._grant is not None

    def due(self, token: SalesforceToken) -> bool:
        """Whether `token` is old enough to renew before it expires."""
        return self._clock() - token.born >= self._lifetime_s

    def current(self) -> SalesforceToken:
        """The session to send: fetched when none is held, renewed when it is old."""
        with self._lock:
            held = self._token
            if held is None or (self._grant is not None and self.due(held)):
                return self._fetch("first session" if held is None else "session lifetime")
            return held

    def renew(self, stale: str | None = None) -> bool:
        """After a 401 for `stale` (None: renew whatever is held); whether a session was
        fetched. Nothing is fetched (False) when another request has already replaced
        `stale`.
        """
        with self._lock:
            if self._grant is None:
                raise AuthExpired(NO_RENEWAL, status=401)
            held = self._token
            if stale is not None and held is not None and held.access_token != stale:
                return False
            self._fetch("session refused")
            return True

    def instance_url(self) -> str:
        """The org's API base URL: from the token answer, else the configured one."""
        url = self.current().instance_url or self._config.instance_url
        if not url:
            raise FatalError(
                "the Salesforce token answer named no instance_url and none is configured",
                code="NO_INSTANCE_URL",
            )
        return url.rstrip("/")

    def _fetch(self, reason: str) -> SalesforceToken:
        grant = self._grant
        assert grant is not None  # a static session is never fetched
        log.info("Salesforce: requesting a session (%s, %s grant)", reason, grant.kind)

        def attempt() -> dict[str, Any]:
            # A fresh form (and JWT assertion) per attempt: an assertion ages.
            response = self._post(self.token_url, grant.form())
            if response.status_code >= 400:
                raise requests.HTTPError(response=response)
            answer = response.json()
            if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
                raise FatalError(
                    "the Salesforce token answer carries no access_token", code="BAD_TOKEN"
                )
            return answer

        try:
            answer = call_with_retry(
                attempt,
                policy=self._config.retry,
                redact=self._redact,
                what="Salesforce oauth token",
            )
        except ConnectorError as exc:
            if exc.status in (400, 401, 403):
                raise FatalError(
                    f"Salesforce refused the {grant.kind} grant ({exc.message}): {grant.hint()}",
                    status=exc.status,
                    code=exc.code,
                ) from None
            raise
        token = self._token_from(answer)
        self._token = token
        self.renewals += 1
        return token

    def _token_from(self, answer: dict[str, Any]) -> SalesforceToken:
        access = str(answer["access_token"])
        self._redact.add(access)
        instance = answer.get("instance_url")
        if instance is not None:
            instance = str(instance)
            try:
                require_tls("Salesforce instance URL", instance, self._config.allow_http_loopback)
            except ValueError as exc:
                raise FatalError(
                    f"the Salesforce token answer's instance URL is refused: {exc}",
                    code="BAD_INSTANCE_URL",
                ) from None
        issued: float | None = None
        try:
            issued = int(str(answer["issued_at"])) / 1000.0  # milliseconds since the epoch
        except (KeyError, ValueError):
            issued = None
        return SalesforceToken(
            access,
            instance,
            received_at=self._clock(),
            issued_at=issued,
            # Measured on the wall clock, as `issued_at` is; the session's own clock then
            # measures the time that passes.
            age_at_receipt=age_at_receipt(issued, self._lifetime_s),
        )
