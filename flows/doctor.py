"""`mqlsync doctor` and `mqlsync crm-setup`: is a CRM ready for a sync, and make it so.

The doctor turns what `connectors.hubspot_setup` reads into rows (ok / missing /
unavailable, what it costs, how to fix it) and a verdict: ready when every row a sync
needs is ok. Sources the tier or the scopes refuse cost engagement signals but do not
stop a sync (the pull switches them off), so they never decide the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from connectors.errors import AuthExpired, ConnectorError, MappingError
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


# --- Salesforce: the connector's own check -----------------------------------------------


def salesforce_report(connector: CrmConnector, mapping_file: str) -> Report:
    """Connection and mapping only: the connector's pre-write check as rows."""
    try:
        problems = connector.check_mapping()
    except AuthExpired as exc:
        return Report(
            Crm.SALESFORCE,
            [Row("session", Status.MISSING, exc.message, "check the credentials", True)],
        )
    except ConnectorError as exc:
        return Report(
            Crm.SALESFORCE,
            [Row("connection", Status.UNAVAILABLE, exc.message, "", True)],
        )
    rows = [Row("connection", Status.OK, "works")]
    rows += [
        Row(
            "mapping", Status.MISSING, p, f"create it in Salesforce, or change {mapping_file}", True
        )
        for p in problems
    ]
    if not problems:
        rows.append(Row("mapping", Status.OK, "every mapped field and status value exists"))
    return Report(Crm.SALESFORCE, rows)


# --- running and printing ----------------------------------------------------------------


def render_report(report: Report) -> str:
    table = render_table(
        ["check", "status", "detail", "fix"],
        [[r.check, r.status.value, r.detail, r.fix] for r in report.rows],
    )
    blocking = [r for r in report.rows if r.required and r.status is not Status.OK]
    if report.ready:
        return table + f"\n\n{report.crm.value}: ready, a sync would run"
    fixes = dict.fromkeys(r.fix for r in blocking if r.fix)
    return (
        table
        + f"\n\n{report.crm.value}: not ready, {len(blocking)} item(s) stop a sync"
        + "".join(f"\n  fix: {fix}" for fix in fixes)
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
            report = salesforce_report(connector, mapping_file)
        return report.exit_code, render_report(report)

    return _with_connector(crm, check, "run the doctor again; see the message")


def run_setup(crm: Crm, *, dry_run: bool) -> tuple[int, str]:
    """Create what the mapping writes into `crm`; (exit code, table)."""
    if crm is not Crm.HUBSPOT:
        return EXIT_UNSUPPORTED, (
            "crm-setup salesforce: not supported yet; create the *__c fields of "
            "mappings/salesforce.yaml in Salesforce Setup, then run `mqlsync doctor salesforce`"
        )

    def setup(connector: CrmConnector, mapping: Mapping, _mapping_file: str) -> tuple[int, str]:
        assert isinstance(connector, HubSpotConnector)
        actions = HubSpotPortal(connector).setup(mapping, dry_run=dry_run)
        code = EXIT_NOT_READY if setup_failed(actions) else EXIT_READY
        return code, render_setup(actions, dry_run=dry_run)

    return _with_connector(crm, setup, "run `mqlsync doctor hubspot`")
