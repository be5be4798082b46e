"""What a HubSpot portal offers the sync, and the properties the sync writes into it.

Reads (the token's scopes, the account, today's API use, which activity sources the
portal's tier serves, the property schema) and creates (the `mqlsync` property group and
the written-back properties). Every request goes through the connector's `_call`, so it
is throttled, retried and redacted like the sync's own. Nothing here prints: results are
data, and `flows/doctor.py` decides what they mean.

Paths hubspot-api-client does not wrap (account info, API usage, private-app token
info, email events) are sent through the generated `ApiClient.call_api` of the
properties API, not `HubSpot().api_request`: `api_request` goes through `requests` with
neither the configured CA file nor a timeout, so it could not reach a portal behind a
private CA (the sandbox, a corporate proxy) and could hang.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.properties import GroupsApi  # type: ignore[import-untyped]

from connectors.errors import ConnectorError
from connectors.hubspot import HubSpotConnector
from connectors.mapping import Mapping as CrmMapping

GROUP_NAME = "mqlsync"
GROUP_LABEL = "mqlsync lead scoring"
GRADES = ("A", "B", "C", "D")
CONTACTS = "contacts"
TASKS = "tasks"


# --- what the product needs ------------------------------------------------------------


@dataclass(frozen=True)
class ScopeNeed:
    """A private-app scope, whether a sync needs it, and what its absence costs."""

    scope: str
    required: bool
    cost: str


SCOPES: tuple[ScopeNeed, ...] = (
    ScopeNeed(
        "crm.objects.contacts.read",
        True,
        "no contacts, tasks or meetings can be read: nothing to score",
    ),
    ScopeNeed(
        "crm.objects.contacts.write",
        True,
        "no score, stage or lead status written back and no handoff task created",
    ),
    ScopeNeed(
        "crm.schemas.contacts.read",
        True,
        "the property list cannot be read: the sync stops at its mapping check",
    ),
    ScopeNeed(
        "crm.schemas.contacts.write",
        False,
        "`mqlsync crm-setup hubspot` cannot create the mqlsync_* properties "
        "(create them in HubSpot's property settings instead)",
    ),
    ScopeNeed(
        "content",
        False,
        "no marketing email events: engagement from email opens/clicks is missing",
    ),
    ScopeNeed(
        "forms",
        False,
        "no forms API: form names and form-only submissions are missing",
    ),
    ScopeNeed(
        "crm.objects.marketing_events.read",
        False,
        "no marketing events: webinar attendance is missing",
    ),
    ScopeNeed(
        "behavioral_events.event_definitions.read_write",
        False,
        "custom behavioural event definitions cannot be listed (Enterprise)",
    ),
)


@dataclass(frozen=True)
class PropertySpec:
    """One property the sync writes: its object, name and HubSpot type."""

    object_type: str
    name: str
    label: str
    type: str
    field_type: str
    description: str
    cost: str
    options: tuple[str, ...] = ()

    def body(self, group: str) -> dict[str, Any]:
        """The `POST /crm/v3/properties/{objectType}` request body."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": group,
            "description": self.description,
            "formField": False,
            # HubSpot offers unique-value properties on contacts, companies, deals,
            # tickets and custom objects, not on tasks: the handoff key's uniqueness is
            # the store's claim plus a search by key before any create.
            "hasUniqueValue": False,
        }
        if self.options:
            body["options"] = [
                {"label": value, "value": value, "displayOrder": order, "hidden": False}
                for order, value in enumerate(self.options)
            ]
        return body


# Canonical write-back field → (label, type, fieldType, description, cost when missing).
_WRITE_BACK: dict[str, tuple[str, str, str, str, str]] = {
    "score": (
        "MQL score",
        "number",
        "number",
        "Fit plus engagement points, written by mqlsync.",
        "the score is not written: sales cannot sort or filter contacts by it",
    ),
    "fit": (
        "MQL fit score",
        "number",
        "number",
        "Points for who the contact is, written by mqlsync.",
        "the fit part of the score is not written",
    ),
    "engagement": (
        "MQL engagement score",
        "number",
        "number",
        "Points for what the contact did, faded with time, written by mqlsync.",
        "the engagement part of the score is not written",
    ),
    "grade": (
        "MQL grade",
        "enumeration",
        "select",
        "Fit grade A-D, written by mqlsync.",
        "the grade is not written: no views or lists by grade",
    ),
    "reasons": (
        "MQL score reasons",
        "string",
        "textarea",
        "The rules behind the score, written by mqlsync.",
        "reps do not see why a contact scored as it did",
    ),
    "model_version": (
        "MQL model version",
        "string",
        "text",
        "The scoring model and version that wrote the score.",
        "scores cannot be traced to the model that made them",
    ),
}


