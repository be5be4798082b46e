"""What a HubSpot token may call: the scope each endpoint needs, the APIs a tier lacks,
the account-info and token-introspection endpoints a `doctor` reads, and the admin
routes that set a token's scopes.

The check sits inside the gate (which counts, authenticates, limits and faults) as a
raw ASGI layer. Paths the gate does not yet treat as HubSpot's (the marketing, forms,
email-events and account-info APIs) are authenticated here, so no HubSpot path is open.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.asgi import ASGIApp, Receive, Scope, Send, hubspot_body, respond
from sandbox.auth import HUBSPOT_PRODUCT_SCOPES
from sandbox.hubspot_store import OWNER_ID_BASE

if TYPE_CHECKING:
    from sandbox.state import Sandbox

PROFILES = ("configured", "stock")
CONTACTS_READ = "crm.objects.contacts.read"
CONTACTS_WRITE = "crm.objects.contacts.write"
SCHEMAS_READ = "crm.schemas.contacts.read"
SCHEMAS_WRITE = "crm.schemas.contacts.write"
EVENT_DEFINITIONS = "behavioral_events.event_definitions.read_write"
MARKETING_EVENTS_READ = "crm.objects.marketing_events.read"
# The private app's id and the installing user, as token introspection reports them.
APP_ID = 3_000_001
USER_ID = 9_000_000  # the first owner's userId (see HubSpotPortal.owners_json)

# Paths HubSpot serves (besides the ones the gate already knows: /crm/, /events/, /oauth/).
HUBSPOT_PREFIXES = (
    "/crm/",
    "/events/",
    "/email/public/",
    "/form-integrations/",
    "/marketing/",
    "/account-info/",
    "/oauth/v2/private-apps/",
)
# Documented as needing an Enterprise hub (Marketing, Sales, Service, Content or Data).
ENTERPRISE_PREFIXES = ("/events/v3/events", "/events/v3/event-definitions")


@dataclass(frozen=True)
class ScopeRule:
    """`method` requests to paths matching `pattern` need one of `scopes`."""

    method: str
    pattern: str
    scopes: tuple[str, ...]
    source: str

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.match(self.pattern, path) is not None


_OBJ = "https://developers.hubspot.com/docs/api-reference/"
SCOPE_RULES: tuple[ScopeRule, ...] = (
    ScopeRule("GET", r"^/crm/v3/objects/contacts(/[^/]+)?/?$", (CONTACTS_READ,), "contacts.json"),
    ScopeRule(
        "POST", r"^/crm/v3/objects/contacts/(search|batch/read)$", (CONTACTS_READ,), "contacts.json"
    ),
    ScopeRule("PATCH", r"^/crm/v3/objects/contacts/[^/]+$", (CONTACTS_WRITE,), "contacts.json"),
    ScopeRule(
        "POST", r"^/crm/v3/objects/contacts/batch/update$", (CONTACTS_WRITE,), "contacts.json"
    ),
    ScopeRule("POST", r"^/crm/v3/objects/tasks(/batch/create)?$", (CONTACTS_WRITE,), "tasks.json"),
    ScopeRule("GET", r"^/crm/v3/objects/tasks/[^/]+$", (CONTACTS_READ,), "tasks.json"),
    ScopeRule(
        "POST",
        r"^/crm/v3/objects/(tasks|meetings|calls|communications)/search$",
        (CONTACTS_READ,),
        "tasks.json, meetings.json, calls.json, communications.json",
    ),
    ScopeRule(
        "POST",
        r"^/crm/v3/objects/emails/search$",
        (CONTACTS_READ, "sales-email-read"),
        "emails.json",
    ),
    ScopeRule(
        "POST",
        r"^/crm/v4/associations/[^/]+/[^/]+/batch/read$",
        (CONTACTS_READ,),
        "the read scope of the engagement objects (calls.json, meetings.json ...)",
    ),
    ScopeRule("GET", r"^/crm/v3/properties/", (SCHEMAS_READ,), _OBJ + "crm-properties-v3"),
    ScopeRule("POST", r"^/crm/v3/properties/", (SCHEMAS_WRITE,), _OBJ + "crm-properties-v3"),
    ScopeRule(
        "GET",
        r"^/crm/v3/owners(/.*)?$",
        ("crm.objects.owners.read", "automation"),
        "crmOwners.json",
    ),
    ScopeRule(
        "GET", r"^/events/v3/event-definitions", (EVENT_DEFINITIONS,), "manageEventDefinitions.json"
    ),
    ScopeRule(
        "GET",
        r"^/email/public/v1/events",
        ("content",),
        _OBJ + "legacy/reporting/email-analytics/events/get-email-public-v1-events",
    ),
    ScopeRule("GET", r"^/marketing/v3/forms", ("forms",), "forms.json"),
    ScopeRule(
        "GET",
        r"^/form-integrations/v1/submissions/forms/",
        ("forms", "forms-uploaded-files"),
        _OBJ + "legacy/marketing/forms/v1/get-form-integrations-v1-submissions-forms-form_guid",
    ),
    ScopeRule(
        "GET",
        r"^/marketing/(marketing-events/v3|v3/marketing-events)",
        (MARKETING_EVENTS_READ,),
        "marketingEvents.json",
    ),
)


def required_scopes(method: str, path: str) -> tuple[str, ...]:
    """The scopes of which a token needs one for this request (empty: none)."""
    for rule in SCOPE_RULES:
        if rule.matches(method, path):
            return rule.scopes
    return ()


def portal_id_for(seed: int) -> int:
    """A stable, seed-derived HubSpot account id (the `{portalId}` of `pe{portalId}_…`)."""
    return 20_000_000 + (seed * 7_919) % 9_000_000


def missing_scopes_body(scopes: tuple[str, ...]) -> dict[str, Any]:
    """HubSpot's 403 for a token without the scope: category MISSING_SCOPES, and the
    scopes of which one is needed in `errors[].context.requiredGranularScopes`."""
    return hubspot_body(
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more "
        "about required scopes here: https://developers.hubspot.com/scopes.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": list(scopes)},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def tier_body() -> dict[str, Any]:
    """The 403 for an API the portal's subscription does not include."""
    return hubspot_body(
        "FORBIDDEN",
        "This API requires one of the following products or higher: Marketing Hub "
        "Enterprise, Sales Hub Enterprise, Service Hub Enterprise, Content Hub Enterprise, "
        "Data Hub Enterprise. This account does not have access to it.",
    )


