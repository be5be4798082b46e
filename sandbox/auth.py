"""Credentials the sandbox accepts: a HubSpot private-app token, Salesforce sessions and
the OAuth client-credentials pair that mints new sessions.

The defaults are fixed so that a demo, a test and a benchmark can all talk to any
sandbox without configuration. They are not secrets: the sandbox only listens on
loopback and holds synthetic data.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sandbox.ids import sf_id

DEFAULT_HUBSPOT_TOKEN = "pat-sandbox-00000000-0000-0000-0000-000000000000"
DEFAULT_SALESFORCE_SESSION = "00D5g000000SANDBOX!sandbox-session"
DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_HUBSPOT_CLIENT_ID = "sandbox-hubspot-client-id"
DEFAULT_HUBSPOT_CLIENT_SECRET = "sandbox-hubspot-client-secret"
DEFAULT_HUBSPOT_REFRESH_TOKEN = "sandbox-hubspot-refresh-token"
# The org and its integration user: the user sessions act as, named by the JWT flow's
# `sub` and by the token answer's identity URL (`.../id/<org id>/<user id>`).
SALESFORCE_ORG_ID = "00D5g000000SANDBOX"
SALESFORCE_USER_NUMBER = 999_999  # a User number no owner has
SALESFORCE_USER_ID = sf_id("User", SALESFORCE_USER_NUMBER)
DEFAULT_SALESFORCE_USERNAME = "integration@sandbox.example"

# Every scope an endpoint of the sandbox asks for (sandbox.hubspot_access lists which):
# what a private app set up for the product is granted, so the default token can do all.
HUBSPOT_PRODUCT_SCOPES: frozenset[str] = frozenset(
    {
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.objects.owners.read",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "sales-email-read",
        "content",
        "forms",
        "crm.objects.marketing_events.read",
        "behavioral_events.event_definitions.read_write",
    }
)


@dataclass
class Credentials:
    hubspot_token: str = DEFAULT_HUBSPOT_TOKEN
    salesforce_session_id: str = DEFAULT_SALESFORCE_SESSION
    salesforce_client_id: str = DEFAULT_CLIENT_ID
    salesforce_client_secret: str = DEFAULT_CLIENT_SECRET
    salesforce_username: str = DEFAULT_SALESFORCE_USERNAME
    # PEM of the public half of the key pair whose private half signs JWT assertions (set
    # by the server, which writes the private key next to its CA).
    jwt_public_key: str | None = None
    sessions: set[str] = field(default_factory=set)
    hubspot_client_id: str = DEFAULT_HUBSPOT_CLIENT_ID
    hubspot_client_secret: str = DEFAULT_HUBSPOT_CLIENT_SECRET
    hubspot_refresh_token: str = DEFAULT_HUBSPOT_REFRESH_TOKEN
    hubspot_oauth_tokens: set[str] = field(default_factory=set)
    # The scopes the private app was granted; OAuth tokens minted here carry the same.
    hubspot_scopes: frozenset[str] = HUBSPOT_PRODUCT_SCOPES
    # Per-token overrides (a token listed here has exactly these scopes).
    hubspot_token_scopes: dict[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sessions.add(self.salesforce_session_id)

    def hubspot_token_valid(self, token: str | None) -> bool:
        return token == self.hubspot_token or token in self.hubspot_oauth_tokens

    def hubspot_scopes_of(self, token: str | None) -> frozenset[str]:
        """The scopes a valid HubSpot token was granted."""
        if token is not None and token in self.hubspot_token_scopes:
            return self.hubspot_token_scopes[token]
        return self.hubspot_scopes

    def set_hubspot_scopes(self, scopes: Iterable[str], token: str | None = None) -> None:
        """Grant exactly `scopes`: to the app (every token) or to one token."""
        granted = frozenset(scopes)
        if token is None:
            self.hubspot_scopes = granted
            self.hubspot_token_scopes.clear()
        else:
            self.hubspot_token_scopes[token] = granted

    def new_hubspot_access_token(self) -> str:
        """An OAuth access token, as HubSpot's token endpoint mints one from a refresh token."""
        token = "CJT-sandbox-" + secrets.token_urlsafe(24)
        self.hubspot_oauth_tokens.add(token)
        return token

    def expire_hubspot_token(self, token: str | None) -> None:
        """OAuth access tokens expire (30 minutes on HubSpot); a private-app token does not."""
        if token is not None:
            self.hubspot_oauth_tokens.discard(token)

    def new_salesforce_session(self) -> str:
        """Mint a session id, as the token endpoint does, and accept it from now on."""
        session = SALESFORCE_ORG_ID + "!" + secrets.token_urlsafe(24)
        self.sessions.add(session)
        return session

    def expire_salesforce_sessions(self, session: str | None = None) -> None:
        """Expire one session (or all): later calls with it answer INVALID_SESSION_ID."""
        if session is None:
            self.sessions.clear()
        else:
            self.sessions.discard(session)
