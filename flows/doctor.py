"""`mqlsync doctor` and `mqlsync crm-setup`: is a CRM ready for a sync, and make it so.

The doctor turns what `connectors.hubspot_setup` and `connectors.salesforce_setup` read
into rows (ok / missing / unavailable, what it costs, how to fix it) and a verdict: ready
when every row a sync needs is ok. Sources the tier or the scopes refuse cost engagement
signals but do not stop a sync (the pull switches them off), so they never decide the
verdict; nor do a Salesforce org's missing optional fields or lead status values the
connector works around (it leaves the field out, writes the stage to its fallback field).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from connectors.errors import AuthExpired, ConnectorError, DailyLimitExceeded, MappingError
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_setup import (
    CONTACTS,
    SCOPES,
    Access,
    HubSpotPortal,
    PropertyInfo,
    Quota,
    SetupAction,
    SetupStatus,
    SourceProbe,
    wanted_properties,
)
from connectors.mapping import Mapping
from connectors.protocol import CrmConnector
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_setup import (
    DEFAULT_PACKAGE_DIR,
    DailyUse,
    FieldInfo,
    Identity,
    LeadStatusValue,
    SalesforceOrg,
    SetupResult,
    StatusProposal,
    deploy_steps,
    newest_version,
    propose_statuses,
    wanted_fields,
)
from flows.tables import render_table
from scoring.records import Crm

SETUP_FIX = "run `mqlsync crm-setup hubspot`"
SCHEMA_READ = "crm.schemas.contacts.read"
EXIT_READY = 0
EXIT_NOT_READY = 1
EXIT_UNSUPPORTED = 2


class Status(StrEnum):
    OK = "ok"
    MISSING = "missing"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Row:
    """One line of the doctor's table; `required` rows decide the verdict."""

    check: str
    status: Status
    detail: str
    fix: str = ""
    required: bool = False


@dataclass(frozen=True)
class Report:
    crm: Crm
    rows: list[Row]
    notes: tuple[str, ...] = ()  # printed after the verdict (a proposed mapping)

    @property
    def ready(self) -> bool:
        """Whether a sync would run: every required row is ok."""
        return all(row.status is Status.OK for row in self.rows if row.required)

    @property
    def exit_code(self) -> int:
        return EXIT_READY if self.ready else EXIT_NOT_READY


# Activity sources: what each is, which tier serves it, and its scope when it has one.
@dataclass(frozen=True)
class SourceInfo:
    label: str
    tiers: str
    scope: str | None = None


SOURCES: dict[str, SourceInfo] = {
    "events": SourceInfo(
        "Events API (page views, custom behavioural events)",
        "Enterprise",
    ),
    "email_events": SourceInfo("marketing email events", "Starter and up", "content"),
    "forms": SourceInfo("forms", "all tiers", "forms"),
    "marketing_events": SourceInfo(
        "marketing events (webinars)", "Starter and up", "crm.objects.marketing_events.read"
    ),
    "meetings": SourceInfo("meetings", "all tiers", "crm.objects.contacts.read"),
    "calls": SourceInfo("calls", "all tiers", "crm.objects.contacts.read"),
    "emails": SourceInfo("logged one-to-one emails", "all tiers", "crm.objects.contacts.read"),
    "communications": SourceInfo(
        "communications (SMS, WhatsApp, LinkedIn)", "all tiers", "crm.objects.contacts.read"
    ),
}
MEETINGS_SOURCE = "meetings"


# A mapping source's kind → the doctor's source it reads.
KIND_SOURCES = {
    "events_api": "events",
    "email_events": "email_events",
    "form_submissions": "forms",
    "marketing_events": "marketing_events",
}


def source_of(mapping: Mapping, name: str) -> str:
    """Which doctor source a mapping's activity source reads."""
    decl = mapping.activity_sources[name]
    if decl.kind == "crm_object" and decl.object:
        return decl.object
    if decl.kind is not None:
        return KIND_SOURCES[decl.kind]
    # A source without a kind: meetings is the object, anything else an Events API type.
    return MEETINGS_SOURCE if name == MEETINGS_SOURCE else "events"


def mapped_types(mapping: Mapping) -> dict[str, list[str]]:
    """Activity types the mapping reads from each doctor source."""
    types: dict[str, list[str]] = {}
    for rule in mapping.activities:
        names = types.setdefault(source_of(mapping, rule.source), [])
        if rule.type.value not in names:
            names.append(rule.type.value)
    return types


# --- HubSpot -----------------------------------------------------------------------------