class HubSpotAccess:
    """ASGI layer: authentication of the paths the gate leaves open, tier, scopes."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        from sandbox.gate import bearer, crm_of  # the gate imports the state, which imports us

        self.app = app
        self.sandbox = sandbox
        self._gate_knows = crm_of
        self._bearer = bearer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(HUBSPOT_PREFIXES):
            await self.app(scope, receive, send)
            return
        sb = self.sandbox
        token = self._bearer(scope)
        if self._gate_knows(path) is None and not sb.credentials.hubspot_token_valid(token):
            await respond(
                send,
                401,
                hubspot_body(
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            )
            return
        if (
            sb.profile == "stock"
            and sb.limiter.limits.hubspot_tier != "enterprise"
            and path.startswith(ENTERPRISE_PREFIXES)
        ):
            await respond(send, 403, tier_body())
            return
        needed = required_scopes(scope["method"], path)
        if needed and not set(needed) & sb.credentials.hubspot_scopes_of(token):
            await respond(send, 403, missing_scopes_body(needed))
            return
        await self.app(scope, receive, send)


class AccountApi:
    """`GET /account-info/v3/details`, the private-app token introspection, and the admin
    routes for scopes."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/account-info/v3/details", self.details, methods=["GET"]),
            Route(
                "/oauth/v2/private-apps/get/access-token-info", self.token_info, methods=["POST"]
            ),
            Route("/_sandbox/hubspot/scopes", self.get_scopes, methods=["GET"]),
            Route("/_sandbox/hubspot/scopes", self.set_scopes, methods=["PUT"]),
            Route("/_sandbox/hubspot/account", self.account, methods=["GET"]),
        ]

    async def details(self, request: Request) -> Response:
        return JSONResponse(
            {
                "portalId": self.sandbox.portal_id,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    async def token_info(self, request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        token = body.get("tokenKey") if isinstance(body, dict) else None
        creds = self.sandbox.credentials
        if not isinstance(token, str) or not creds.hubspot_token_valid(token):
            return JSONResponse(
                hubspot_body("VALIDATION_ERROR", "tokenKey is not a valid access token"),
                status_code=400,
            )
        return JSONResponse(
            {
                "userId": USER_ID,
                "hubId": self.sandbox.portal_id,
                "appId": APP_ID,
                "scopes": sorted(creds.hubspot_scopes_of(token)),
            }
        )

    async def get_scopes(self, request: Request) -> Response:
        creds = self.sandbox.credentials
        return JSONResponse(
            {
                "granted": sorted(creds.hubspot_scopes),
                "tokens": {t: sorted(s) for t, s in creds.hubspot_token_scopes.items()},
                "product": sorted(HUBSPOT_PRODUCT_SCOPES),
                "rules": [
                    {"method": r.method, "path": r.pattern, "scopes": list(r.scopes)}
                    for r in SCOPE_RULES
                ],
            }
        )

    async def set_scopes(self, request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        scopes = body.get("scopes") if isinstance(body, dict) else None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            return JSONResponse({"error": "body must be {scopes: [str], token?}"}, 400)
        if token is not None and not isinstance(token, str):
            return JSONResponse({"error": "token must be a string"}, 400)
        self.sandbox.credentials.set_hubspot_scopes(scopes, token)
        return await self.get_scopes(request)

    async def account(self, request: Request) -> Response:
        sb = self.sandbox
        return JSONResponse(
            {
                "profile": sb.profile,
                "portalId": sb.portal_id,
                "tier": sb.limiter.limits.hubspot_tier,
                "ownerUserId": USER_ID,
                "ownerId": OWNER_ID_BASE,
            }
        )