def wanted_properties(mapping: CrmMapping) -> list[PropertySpec]:
    """The contact properties of the mapping's write-back and the task's handoff key."""
    specs = [
        PropertySpec(
            CONTACTS,
            crm_name,
            *_WRITE_BACK[key],
            options=GRADES if key == "grade" else (),
        )
        for key, crm_name in mapping.write_back.items()
    ]
    specs.append(
        PropertySpec(
            mapping.tasks.object,
            mapping.tasks.fields["key"],
            "MQL handoff key",
            "string",
            "text",
            "Idempotency key of the mqlsync handoff task (crm:contact:mql:n).",
            "no handoff task can be created, nor found again after a lost answer",
        )
    )
    return specs


# --- what the portal offers ------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    """What the token introspection says (None scopes: the portal would not say)."""

    scopes: frozenset[str] | None
    hub_id: int | None = None
    kind: str = "private app"
    detail: str = ""


@dataclass(frozen=True)
class AccountInfo:
    portal_id: int | None
    account_type: str | None
    time_zone: str | None
    ui_domain: str | None


@dataclass(frozen=True)
class Quota:
    """Today's API use: from the usage endpoint, else from the rate-limit headers."""

    used: int | None
    limit: int | None
    resets_at: str | None
    per_interval: int | None
    interval_ms: int | None
    source: str  # "api-usage", "headers" or "" (nothing known)

    @property
    def remaining(self) -> int | None:
        if self.used is None or self.limit is None:
            return None
        return max(0, self.limit - self.used)


class Access(StrEnum):
    OK = "ok"
    TIER = "tier"  # 403 not for a scope: the portal's subscription does not include it
    SCOPE = "scope"  # 403 MISSING_SCOPES
    ABSENT = "absent"  # 404: the portal (or this HubSpot) does not serve the path
    ERROR = "error"


@dataclass(frozen=True)
class SourceProbe:
    """One activity source asked for a single record."""

    name: str
    access: Access
    status: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class PropertyInfo:
    name: str
    type: str | None
    options: frozenset[str]
    group: str | None