def hubspot_report(connector: HubSpotConnector, mapping: Mapping, mapping_file: str) -> Report:
    """Every check against one portal, as rows."""
    portal = HubSpotPortal(connector)
    rows: list[Row] = []
    try:
        contacts = _readable(portal, CONTACTS, rows)
    except AuthExpired as exc:
        rows.append(
            Row(
                "token",
                Status.MISSING,
                f"refused: {exc.message}",
                "set MQLSYNC_HUBSPOT_TOKEN to a valid private-app token",
                required=True,
            )
        )
        return Report(Crm.HUBSPOT, rows)
    except ConnectorError as exc:
        rows.append(
            Row(
                "connection",
                Status.UNAVAILABLE,
                exc.message,
                "check MQLSYNC_HUBSPOT_HOST, MQLSYNC_CA_FILE and the network",
                required=True,
            )
        )
        return Report(Crm.HUBSPOT, rows)
    rows.insert(0, _account_row(portal))
    rows += _scope_rows(portal, contacts is not None)
    rows += _source_rows(portal.probe_sources(), mapping)
    rows.append(_quota_row(portal.quota()))
    tasks = _readable(portal, mapping.tasks.object, rows)
    if contacts is not None and tasks is not None:
        rows += _mapping_rows(mapping, mapping_file, contacts, tasks)
        rows += _unexplained(connector, rows)
    return Report(Crm.HUBSPOT, rows)


def _readable(
    portal: HubSpotPortal, object_type: str, rows: list[Row]
) -> dict[str, PropertyInfo] | None:
    """An object's properties; None (and a row saying why) when the token may not read them."""
    try:
        return portal.properties(object_type)
    except ConnectorError as exc:
        if exc.status != 403:
            raise
        rows.append(
            Row(
                f"properties {object_type}",
                Status.MISSING,
                f"cannot be read: {exc.message}",
                "add scope crm.schemas.contacts.read to the private app",
                required=True,
            )
        )
        return None


def _account_row(portal: HubSpotPortal) -> Row:
    try:
        account = portal.account()
    except ConnectorError as exc:
        return Row("token", Status.OK, f"works (account details unreadable: {exc.message})")
    if account is None:
        return Row("token", Status.OK, "works (account details not served)")
    parts = [
        f"portal {account.portal_id}" if account.portal_id is not None else "",
        (account.account_type or "").lower(),
        account.time_zone or "",
    ]
    return Row("token", Status.OK, "works: " + ", ".join(p for p in parts if p))


def _scope_rows(portal: HubSpotPortal, schema_readable: bool) -> list[Row]:
    info = portal.token_info()
    if info.scopes is None:
        return [
            Row(
                "scopes",
                Status.UNAVAILABLE,
                f"the {info.kind} token's scopes could not be read"
                + (f": {info.detail}" if info.detail else "")
                + "; the probes below show what the token may do",
            )
        ]
    rows: list[Row] = []
    for need in SCOPES:
        if need.scope in info.scopes:
            rows.append(Row(f"scope {need.scope}", Status.OK, "granted", required=need.required))
            continue
        cost, required = need.cost, need.required
        if need.scope == SCHEMA_READ and schema_readable:
            # HubSpot also lets the contacts read scope read properties (properties.json).
            cost, required = "not granted, but the property list was readable without it", False
        rows.append(
            Row(
                f"scope {need.scope}",
                Status.MISSING,
                cost,
                "add it to the private app's scopes",
                required=required,
            )
        )
    return rows


def _source_rows(probes: Sequence[SourceProbe], mapping: Mapping) -> list[Row]:
    types = mapped_types(mapping)
    rows: list[Row] = []
    for probe in probes:
        info = SOURCES[probe.name]
        used = types.get(probe.name, [])
        lost = (
            f"engagement from {', '.join(used)} is missing"
            if used
            else "not read by this mapping: nothing lost"
        )
        if probe.access is Access.OK:
            status = Status.OK
            detail = f"{info.label}: available" + (f" ({', '.join(used)})" if used else "")
            fix = ""
        elif probe.access is Access.SCOPE:
            status = Status.MISSING
            detail = f"{info.label}: the token lacks its scope; {lost}"
            fix = f"add scope {info.scope} to the private app" if info.scope else "add its scope"
        elif probe.access is Access.TIER:
            status = Status.UNAVAILABLE
            detail = f"{info.label}: not in this portal's subscription (needs {info.tiers}); {lost}"
            fix = f"upgrade to {info.tiers}" if used else ""
        else:
            status = Status.UNAVAILABLE
            where = f"HTTP {probe.status}" if probe.status else "no answer"
            detail = f"{info.label}: {where}: {probe.detail}; {lost}"
            fix = ""
        rows.append(Row(f"source {probe.name}", status, detail, fix))
    return rows


def _quota_row(quota: Quota) -> Row:
    if quota.limit is None:
        return Row("quota", Status.UNAVAILABLE, "neither API usage nor rate-limit headers served")
    used = quota.used or 0
    share = used / quota.limit if quota.limit else 1.0
    text = f"{used:,} of {quota.limit:,} requests used today ({share:.1%})"
    if quota.resets_at:
        text += f", resets {quota.resets_at}"
    if quota.per_interval and quota.interval_ms:
        text += f"; {quota.per_interval} per {quota.interval_ms / 1000:g} s"
    text += f" [{quota.source}]"
    if quota.remaining == 0:
        return Row(
            "quota",
            Status.UNAVAILABLE,
            "daily budget spent: " + text,
            "wait for the daily reset, or stop other apps using this portal's budget",
            required=True,
        )
    return Row("quota", Status.OK, text)


