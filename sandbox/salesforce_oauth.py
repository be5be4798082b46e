"""Salesforce's OAuth token endpoint: the client-credentials flow and the JWT bearer flow,
and the answer both give.

JWT bearer flow (Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server
Integration"): the client posts `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
and an RS256-signed `assertion` whose claims are iss = the connected app's consumer key,
sub = the username, aud = the login host (or the org's My Domain), exp = at most three
minutes ahead. The sandbox checks the signature against the public half of the key pair
it generated at start (`tls.make_jwt_key`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import jwt

from sandbox.auth import SALESFORCE_ORG_ID, SALESFORCE_USER_ID, Credentials

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
# How far ahead `exp` may be (the help page: "within 3 minutes"), plus a little for the
# whole seconds clients round to.
MAX_AHEAD_S = 180
SKEW_S = 5


@dataclass(frozen=True)
class OAuthError(Exception):
    """A refused token request: Salesforce answers 400 with these two fields."""

    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def _claims(assertion: str | None, public_key: str | None) -> dict[str, Any]:
    """The assertion's claims once its RS256 signature checks out."""
    if not assertion or not public_key:
        raise _invalid("invalid assertion")
    try:
        # Claims are checked below, to answer as Salesforce does for each; `exp` may be a
        # string of digits (Salesforce's own example and simple-salesforce send one).
        return dict(
            jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        )
    except jwt.PyJWTError as exc:
        raise _invalid("invalid assertion") from exc


def _expiry(claims: dict[str, Any]) -> float:
    exp = claims.get("exp")
    try:
        if isinstance(exp, bool) or exp is None:
            raise ValueError(exp)
        return float(exp)
    except (TypeError, ValueError) as exc:
        raise _invalid("invalid assertion") from exc


def _audience_ok(aud: Any, base_url: str) -> bool:
    allowed = {*LOGIN_AUDIENCES, base_url.rstrip("/")}
    values = aud if isinstance(aud, list) else [aud]
    return any(isinstance(v, str) and v.rstrip("/") in allowed for v in values)


def check_assertion(
    assertion: str | None, credentials: Credentials, base_url: str, now_s: float | None = None
) -> None:
    """Raise OAuthError unless the assertion would get a token from Salesforce."""
    claims = _claims(assertion, credentials.jwt_public_key)
    if claims.get("iss") != credentials.salesforce_client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not _audience_ok(claims.get("aud"), base_url):
        raise _invalid("audience is invalid")
    now = time.time() if now_s is None else now_s
    exp = _expiry(claims)
    if exp <= now:
        raise _invalid("expired authorization code")
    if exp > now + MAX_AHEAD_S + SKEW_S:
        raise _invalid("invalid assertion")
    if claims.get("sub") != credentials.salesforce_username:
        raise _invalid("user hasn't approved this consumer")


def check_client(form: dict[str, str], credentials: Credentials) -> None:
    """The client-credentials flow: the connected app's key and secret."""
    if (
        form.get("client_id") != credentials.salesforce_client_id
        or form.get("client_secret") != credentials.salesforce_client_secret
    ):
        raise OAuthError("invalid_client", "invalid client credentials")


def identity_url(base_url: str) -> str:
    return f"{base_url}/id/{SALESFORCE_ORG_ID}/{SALESFORCE_USER_ID}"


def token_answer(credentials: Credentials, base_url: str) -> dict[str, str]:
    """A new session, as both flows answer it (neither gives a refresh token)."""
    identity = identity_url(base_url)
    issued_at = str(int(time.time() * 1000))
    # "signature": HMAC-SHA256 of the identity URL and issued_at, keyed by the consumer
    # secret, so that a client can tell the answer came from the server.
    digest = hmac.new(
        credentials.salesforce_client_secret.encode(),
        (identity + issued_at).encode(),
        hashlib.sha256,
    ).digest()
    return {
        "access_token": credentials.new_salesforce_session(),
        "instance_url": base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(digest).decode(),
        "scope": "api",
    }


def userinfo(credentials: Credentials, base_url: str) -> dict[str, Any]:
    """`GET /services/oauth2/userinfo` for the session's user."""
    username = credentials.salesforce_username
    return {
        "sub": identity_url(base_url),
        "user_id": SALESFORCE_USER_ID,
        "organization_id": SALESFORCE_ORG_ID,
        "preferred_username": username,
        "nickname": username.partition("@")[0],
        "name": "Integration User",
        "email": username,
        "email_verified": True,
        "active": True,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
    }