class SetupStatus(StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    WOULD_CREATE = "would create"
    FAILED = "failed"


@dataclass(frozen=True)
class SetupAction:
    kind: str  # "group" or "property"
    object_type: str
    name: str
    status: SetupStatus
    detail: str = ""


@dataclass
class _Captured:
    headers: dict[str, str] = field(default_factory=dict)


# How to ask one activity source for a single record.
SourceCall = Callable[["HubSpotPortal"], dict[str, Any]]


class HubSpotPortal:
    """Reads and creates against one portal, over a connector's client and `_call`."""

    def __init__(self, connector: HubSpotConnector) -> None:
        self._connector = connector
        # The connector's properties API: its configuration holds the current token
        # (renewed in place on an OAuth refresh), host and CA file.
        self._core = connector._properties
        self._base = self._core.api_client
        self._groups = GroupsApi(api_client=self._base)
        config = self._base.configuration
        client = HubSpot(
            access_token=config.access_token,
            host=config.host,
            ssl_ca_cert=config.ssl_ca_cert,
            retry=False,
        )
        self._forms = client.marketing.forms.forms_api
        self._searches = {
            name: getattr(client.crm.objects, name).search_api
            for name in ("calls", "emails", "communications")
        }
        self._searches["meetings"] = connector._meetings_search
        self._access_tokens = client.oauth.access_tokens_api
        self._last = _Captured()

    # --- sending ----------------------------------------------------------------------

    def _send(
        self,
        api: Any,
        method: str,
        *args: Any,
        what: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        def attempt(*a: Any, **kw: Any) -> Any:
            # A refresh renews the connector's token: every attempt takes the current one.
            api.api_client.configuration.access_token = self._base.configuration.access_token
            response = getattr(api, method)(*a, **kw)
            self._keep_rate_headers(response)
            return response

        return self._connector._call(attempt, *args, what=what, **kwargs)

    def _path(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Mapping[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A request to a path the client does not wrap, through its generated ApiClient."""

        def attempt(**kw: Any) -> Any:
            response = self._base.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["oauth2"],
                **kw,
            )
            self._keep_rate_headers(response)
            return response

        return self._connector._call(attempt, what=what)

    def _keep_rate_headers(self, response: Any) -> None:
        # Search answers carry no rate-limit headers: keep the last answer that did.
        headers = {k.lower(): v for k, v in dict(response.headers).items()}
        if any(k.startswith("x-hubspot-ratelimit") for k in headers):
            self._last.headers = headers

    # --- reads ------------------------------------------------------------------------

    def properties(self, object_type: str) -> dict[str, PropertyInfo]:
        """Every property of an object type, by name."""
        response = self._send(self._core, "get_all", object_type, what=f"{object_type} properties")
        return {
            str(p["name"]): PropertyInfo(
                name=str(p["name"]),
                type=p.get("type"),
                options=frozenset(
                    str(o.get("value")) for o in p.get("options") or [] if o.get("value")
                ),
                group=p.get("groupName"),
            )
            for p in response.get("results") or []
        }

    def groups(self, object_type: str) -> set[str]:
        """Names of an object type's property groups."""
        response = self._send(
            self._groups, "get_all", object_type, what=f"{object_type} property groups"
        )
        return {str(g["name"]) for g in response.get("results") or []}

    def rate_headers(self) -> dict[str, str]:
        """The `X-HubSpot-RateLimit-*` headers of the last answer (lower-cased names)."""
        return {k: v for k, v in self._last.headers.items() if k.startswith("x-hubspot-ratelimit")}

    def token_info(self) -> TokenInfo:
        """The token's scopes: private-app token info, or OAuth token metadata."""
        token = self._base.configuration.access_token
        oauth = self._connector._token_provider is not None
        try:
            if oauth:
                data = self._send(self._access_tokens, "get", token, what="oauth token info")
            else:
                data = self._path(
                    "POST",
                    "/oauth/v2/private-apps/get/access-token-info",
                    body={"tokenKey": token},
                    what="private app token info",
                )
        except ConnectorError as exc:
            return TokenInfo(None, kind="oauth" if oauth else "private app", detail=exc.message)
        scopes = data.get("scopes")
        hub = data.get("hubId", data.get("hub_id"))
        return TokenInfo(
            frozenset(str(s) for s in scopes) if isinstance(scopes, list) else None,
            int(hub) if isinstance(hub, int) else None,
            kind="oauth" if oauth else "private app",
        )

    def account(self) -> AccountInfo | None:
        """`GET /account-info/v3/details`; None when the portal does not answer it."""
        try:
            data = self._path("GET", "/account-info/v3/details", what="account details")
        except ConnectorError as exc:
            if exc.status in (403, 404):
                return None
            raise
        portal = data.get("portalId")
        return AccountInfo(
            portal_id=int(portal) if isinstance(portal, int) else None,
            account_type=data.get("accountType"),
            time_zone=data.get("timeZone"),
            ui_domain=data.get("uiDomain"),
        )

    def quota(self) -> Quota:
        """Today's use: the private-app usage endpoint, else the last rate-limit headers."""
        headers = self.rate_headers()
        per_interval = _int(headers.get("x-hubspot-ratelimit-max"))
        interval = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        try:
            data = self._path(
                "GET", "/account-info/v3/api-usage/daily/private-apps", what="daily API usage"
            )
        except ConnectorError as exc:
            if exc.status not in (403, 404):
                raise
            data = {}
        for row in data.get("results") or []:
            used, limit = _int(row.get("currentUsage")), _int(row.get("usageLimit"))
            if limit is not None:
                return Quota(used, limit, row.get("resetsAt"), per_interval, interval, "api-usage")
        daily = _int(headers.get("x-hubspot-ratelimit-daily"))
        left = _int(headers.get("x-hubspot-ratelimit-daily-remaining"))
        if daily is not None and left is not None:
            return Quota(daily - left, daily, None, per_interval, interval, "headers")
        return Quota(None, None, None, per_interval, interval, "")

    def probe_sources(self) -> list[SourceProbe]:
        """Each activity source asked for one record: a 403 is a tier or scope refusal."""
        return [self._probe(name, call) for name, call in _SOURCES]

    def _probe(self, name: str, call: SourceCall) -> SourceProbe:
        try:
            call(self)
        except ConnectorError as exc:
            if exc.status == 403:
                scope = exc.code == "MISSING_SCOPES" or "scope" in exc.message.lower()
                access = Access.SCOPE if scope else Access.TIER
                return SourceProbe(name, access, 403, exc.message)
            if exc.status == 404:
                return SourceProbe(name, Access.ABSENT, 404, exc.message)
            return SourceProbe(name, Access.ERROR, exc.status, exc.message)
        return SourceProbe(name, Access.OK, 200)

    # --- creates ----------------------------------------------------------------------

    def setup(self, mapping: CrmMapping, *, dry_run: bool) -> list[SetupAction]:
        """Create the `mqlsync` group and each missing written-back property.

        Idempotent: what exists is left alone, and a 409 (made meanwhile by someone
        else) counts as there. With `dry_run`, only reads are sent.
        """
        wanted = wanted_properties(mapping)
        actions: list[SetupAction] = []
        for object_type in dict.fromkeys(spec.object_type for spec in wanted):
            have = self.properties(object_type)
            specs = [s for s in wanted if s.object_type == object_type]
            group: SetupAction | None = None
            if any(s.name not in have for s in specs):
                group = self._ensure_group(object_type, dry_run=dry_run)
                actions.append(group)
            for spec in specs:
                if spec.name in have:
                    status, detail = SetupStatus.EXISTS, ""
                elif dry_run:
                    status, detail = SetupStatus.WOULD_CREATE, f"{spec.type}/{spec.field_type}"
                elif group is not None and group.status is SetupStatus.FAILED:
                    status, detail = SetupStatus.FAILED, f"no group {GROUP_NAME!r} to put it in"
                else:
                    actions.append(self._create_property(spec))
                    continue
                actions.append(SetupAction("property", object_type, spec.name, status, detail))
        return actions

    def _ensure_group(self, object_type: str, *, dry_run: bool) -> SetupAction:
        if GROUP_NAME in self.groups(object_type):
            return SetupAction("group", object_type, GROUP_NAME, SetupStatus.EXISTS)
        if dry_run:
            return SetupAction("group", object_type, GROUP_NAME, SetupStatus.WOULD_CREATE)
        body = {"name": GROUP_NAME, "label": GROUP_LABEL, "displayOrder": -1}
        return self._create(
            "group",
            object_type,
            GROUP_NAME,
            lambda: self._send(
                self._groups, "create", object_type, body, what=f"{object_type} group create"
            ),
        )

    def _create_property(self, spec: PropertySpec) -> SetupAction:
        return self._create(
            "property",
            spec.object_type,
            spec.name,
            lambda: self._send(
                self._core,
                "create",
                spec.object_type,
                spec.body(GROUP_NAME),
                what=f"{spec.object_type} property create",
            ),
            detail=f"{spec.type}/{spec.field_type}",
        )

    @staticmethod
    def _create(
        kind: str, object_type: str, name: str, send: Callable[[], Any], detail: str = ""
    ) -> SetupAction:
        # A create by name is safe to send again (a repeat answers 409), so the
        # connector's retries may re-send it after a lost answer.
        try:
            send()
        except ConnectorError as exc:
            if exc.status == 409:
                return SetupAction(
                    kind, object_type, name, SetupStatus.EXISTS, "409: already there"
                )
            return SetupAction(kind, object_type, name, SetupStatus.FAILED, exc.message)
        return SetupAction(kind, object_type, name, SetupStatus.CREATED, detail)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _events(portal: HubSpotPortal) -> dict[str, Any]:
    events = portal._connector._events
    return portal._send(events, "get_page", object_type="contact", limit=1, what="events probe")


def _email_events(portal: HubSpotPortal) -> dict[str, Any]:
    return portal._path(
        "GET", "/email/public/v1/events", query={"limit": 1}, what="email events probe"
    )


def _forms(portal: HubSpotPortal) -> dict[str, Any]:
    return portal._send(portal._forms, "get_page", limit=1, what="forms probe")


def _marketing_events(portal: HubSpotPortal) -> dict[str, Any]:
    # The path the sync lists them at (HubSpot's marketingEvents.json); the client's
    # `basic_api.get_all` asks /marketing/v3/marketing-events/ instead.
    return portal._path(
        "GET", "/marketing/marketing-events/v3", query={"limit": 1}, what="marketing events probe"
    )


def _engagements(name: str) -> SourceCall:
    def call(portal: HubSpotPortal) -> dict[str, Any]:
        body = {"filterGroups": [], "properties": ["hs_timestamp"], "limit": 1}
        return portal._send(
            portal._searches[name], "do_search", body, search=True, what=f"{name} probe"
        )

    return call


_SOURCES: tuple[tuple[str, SourceCall], ...] = (
    ("events", _events),
    ("email_events", _email_events),
    ("forms", _forms),
    ("marketing_events", _marketing_events),
    *((name, _engagements(name)) for name in ("meetings", "calls", "emails", "communications")),
)

SOURCE_NAMES: tuple[str, ...] = tuple(name for name, _ in _SOURCES)


def missing_scopes(info: TokenInfo, needs: Iterable[ScopeNeed] = SCOPES) -> list[ScopeNeed]:
    """The needs the token lacks (none known when the portal did not list the scopes)."""
    if info.scopes is None:
        return []
    return [need for need in needs if need.scope not in info.scopes]