def _mapping_rows(
    mapping: Mapping,
    mapping_file: str,
    contacts: dict[str, PropertyInfo],
    tasks: dict[str, PropertyInfo],
) -> list[Row]:
    by_object = {CONTACTS: contacts, mapping.tasks.object: tasks}
    rows: list[Row] = []
    wanted = wanted_properties(mapping)
    ours = {(spec.object_type, spec.name) for spec in wanted}
    for object_type, have in by_object.items():
        present = [s.name for s in wanted if s.object_type == object_type and s.name in have]
        if present:
            rows.append(Row(f"properties {object_type}", Status.OK, ", ".join(present)))
    rows += [
        Row(
            f"property {spec.object_type}.{spec.name}",
            Status.MISSING,
            spec.cost,
            SETUP_FIX,
            required=True,
        )
        for spec in wanted
        if spec.name not in by_object[spec.object_type]
    ]
    source = mapping.contacts[0]
    canonical = {crm: name for name, crm in {**source.fields, **source.properties}.items()}
    canonical[mapping.stage.field] = "lifecycle stage"
    canonical[mapping.lead_status.field] = "lead status"
    mapped: list[tuple[str, str, str]] = [
        (CONTACTS, name, canonical.get(name, name))
        for name in dict.fromkeys(
            [*source.crm_fields(), mapping.stage.field, mapping.lead_status.field]
        )
    ]
    task_fields = {crm: name for name, crm in mapping.tasks.fields.items()}
    mapped += [
        (mapping.tasks.object, name, f"task {task_fields.get(name, 'constant')}")
        for name in dict.fromkeys([*mapping.tasks.fields.values(), *mapping.tasks.constants])
    ]
    rows += [
        Row(
            f"field {obj}.{name}",
            Status.MISSING,
            f"mapped as {what}, but the portal has no such property: the sync stops "
            "before its first write",
            f"create it in HubSpot, or remove it from {mapping_file}",
            required=True,
        )
        for obj, name, what in mapped
        if (obj, name) not in ours and name not in by_object[obj]
    ]
    for field, values, section in (
        (mapping.stage.field, mapping.stage.write, "stage.write"),
        (mapping.lead_status.field, mapping.lead_status.values, "lead_status.values"),
    ):
        prop = contacts.get(field)
        if prop is None or not prop.options:
            continue
        rows += [
            Row(
                f"option {field}={value}",
                Status.MISSING,
                f"{section}.{key} writes {value!r}, which {field} does not offer: the sync "
                "stops before its first write",
                f"add the option to {field} in HubSpot, or change {section} in {mapping_file}",
                required=True,
            )
            for key, value in values.items()
            if value not in prop.options
        ]
    return rows


def _unexplained(connector: CrmConnector, rows: Sequence[Row]) -> list[Row]:
    """What the connector's own pre-write check refuses that no row above names."""
    if any(row.required and row.status is not Status.OK for row in rows):
        return []
    try:
        problems = connector.check_mapping()
    except (ConnectorError, MappingError) as exc:
        return [Row("mapping check", Status.UNAVAILABLE, exc.message, required=True)]
    return [Row("mapping check", Status.MISSING, p, required=True) for p in problems]


# --- Salesforce --------------------------------------------------------------------------

SF_SETUP_FIX = (
    "run `mqlsync crm-setup salesforce` (creates it and grants the integration user access)"
)
SF_INVISIBLE = "missing, or not visible to the integration user"
SF_LEAD_STATUS_SETUP = "Setup > Object Manager > Lead > Fields & Relationships > Lead Status"


@dataclass
class _Need:
    """A field the mapping names on one object: what for, and what the sync does with it."""

    obj: str
    name: str
    roles: list[str]
    access: str = "read"  # "read", "edit" (updated by the sync) or "create" (on its tasks)


def _sf_needs(mapping: Mapping) -> dict[tuple[str, str], _Need]:
    """Every field a pull or a write names, by object, as the connector asks for them."""
    needs: dict[tuple[str, str], _Need] = {}

    def add(obj: str, name: str, role: str, access: str = "read") -> None:
        need = needs.setdefault((obj, name), _Need(obj, name, []))
        if role not in need.roles:
            need.roles.append(role)
        if access != "read":
            need.access = access

    stage, status = mapping.stage, mapping.lead_status
    for source in mapping.contacts:
        obj = source.object
        for canonical, name in source.fields.items():
            add(obj, name, canonical.replace("_", " "))
        for prop, name in source.properties.items():
            add(obj, name, f"property {prop}")
        if status.object in (None, obj):
            add(obj, status.field, "lead status")
        if stage.object in (None, obj):
            add(obj, stage.field, "lifecycle stage", "edit")
        for key, name in mapping.write_back.items():
            add(obj, name, f"write-back {key}", "edit")
    for source_name in mapping.activity_sources:
        for name in mapping.activity_fields(source_name):
            add(source_name, name, f"{source_name} activities")
    tasks = mapping.tasks
    for key, name in tasks.fields.items():
        add(tasks.object, name, f"handoff task {key.replace('_', ' ')}", "create")
    for name in tasks.constants:
        add(tasks.object, name, "handoff task constant", "create")
    return needs


