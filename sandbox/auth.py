"""Credentials the sandbox accepts: a HubSpot private-app token, Salesforce sessions and
the OAuth client-credentials pair that mints new sessions.

The defaults are fixed so that a demo, a test and a benchmark can all talk to any
sandbox without configuration. They are not secrets: the sandbox only listens on
loopback and holds synthetic data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

DEFAULT_HUBSPOT_TOKEN = "pat-sandbox-00000000-0000-0000-0000-000000000000"
DEFAULT_SALESFORCE_SESSION = "00D5g000000SANDBOX!sandbox-session"
DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


@dataclass
class Credentials:
    hubspot_token: str = DEFAULT_HUBSPOT_TOKEN
    salesforce_session_id: str = DEFAULT_SALESFORCE_SESSION
    salesforce_client_id: str = DEFAULT_CLIENT_ID
    salesforce_client_secret: str = DEFAULT_CLIENT_SECRET
    sessions: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.sessions.add(self.salesforce_session_id)

    def new_salesforce_session(self) -> str:
        """Mint a session id, as the token endpoint does, and accept it from now on."""
        session = "00D5g000000SANDBOX!" + secrets.token_urlsafe(24)
        self.sessions.add(session)
        return session

    def expire_salesforce_sessions(self, session: str | None = None) -> None:
        """Expire one session (or all): later calls with it answer INVALID_SESSION_ID."""
        if session is None:
            self.sessions.clear()
        else:
            self.sessions.discard(session)