def _sf_field(org: SalesforceOrg, obj: str, name: str) -> FieldInfo | None:
    """`obj`'s field `name` as describe shows it; `Rel.Field` on the related object."""
    described = org.describe(obj)
    if described is None:
        return None
    head, _, rest = name.partition(".")
    if not rest:
        return described.fields.get(head)
    for target in described.relationships.get(head, ()):
        found = _sf_field(org, target, rest)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class SalesforceAuthInfo:
    """Which flow the settings configure, and how to fix it when the org refuses it."""

    flow: str
    fix: str


def salesforce_auth_info() -> SalesforceAuthInfo:
    from flows.settings import get_settings

    s = get_settings()
    if getattr(s, "salesforce_jwt_key_file", None) or getattr(s, "salesforce_jwt_key_block", None):
        user = getattr(s, "salesforce_username", None) or "?"
        return SalesforceAuthInfo(
            f"JWT bearer flow as {user}",
            "check MQLSYNC_SALESFORCE_CLIENT_ID (the connected app's consumer key), "
            "MQLSYNC_SALESFORCE_USERNAME, MQLSYNC_SALESFORCE_LOGIN_URL, the certificate "
            "uploaded to the connected app, and that the user is pre-authorized for the app",
        )
    if s.salesforce_client_id or s.salesforce_client_secret:
        return SalesforceAuthInfo(
            "OAuth client credentials flow (the connected app's Run As user)",
            "check MQLSYNC_SALESFORCE_CLIENT_ID and MQLSYNC_SALESFORCE_CLIENT_SECRET, and "
            "that the connected app enables the client credentials flow with a Run As user",
        )
    if s.salesforce_session_id:
        return SalesforceAuthInfo(
            "a fixed session id (MQLSYNC_SALESFORCE_SESSION_ID: it expires and is not renewed)",
            "set a fresh MQLSYNC_SALESFORCE_SESSION_ID, or configure the client credentials "
            "or JWT bearer flow (see README: Connecting a real Salesforce org)",
        )
    return SalesforceAuthInfo(
        "credentials from Prefect Secret blocks",
        "check the mqlsync-salesforce-* Secret blocks, or set MQLSYNC_SALESFORCE_CLIENT_ID "
        "and MQLSYNC_SALESFORCE_CLIENT_SECRET",
    )


def _budget_share() -> float:
    from flows.settings import get_settings

    return float(getattr(get_settings(), "salesforce_daily_budget_share", 0.5))


def salesforce_report(
    connector: SalesforceConnector,
    mapping: Mapping,
    mapping_file: str,
    auth: SalesforceAuthInfo,
    budget_share: float = 0.5,
) -> Report:
    """Every check against one org, as rows, and a lead status proposal when it lacks values."""
    org = SalesforceOrg(connector)
    rows: list[Row] = []
    try:
        use = org.daily_use()
    except DailyLimitExceeded as exc:
        rows.append(_sf_auth_ok(auth, None))
        rows.append(
            Row(
                "daily API use",
                Status.UNAVAILABLE,
                exc.message,
                "wait for the daily limit to recover, or stop other integrations using it",
                required=True,
            )
        )
        return Report(Crm.SALESFORCE, rows)
    except ConnectorError as exc:
        return Report(Crm.SALESFORCE, [_sf_unreachable(exc, auth)])
    try:
        rows.append(_sf_auth_ok(auth, org.identity()))
        rows.append(_sf_version_row(org))
        rows.append(_sf_daily_row(use, budget_share))
        statuses = _sf_statuses(org, mapping, rows)
        rows += _sf_field_rows(org, mapping, mapping_file, statuses)
        rows += _sf_picklist_rows(org, mapping, mapping_file)
        notes: tuple[str, ...] = ()
        if statuses is not None:
            rows += _sf_status_rows(org, mapping, mapping_file, statuses)
            proposal = propose_statuses(mapping, statuses)
            if proposal is not None:
                notes = (_sf_proposal_text(proposal, mapping, mapping_file),)
    except DailyLimitExceeded as exc:
        rows = [row for row in rows if row.check != "daily API use"]
        rows.append(
            Row(
                "daily API use",
                Status.UNAVAILABLE,
                exc.message,
                "wait for the daily limit to recover, or raise "
                "MQLSYNC_SALESFORCE_DAILY_BUDGET_SHARE",
                required=True,
            )
        )
        return Report(Crm.SALESFORCE, rows)
    rows += _sf_connector_check(connector, rows)
    return Report(Crm.SALESFORCE, rows, notes)


def _sf_connector_check(connector: SalesforceConnector, rows: Sequence[Row]) -> list[Row]:
    """The connector's own pre-sync check, when no row above already stops a sync."""
    if any(row.required and row.status is not Status.OK for row in rows):
        return []
    extra = _unexplained(connector, rows)
    if extra:
        return extra
    return [Row("mapping check", Status.OK, "the connector's own pre-sync check passes")]


def _sf_unreachable(exc: ConnectorError, auth: SalesforceAuthInfo) -> Row:
    """The first request's failure: credentials refused, the API off for the user, or no org."""
    text = exc.message
    if exc.code == "API_DISABLED_FOR_ORG" or "API_DISABLED" in text:
        return Row(
            "authentication",
            Status.MISSING,
            f"{auth.flow}: signed in, but the API is refused: {text}",
            "give the integration user the API Enabled permission (its profile or a "
            "permission set)",
            required=True,
        )
    refused = isinstance(exc, AuthExpired) or exc.status in (400, 401, 403)
    if refused or "oauth" in text.lower():
        return Row(
            "authentication", Status.MISSING, f"{auth.flow}: refused: {text}", auth.fix, True
        )
    return Row(
        "connection",
        Status.UNAVAILABLE,
        text,
        "check MQLSYNC_SALESFORCE_INSTANCE_URL / MQLSYNC_SALESFORCE_LOGIN_URL, "
        "MQLSYNC_CA_FILE and the network",
        required=True,
    )


def _sf_auth_ok(auth: SalesforceAuthInfo, identity: Identity | None) -> Row:
    if identity is None or not (identity.username or identity.user_id):
        return Row("authentication", Status.OK, f"works: {auth.flow} (user details not served)")
    who = identity.username or identity.user_id
    ids = ", ".join(
        part
        for part in (
            f"user {identity.user_id}" if identity.user_id and identity.username else "",
            f"org {identity.org_id}" if identity.org_id else "",
        )
        if part
    )
    return Row(
        "authentication",
        Status.OK,
        f"works: {auth.flow}, as {who}" + (f" ({ids})" if ids else ""),
    )


def _sf_version_row(org: SalesforceOrg) -> Row:
    configured = org.api_version
    try:
        served = org.versions()
    except DailyLimitExceeded:
        raise
    except ConnectorError as exc:
        return Row("API version", Status.UNAVAILABLE, f"v{configured}; versions unreadable: {exc}")
    newest = newest_version(served)
    if newest is None:
        return Row("API version", Status.UNAVAILABLE, f"v{configured}; the org listed none")
    if configured not in served:
        return Row(
            "API version",
            Status.MISSING,
            f"v{configured} is not served by this org (newest v{newest})",
            f"use an API version the org serves (up to v{newest})",
            required=True,
        )
    if configured == newest:
        return Row("API version", Status.OK, f"v{configured}, the org's newest")
    return Row("API version", Status.OK, f"v{configured}; the org's newest is v{newest}")


def _sf_daily_row(use: DailyUse | None, share: float) -> Row:
    if use is None:
        return Row("daily API use", Status.UNAVAILABLE, "the org did not report DailyApiRequests")
    if use.limit <= 0:
        return Row("daily API use", Status.UNAVAILABLE, "the org reports a daily limit of 0")
    stop_at = int(share * use.limit)
    text = (
        f"{use.used:,} of {use.limit:,} requests used in the last 24 hours "
        f"({use.used / use.limit:.1%}); a run stops at {share:.0%} of the limit "
        f"({stop_at:,}, MQLSYNC_SALESFORCE_DAILY_BUDGET_SHARE)"
    )
    if use.remaining <= 0:
        return Row(
            "daily API use",
            Status.UNAVAILABLE,
            "the daily limit is spent: " + text,
            "wait for the daily limit to recover, or stop other integrations using it",
            required=True,
        )
    if share < 1 and use.used >= stop_at:
        return Row(
            "daily API use",
            Status.UNAVAILABLE,
            "past the run's share: " + text,
            "wait for the org's use to fall, or raise MQLSYNC_SALESFORCE_DAILY_BUDGET_SHARE",
            required=True,
        )
    return Row("daily API use", Status.OK, text)


def _sf_statuses(
    org: SalesforceOrg, mapping: Mapping, rows: list[Row]
) -> list[LeadStatusValue] | None:
    """The org's lead statuses, when the mapping writes the lead status picklist."""
    if mapping.lead_status.field != "Status":
        return None
    try:
        return org.lead_statuses()
    except DailyLimitExceeded:
        raise
    except ConnectorError as exc:
        rows.append(
            Row(
                "lead statuses",
                Status.MISSING,
                f"LeadStatus cannot be read: {exc.message}",
                "give the integration user read access to lead statuses (API Enabled, "
                "Read on Lead)",
                required=True,
            )
        )
        return None


def _sf_stage_needs_fallback(mapping: Mapping, statuses: Sequence[LeadStatusValue] | None) -> bool:
    """Whether the stage goes to the fallback field: written to Status, a value missing."""
    stage = mapping.stage
    if stage.field != mapping.lead_status.field or statuses is None:
        return False
    have = {name for s in statuses for name in s.names()}
    return any(value not in have for value in stage.write.values())


def _sf_field_rows(
    org: SalesforceOrg,
    mapping: Mapping,
    mapping_file: str,
    statuses: Sequence[LeadStatusValue] | None,
) -> list[Row]:
    needs = _sf_needs(mapping)
    stage = mapping.stage
    stage_obj = stage.object or mapping.contacts[0].object
    fallback = stage.fallback_field
    fallback_needed = _sf_stage_needs_fallback(mapping, statuses)
    if fallback:
        need = needs.setdefault((stage_obj, fallback), _Need(stage_obj, fallback, []))
        need.roles.append("lifecycle stage where Lead Status lacks a stage's value")
        need.access = "edit"
    created = {(s.object, s.name): s for s in wanted_fields(mapping)}
    rows: list[Row] = []
    present: dict[str, list[str]] = {}
    unreadable: set[str] = set()
    for (obj, name), need in needs.items():
        if obj in unreadable:
            continue
        if org.describe(obj) is None:
            unreadable.add(obj)
            rows.append(
                Row(
                    f"object {obj}",
                    Status.MISSING,
                    f"the integration user cannot read {obj}: nothing of it can be "
                    "pulled or written",
                    f"give the integration user Read on {obj} (its profile or a permission set)",
                    required=True,
                )
            )
            continue
        info = _sf_field(org, obj, name)
        what = ", ".join(need.roles)
        is_fallback = name == fallback and obj == stage_obj
        if info is None:
            spec = created.get((obj, name))
            if is_fallback:
                required = fallback_needed
                cost = (
                    "the stage has no field to go to: this org's Lead Status lacks a stage's "
                    "value (see the value rows)"
                    if required
                    else "not needed while Lead Status has every stage's value"
                )
            elif mapping.is_optional(obj, name):
                required = False
                cost = "optional: left out of every query (its value reads as empty)"
            else:
                required = True
                cost = (spec.cost + "; " if spec else "") + "a sync stops before its first pull"
            if spec is not None:
                fix = SF_SETUP_FIX
            elif name.endswith("__c"):
                fix = (
                    "create it and give the integration user read access, or remove it from "
                    f"{mapping_file}"
                )
            else:
                fix = (
                    "give the integration user read access to it (field-level security), or "
                    f"remove it from {mapping_file}"
                )
            rows.append(
                Row(
                    f"field {obj}.{name}",
                    Status.MISSING,
                    f"{what}: {SF_INVISIBLE}; {cost}",
                    fix,
                    required=required,
                )
            )
            continue
        present.setdefault(obj, []).append(name)
        # The fallback field is written only while a stage's status is missing.
        writes = need.access != "read" and (not is_fallback or fallback_needed)
        allowed = info.createable if need.access == "create" else info.updateable
        if writes and "." not in name and not allowed:
            verb = "create" if need.access == "create" else "edit"
            rows.append(
                Row(
                    f"field {obj}.{name}",
                    Status.MISSING,
                    f"{what}: present, but the integration user may not {verb} it",
                    SF_SETUP_FIX
                    if (obj, name) in created
                    else f"give the integration user edit access to {obj}.{name}",
                    required=True,
                )
            )
    ok = [Row(f"fields {obj}", Status.OK, ", ".join(names)) for obj, names in present.items()]
    return ok + rows


def _sf_picklist_rows(org: SalesforceOrg, mapping: Mapping, mapping_file: str) -> list[Row]:
    """The task's constant values (Status, Type, ...) and priorities against the picklists."""
    tasks = mapping.tasks
    wanted: list[tuple[str, str, str]] = [
        (name, value, f"tasks.constants.{name}") for name, value in tasks.constants.items()
    ]
    priority = tasks.fields.get("priority")
    if priority is not None:
        wanted += [
            (priority, value, f"tasks.priorities.{p}") for p, value in tasks.priorities.items()
        ]
    rows: list[Row] = []
    for name, value, where in wanted:
        info = _sf_field(org, tasks.object, name)
        if info is None or not info.picklist or value in info.picklist:
            continue
        if info.restricted:
            cost = "the picklist is restricted: every handoff task create fails"
        else:
            cost = (
                "Salesforce stores it (the picklist is not restricted), but users cannot pick "
                "or filter by it"
            )
        rows.append(
            Row(
                f"value {tasks.object}.{name}={value}",
                Status.MISSING,
                f"{where} writes {value!r}, not among {tasks.object}.{name}'s values "
                f"({', '.join(info.picklist)}): {cost}",
                f"add {value!r} to the {name} picklist in Setup, or change {where} in "
                f"{mapping_file}",
                required=info.restricted,
            )
        )
    return rows


def _sf_status_rows(
    org: SalesforceOrg,
    mapping: Mapping,
    mapping_file: str,
    statuses: Sequence[LeadStatusValue],
) -> list[Row]:
    """The lead status and stage values against the org's LeadStatus, as the sync uses them."""
    have = {name for s in statuses for name in s.names()}
    stage, status = mapping.stage, mapping.lead_status
    stage_obj = stage.object or mapping.contacts[0].object
    fallback = stage.fallback_field
    fallback_there = fallback is not None and _sf_field(org, stage_obj, fallback) is not None
    # value → (the sections writing it, the cost)
    missing: dict[str, list[str]] = {}
    costs: dict[str, str] = {}
    required: set[str] = set()
    for key, value in status.values.items():
        if value in have:
            continue
        missing.setdefault(value, []).append(f"lead_status.{key}")
        instead = next((c for c in status.candidates(key) if c in have), None)
        costs.setdefault(
            value,
            f"{instead!r} (lead_status.also) is used instead"
            if instead
            else f"leads in it are not read as {key}, and {key} is never written",
        )
    if stage.field == status.field:
        for stage_key, value in stage.write.items():
            if value in have:
                continue
            missing.setdefault(value, []).append(f"stage.write.{stage_key.value}")
            if fallback_there:
                costs[value] = (
                    f"the stage goes to {stage_obj}.{fallback} instead "
                    f"({stage.field} only where a sales status is due)"
                )
            else:
                required.add(value)
                costs[value] = "the stage cannot be written: " + (
                    f"{stage_obj}.{fallback}, where it would go instead, is missing too"
                    if fallback
                    else "stage.fallback_field names no field to write it to instead"
                )
    rows = [
        Row(
            "lead statuses",
            Status.OK,
            "the org's: "
            + ", ".join(
                s.value
                + (" (default)" if s.default else "")
                + (" (converted)" if s.converted else "")
                for s in statuses
            ),
        )
    ]
    for value, sections in missing.items():
        fix = f"add it to Lead Status ({SF_LEAD_STATUS_SETUP}), or use the proposed mapping below"
        if value in required and fallback:
            fix = f"run `mqlsync crm-setup salesforce` (creates {stage_obj}.{fallback}), or {fix}"
        rows.append(
            Row(
                f"value {stage_obj}.{status.field}={value}",
                Status.MISSING,
                f"{', '.join(sections)} {'writes' if len(sections) == 1 else 'write'} it, but the "
                f"org's LeadStatus has no such value: {costs[value]}",
                fix,
                required=value in required,
            )
        )
    return rows


def _sf_proposal_text(proposal: StatusProposal, mapping: Mapping, mapping_file: str) -> str:
    text = (
        "Proposed lead status mapping for this org: the closest of its own statuses for "
        "each key.\nPaste it over the stage: and lead_status: sections of "
        f"{mapping_file}:\n\n" + proposal.text
    )
    if proposal.unmatched:
        stage_obj = mapping.stage.object or mapping.contacts[0].object
        fallback = mapping.stage.fallback_field or "Lifecycle_Stage__c"
        text += (
            "\n\nNo counterpart in this org for: "
            + ", ".join(proposal.unmatched)
            + f".\nAdd such values to Lead Status ({SF_LEAD_STATUS_SETUP}) and map them, "
            f"or let the stage go to the custom field {stage_obj}.{fallback} "
            "(stage.fallback_field; `mqlsync crm-setup salesforce` creates it)."
        )
    return text


# --- running and printing ----------------------------------------------------------------


def render_report(report: Report) -> str:
    table = render_table(
        ["check", "status", "detail", "fix"],
        [[r.check, r.status.value, r.detail, r.fix] for r in report.rows],
    )
    blocking = [r for r in report.rows if r.required and r.status is not Status.OK]
    if report.ready:
        return (
            table
            + f"\n\n{report.crm.value}: ready, a sync would run"
            + "".join(f"\n\n{note}" for note in report.notes)
        )
    fixes = dict.fromkeys(r.fix for r in blocking if r.fix)
    return (
        table
        + f"\n\n{report.crm.value}: not ready, {len(blocking)} item(s) stop a sync"
        + "".join(f"\n  fix: {fix}" for fix in fixes)
        + "".join(f"\n\n{note}" for note in report.notes)
    )


def render_setup(actions: Sequence[SetupAction], *, dry_run: bool) -> str:
    table = render_table(
        ["what", "object", "name", "status", "detail"],
        [[a.kind, a.object_type, a.name, a.status.value, a.detail] for a in actions],
    )
    counts = {s: sum(1 for a in actions if a.status is s) for s in SetupStatus}
    if dry_run:
        tail = f"dry run: {counts[SetupStatus.WOULD_CREATE]} to create, nothing created"
    else:
        tail = (
            f"{counts[SetupStatus.CREATED]} created, {counts[SetupStatus.EXISTS]} already there, "
            f"{counts[SetupStatus.FAILED]} failed"
        )
    return table + "\n\n" + tail


def setup_failed(actions: Sequence[SetupAction]) -> bool:
    return any(a.status is SetupStatus.FAILED for a in actions)


def _build(crm: Crm) -> tuple[CrmConnector, Mapping, str]:
    from flows import runtime
    from flows.check import mapping_path
    from flows.settings import get_settings

    mapping = runtime.mapping_for(crm)
    connector = runtime.connector_for(crm)
    return connector, mapping, str(mapping_path(get_settings(), crm))


def _failure(crm: Crm, check: str, message: str, fix: str) -> tuple[int, str]:
    report = Report(crm, [Row(check, Status.MISSING, message, fix, required=True)])
    return report.exit_code, render_report(report)


def _with_connector(
    crm: Crm, use: Callable[[CrmConnector, Mapping, str], tuple[int, str]], portal_fix: str
) -> tuple[int, str]:
    """`use`'s (exit code, table) over `crm`'s connector, mapping and mapping file.

    A connector that cannot be built (settings, mapping file, credentials), or a CRM that
    refuses a call, ends the command with one row saying what to fix, not a traceback.
    """
    from flows.runtime import ConfigurationError

    try:
        connector, mapping, mapping_file = _build(crm)
    except ConfigurationError as exc:
        return _failure(crm, "configuration", str(exc), "see README: Running it against a real CRM")
    except MappingError as exc:
        return _failure(crm, "mapping file", exc.message, "run `mqlsync check`")
    except ConnectorError as exc:
        return _failure(crm, "credentials", exc.message, "check the CRM credentials")
    try:
        return use(connector, mapping, mapping_file)
    except ConnectorError as exc:
        return _failure(crm, "portal", exc.message, portal_fix)


def run_doctor(crm: Crm) -> tuple[int, str]:
    """The doctor's exit code and table for `crm`, from the `MQLSYNC_*` settings."""

    def check(connector: CrmConnector, mapping: Mapping, mapping_file: str) -> tuple[int, str]:
        if isinstance(connector, HubSpotConnector):
            report = hubspot_report(connector, mapping, mapping_file)
        else:
            assert isinstance(connector, SalesforceConnector)
            report = salesforce_report(
                connector, mapping, mapping_file, salesforce_auth_info(), _budget_share()
            )
        return report.exit_code, render_report(report)

    return _with_connector(crm, check, "run the doctor again; see the message")


def run_setup(
    crm: Crm, *, dry_run: bool, package_dir: Path = DEFAULT_PACKAGE_DIR
) -> tuple[int, str]:
    """Create what the mapping writes into `crm`; (exit code, table)."""

    def setup(connector: CrmConnector, mapping: Mapping, mapping_file: str) -> tuple[int, str]:
        if isinstance(connector, SalesforceConnector):
            return _salesforce_setup(connector, mapping, mapping_file, dry_run, package_dir)
        assert isinstance(connector, HubSpotConnector)
        actions = HubSpotPortal(connector).setup(mapping, dry_run=dry_run)
        code = EXIT_NOT_READY if setup_failed(actions) else EXIT_READY
        return code, render_setup(actions, dry_run=dry_run)

    return _with_connector(crm, setup, f"run `mqlsync doctor {crm.value}`")


def _salesforce_setup(
    connector: SalesforceConnector,
    mapping: Mapping,
    mapping_file: str,
    dry_run: bool,
    package_dir: Path,
) -> tuple[int, str]:
    from flows.settings import get_settings

    username = getattr(get_settings(), "salesforce_username", None)
    result = SalesforceOrg(connector).setup(
        mapping, dry_run=dry_run, package_dir=package_dir, username=username
    )
    text = render_setup(result.actions, dry_run=dry_run)
    if result.package_dir is not None:
        text += "\n\n" + _package_steps(result)
    text += "\n\n" + _lead_status_note(mapping, mapping_file)
    failed = setup_failed(result.actions) or result.refused is not None
    return (EXIT_NOT_READY if failed else EXIT_READY), text


def _package_steps(result: SetupResult) -> str:
    assert result.package_dir is not None
    files = "".join(f"\n    {name}" for name in result.package_files)
    return (
        f"Salesforce refused a setup change for this user: {result.refused}\n"
        '(Creating fields needs the "Customize Application" permission; creating and '
        'assigning the permission set, "Manage Profiles and Permission Sets" and "Assign '
        'Permission Sets".)\n'
        f"A metadata deploy package (source format) is ready in {result.package_dir}:{files}\n"
        + "\n".join(deploy_steps(str(result.package_dir), result.username))
    )


def _lead_status_note(mapping: Mapping, mapping_file: str) -> str:
    stage, status = mapping.stage, mapping.lead_status
    stage_obj = stage.object or mapping.contacts[0].object
    if stage.field != status.field:
        return (
            f"Lead statuses: not touched. The stage is written to {stage_obj}.{stage.field}; "
            f"lead status keys use the org's values as mapped in {mapping_file}."
        )
    written = ", ".join(f"{k.value}: {v!r}" for k, v in stage.write.items())
    fallback = (
        f"; where the org lacks one of them, the stage goes to {stage_obj}.{stage.fallback_field}"
        if stage.fallback_field
        else ""
    )
    return (
        "Lead statuses: not created (the Tooling API cannot add values to the standard Lead "
        f"Status picklist). The stage is written to the org's statuses as mapped in "
        f"{mapping_file} ({written}){fallback}. `mqlsync doctor salesforce` checks them "
        "against the org's LeadStatus and proposes a mapping for the values it lacks."
    )
