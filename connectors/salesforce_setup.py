"""What a Salesforce org offers the sync, and the custom fields and field access it needs.

Reads (who the integration user is, the API versions the org serves, today's API use,
describe per object, the `LeadStatus` values) and creates (the custom fields the
mapping writes, through the Tooling API, and the permission set `mqlsync_integration`
that lets the integration user read and edit them). Every request goes through the
connector's simple-salesforce client and so through its session: TLS, auth refresh,
throttle and retries. Nothing here prints: results are data, and `flows/doctor.py`
decides what they mean.

Facts this relies on (Salesforce documentation and public SFDX projects):
- Tooling API `POST tooling/sobjects/CustomField` with `FullName` and `Metadata`
  (CustomFieldMetadata: label, type, length, precision, scale, visibleLines,
  externalId, unique, ...) creates a field; a second create of the same name answers
  `DUPLICATE_DEVELOPER_NAME`.
- Task and Event share their custom fields: they are defined on `Activity`
  (`Activity.Handoff_Key__c`; a field under `Task` is refused), while field permissions
  name them per object (`Task.Handoff_Key__c`).
- A new field is invisible to a user without field-level access: describe omits it and
  SOQL answers INVALID_FIELD, until a PermissionSet with FieldPermissions
  (`ParentId`, `SobjectType`, `Field` = "Object.Field__c", `PermissionsRead`,
  `PermissionsEdit`) is assigned to the user (PermissionSetAssignment `AssigneeId`,
  `PermissionSetId`).
- `GET /services/oauth2/userinfo` answers `user_id`, `organization_id`,
  `preferred_username` for the token's user.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from connectors.errors import (
    AmbiguousWriteError,
    AuthExpired,
    ConnectorError,
    DailyLimitExceeded,
)
from connectors.hubspot_setup import SetupAction, SetupStatus
from connectors.mapping import Mapping as CrmMapping
from connectors.salesforce import SalesforceConnector

PERMISSION_SET = "mqlsync_integration"
PERMISSION_SET_LABEL = "mqlsync integration"
DEFAULT_PACKAGE_DIR = Path("mqlsync-salesforce-package")
# Task and Event custom fields are Activity fields in the Tooling and Metadata APIs.
ACTIVITY_OBJECTS = frozenset({"Task", "Event"})
METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
# Error codes (and words) of a user who may not change the org's setup.
REFUSED_CODES = frozenset(
    {
        "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "NO_PERMISSION",
        "API_DISABLED_FOR_ORG",
    }
)
DUPLICATE_CODES = frozenset({"DUPLICATE_DEVELOPER_NAME", "DUPLICATE_VALUE"})
# Failures that end the whole command, not one step: credentials, the daily limit.
STOPS = (AuthExpired, DailyLimitExceeded)
STAGE_TEXT_LENGTH = 40


# --- what the product needs ------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One custom field the sync writes: its object, name and Salesforce type."""

    object: str  # the object the sync writes it on: Lead, Contact, Task
    name: str
    label: str
    type: str  # Number, Text, LongTextArea, Checkbox
    description: str
    cost: str  # what its absence costs
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    visible_lines: int | None = None
    external_id: bool = False
    unique: bool = False

    @property
    def metadata_object(self) -> str:
        """Where the field is defined: Task and Event fields live on Activity."""
        return "Activity" if self.object in ACTIVITY_OBJECTS else self.object

    @property
    def full_name(self) -> str:
        return f"{self.metadata_object}.{self.name}"

    @property
    def permission_name(self) -> str:
        """`FieldPermissions.Field` and a permission set's `<field>`: per object."""
        return f"{self.object}.{self.name}"

    @property
    def type_text(self) -> str:
        if self.type == "Number":
            return f"Number({self.precision}, {self.scale})"
        if self.type == "Text":
            extra = ", External ID, unique" if self.external_id and self.unique else ""
            return f"Text({self.length}{extra})"
        if self.type == "LongTextArea":
            return f"LongTextArea({self.length}, {self.visible_lines} lines)"
        return self.type

    def metadata(self) -> dict[str, Any]:
        """CustomFieldMetadata for the Tooling API (the same elements as the XML)."""
        body: dict[str, Any] = {
            "label": self.label,
            "type": self.type,
            "description": self.description,
        }
        optional = {
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "visibleLines": self.visible_lines,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if self.type == "Text":
            body["externalId"] = self.external_id
            body["unique"] = self.unique
            if self.unique:
                body["caseSensitive"] = True
        if self.type == "Checkbox":
            body["defaultValue"] = "false"
        return body

    def tooling_body(self) -> dict[str, Any]:
        return {"FullName": self.full_name, "Metadata": self.metadata()}

    def field_xml(self) -> str:
        """The source-format `objects/<Object>/fields/<Field>.field-meta.xml`."""
        meta = self.metadata()
        lines = [f"    <fullName>{escape(self.name)}</fullName>"]
        # Elements in the alphabetical order `sf project retrieve` writes them.
        for key in sorted(meta):
            value = meta[key]
            text = str(value).lower() if isinstance(value, bool) else escape(str(value))
            lines.append(f"    <{key}>{text}</{key}>")
        return _xml_document("CustomField", lines)


# Canonical write-back field → (label, type arguments, description, cost when missing).
_WRITE_BACK: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "score": (
        "MQL Score",
        {"type": "Number", "precision": 18, "scale": 0},
        "Fit plus engagement points, written by mqlsync.",
        "the score is not written: sales cannot sort or filter by it",
    ),
    "fit": (
        "MQL Fit Score",
        {"type": "Number", "precision": 18, "scale": 0},
        "Points for who the person is, written by mqlsync.",
        "the fit part of the score is not written",
    ),
    "engagement": (
        "MQL Engagement Score",
        {"type": "Number", "precision": 18, "scale": 0},
        "Points for what the person did, faded with time, written by mqlsync.",
        "the engagement part of the score is not written",
    ),
    "grade": (
        "MQL Grade",
        {"type": "Text", "length": 20},
        "Fit grade A-D, written by mqlsync.",
        "the grade is not written: no views or reports by grade",
    ),
    "reasons": (
        "MQL Score Reasons",
        # Reasons are up to 1,000 characters; a Text field holds 255 at most.
        {"type": "LongTextArea", "length": 32768, "visible_lines": 3},
        "The rules behind the score, written by mqlsync.",
        "reps do not see why a person scored as they did",
    ),
    "model_version": (
        "MQL Model Version",
        {"type": "Text", "length": 80},
        "The scoring model and version that wrote the score.",
        "scores cannot be traced to the model that made them",
    ),
}


def wanted_fields(mapping: CrmMapping) -> list[FieldSpec]:
    """The custom fields the product writes, in the order they are created.

    Each write-back field on every contact object, the task's handoff key (Text(255),
    External ID, unique), and any other `__c` field the task or stage section names.
    """
    specs: list[FieldSpec] = []
    for source in mapping.contacts:
        for key, name in mapping.write_back.items():
            label, kind, description, cost = _WRITE_BACK[key]
            specs.append(
                FieldSpec(source.object, name, label, description=description, cost=cost, **kind)
            )
    tasks = mapping.tasks
    key_field = tasks.fields["key"]
    specs.append(
        FieldSpec(
            tasks.object,
            key_field,
            "MQL Handoff Key",
            "Text",
            "Idempotency key of the mqlsync handoff task (crm:contact:mql:n).",
            "no handoff task can be created, nor found again after a lost answer",
            length=255,
            external_id=True,
            unique=True,
        )
    )
    named: list[tuple[str | None, str]] = [*tasks.fields.items()]
    named += [(None, constant) for constant in tasks.constants]
    # Lookups (contact_id, owner_id) are references: not a field to create blindly.
    other_task_fields = [
        (role, name)
        for role, name in named
        if name.endswith("__c") and name != key_field and role not in ("contact_id", "owner_id")
    ]
    for role, name in other_task_fields:
        long_text = role == "body"
        specs.append(
            FieldSpec(
                tasks.object,
                name,
                _label(name),
                "LongTextArea" if long_text else "Text",
                f"Handoff task {role or 'constant'}, written by mqlsync.",
                f"handoff tasks cannot be created (task {role or 'constant'} {name})",
                length=32768 if long_text else 255,
                visible_lines=3 if long_text else None,
            )
        )
    stage = mapping.stage
    # The stage written to a custom field: its own, or the fallback for an org whose Lead
    # Status lacks a stage's value. It holds the canonical stage name (lead, mql, ...).
    stage_fields = [n for n in (stage.field, stage.fallback_field) if n and n.endswith("__c")]
    for name in stage_fields:
        for source in mapping.contacts:
            if stage.object in (None, source.object):
                specs.append(
                    FieldSpec(
                        source.object,
                        name,
                        _label(name),
                        "Text",
                        "Lifecycle stage (lead, mql, sql, ...), written by mqlsync.",
                        "the lifecycle stage is not written",
                        length=STAGE_TEXT_LENGTH,
                    )
                )
    unique: dict[tuple[str, str], FieldSpec] = {}
    for spec in specs:
        unique.setdefault((spec.object, spec.name), spec)
    return list(unique.values())


def _label(name: str) -> str:
    return name.removesuffix("__c").replace("_", " ")


# --- what the org offers ---------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    """What describe says of one field."""

    name: str
    type: str
    updateable: bool
    createable: bool
    custom: bool
    picklist: tuple[str, ...]  # active picklist values
    restricted: bool  # a restricted picklist refuses values it does not list
    relationship: str | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class Described:
    """One object's describe: the fields the integration user can see."""

    name: str
    fields: dict[str, FieldInfo]

    @property
    def relationships(self) -> dict[str, tuple[str, ...]]:
        return {f.relationship: f.references for f in self.fields.values() if f.relationship}


@dataclass(frozen=True)
class LeadStatusValue:
    api_name: str
    label: str
    converted: bool
    default: bool

    @property
    def value(self) -> str:
        """What Lead.Status holds (the picklist value's API name)."""
        return self.api_name or self.label

    def names(self) -> set[str]:
        return {n for n in (self.api_name, self.label) if n}


@dataclass(frozen=True)
class Identity:
    """The integration user, from the userinfo endpoint."""

    user_id: str | None
    username: str | None
    org_id: str | None


@dataclass(frozen=True)
class DailyUse:
    limit: int
    remaining: int

    @property
    def used(self) -> int:
        return max(0, self.limit - self.remaining)


@dataclass
class SetupResult:
    """What `crm-setup salesforce` did, and the deploy package when it was refused."""

    actions: list[SetupAction] = field(default_factory=list)
    refused: str | None = None  # why the org refused to create fields
    package_dir: Path | None = None
    package_files: list[str] = field(default_factory=list)
    username: str | None = None


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def newest_version(versions: Iterable[str]) -> str | None:
    return max(versions, key=_version_key, default=None)


def is_refusal(exc: ConnectorError) -> bool:
    """Whether an error says the user may not change the org's setup."""
    text = exc.message.lower()
    if isinstance(exc, STOPS):
        return False
    return (
        exc.code in REFUSED_CODES
        or exc.status == 403
        or "customize application" in text
        or "insufficient access" in text
        or "insufficient privileges" in text
    )


def is_duplicate(exc: ConnectorError) -> bool:
    return exc.code in DUPLICATE_CODES or "already a field named" in exc.message.lower()


class SalesforceOrg:
    """Reads and creates against one org, over a connector's client."""

    def __init__(self, connector: SalesforceConnector) -> None:
        self._connector = connector
        self._described: dict[str, Described | None] = {}

    @property
    def _api(self) -> Salesforce:
        # Asked for on each use: the connector builds its client on first use, which may
        # fetch the first session (and so fail as the first request would).
        return self._connector.api

    # --- reads ------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        """The API version the client is configured with ("59.0")."""
        return str(self._api.sf_version)

    def identity(self) -> Identity | None:
        """The token's user (None when the org does not serve userinfo to this token)."""
        try:
            info = self._api.oauth2("userinfo")
        except ConnectorError as exc:
            if exc.status in (403, 404) and not isinstance(exc, STOPS):
                return None
            raise
        if not isinstance(info, dict):
            return None
        return Identity(
            user_id=_text(info.get("user_id")),
            username=_text(info.get("preferred_username")),
            org_id=_text(info.get("organization_id")),
        )

    def user_id_for(self, username: str) -> str | None:
        """A user's id by username (when userinfo would not say who the user is)."""
        soql = format_soql("SELECT Id FROM User WHERE Username = {}", username)
        rows = self._rows(soql)
        return str(rows[0]["Id"]) if rows else None

    def versions(self) -> list[str]:
        """The API versions the org serves (`GET /services/data`)."""
        root = self._api.base_url.split("/services/data/", 1)[0] + "/services/data/"
        response = self._api.session.request("GET", root)
        body = response.json()
        return [str(v["version"]) for v in body if isinstance(v, dict) and v.get("version")]

    def daily_use(self) -> DailyUse | None:
        """Today's API requests (`GET limits`: DailyApiRequests Max and Remaining)."""
        limits = self._api.restful("limits") or {}
        daily = limits.get("DailyApiRequests") or {}
        if "Max" not in daily or "Remaining" not in daily:
            return None
        return DailyUse(limit=int(daily["Max"]), remaining=int(daily["Remaining"]))

    def describe(self, obj: str) -> Described | None:
        """An object's visible fields; None when the user may not read the object."""
        if obj not in self._described:
            try:
                result = self._api.restful(f"sobjects/{obj}/describe") or {}
            except ConnectorError as exc:
                if exc.status not in (403, 404) or isinstance(exc, STOPS):
                    raise
                self._described[obj] = None
                return None
            fields = {
                str(f["name"]): FieldInfo(
                    name=str(f["name"]),
                    type=str(f.get("type") or ""),
                    updateable=bool(f.get("updateable")),
                    createable=bool(f.get("createable")),
                    custom=bool(f.get("custom")),
                    picklist=tuple(
                        str(p["value"])
                        for p in f.get("picklistValues") or ()
                        if p.get("active", True) and p.get("value") is not None
                    ),
                    restricted=bool(f.get("restrictedPicklist")),
                    relationship=f.get("relationshipName") or None,
                    references=tuple(f.get("referenceTo") or ()),
                )
                for f in result.get("fields") or ()
            }
            self._described[obj] = Described(obj, fields)
        return self._described[obj]

    def forget(self, obj: str) -> None:
        self._described.pop(obj, None)

    def lead_statuses(self) -> list[LeadStatusValue]:
        rows = self._rows("SELECT ApiName, MasterLabel, IsConverted, IsDefault FROM LeadStatus")
        return [
            LeadStatusValue(
                api_name=str(row.get("ApiName") or ""),
                label=str(row.get("MasterLabel") or ""),
                converted=bool(row.get("IsConverted")),
                default=bool(row.get("IsDefault")),
            )
            for row in rows
        ]

    def _rows(self, soql: str) -> list[dict[str, Any]]:
        result = self._api.query_all(soql)
        return list(result.get("records") or [])

    # --- setup ------------------------------------------------------------------------

    def setup(
        self,
        mapping: CrmMapping,
        *,
        dry_run: bool,
        package_dir: Path = DEFAULT_PACKAGE_DIR,
        username: str | None = None,
    ) -> SetupResult:
        """Create each missing field, then grant the integration user access to them all.

        Idempotent: fields, the permission set, its field permissions and the
        assignment that exist are left alone (a field the user cannot see yet answers
        DUPLICATE_DEVELOPER_NAME, and counts as there). With `dry_run`, only reads are
        sent. When the org refuses to create fields (no "Customize Application"), the
        rest is written as a metadata deploy package into `package_dir` instead.
        """
        specs = wanted_fields(mapping)
        result = SetupResult(username=username)
        ready: list[FieldSpec] = []  # fields that exist once the field step is done
        for spec in specs:
            described = self.describe(spec.object)
            if described is None:
                result.actions.append(
                    SetupAction(
                        "field",
                        spec.object,
                        spec.name,
                        SetupStatus.FAILED,
                        f"the integration user cannot read {spec.object}: grant it Read on "
                        f"{spec.object} first",
                    )
                )
                continue
            if spec.name in described.fields:
                result.actions.append(
                    SetupAction("field", spec.object, spec.name, SetupStatus.EXISTS, spec.type_text)
                )
                ready.append(spec)
            elif dry_run:
                result.actions.append(
                    SetupAction(
                        "field", spec.object, spec.name, SetupStatus.WOULD_CREATE, spec.type_text
                    )
                )
            elif result.refused is not None:
                result.actions.append(
                    SetupAction(
                        "field", spec.object, spec.name, SetupStatus.FAILED, "in the deploy package"
                    )
                )
            else:
                action = self._create_field(spec, result)
                result.actions.append(action)
                if action.status in (SetupStatus.CREATED, SetupStatus.EXISTS):
                    ready.append(spec)
        if result.refused is None:
            result.actions += self._grant(specs, ready, result, dry_run=dry_run)
        else:
            result.actions.append(
                SetupAction(
                    "permission set",
                    "",
                    PERMISSION_SET,
                    SetupStatus.FAILED,
                    "not created: in the deploy package",
                )
            )
        if result.refused is not None:
            there = {(s.object, s.name) for s in ready}
            self._package(
                result, package_dir, [s for s in specs if (s.object, s.name) not in there], specs
            )
        return result

    def _package(
        self,
        result: SetupResult,
        package_dir: Path,
        create: Sequence[FieldSpec],
        grant: Sequence[FieldSpec],
    ) -> None:
        """Write what the org refused as a deploy package, for an admin to deploy."""
        if result.username is None:
            identity = self.identity()
            result.username = identity.username if identity else None
        result.package_dir = package_dir
        result.package_files = write_package(
            package_dir, create, grant, api_version=self.api_version, username=result.username
        )

    def _create_field(self, spec: FieldSpec, result: SetupResult) -> SetupAction:
        def action(status: SetupStatus, detail: str) -> SetupAction:
            return SetupAction("field", spec.object, spec.name, status, detail)

        # A real org takes Task and Event fields as Activity.X__c (Task.X__c is refused as
        # an unknown object); an API that knows no Activity is asked for Task.X__c next.
        names = [spec.full_name]
        if spec.metadata_object != spec.object:
            names.append(f"{spec.object}.{spec.name}")
        body = spec.tooling_body()
        sent = 0
        while names:
            body["FullName"] = names[0]
            sent += 1
            try:
                answer = self._api.toolingexecute("sobjects/CustomField", method="POST", data=body)
            except AmbiguousWriteError:
                if sent == 1:
                    continue  # sent again: had the first landed, the answer is a duplicate
                return action(SetupStatus.FAILED, "no answer from Salesforce, twice")
            except STOPS:
                raise
            except ConnectorError as exc:
                if is_duplicate(exc):
                    self.forget(spec.object)
                    return action(
                        SetupStatus.EXISTS,
                        f"{spec.type_text}; not visible to the integration user before the "
                        "permission set",
                    )
                if is_refusal(exc):
                    result.refused = exc.message
                    return action(SetupStatus.FAILED, f"refused: {exc.message}")
                if len(names) > 1 and _names_object(exc, names[0]):
                    names.pop(0)
                    continue
                return action(SetupStatus.FAILED, exc.message)
            if isinstance(answer, dict) and answer.get("success") is False:
                errors = answer.get("errors") or []
                return action(SetupStatus.FAILED, "; ".join(map(str, errors)) or "refused")
            self.forget(spec.object)
            return action(SetupStatus.CREATED, spec.type_text)
        return action(SetupStatus.FAILED, "not created")  # pragma: no cover - loop returns

    def _grant(
        self,
        specs: Sequence[FieldSpec],
        ready: Sequence[FieldSpec],
        result: SetupResult,
        *,
        dry_run: bool,
    ) -> list[SetupAction]:
        """The permission set, read+edit on every field the sync writes, the assignment."""
        actions: list[SetupAction] = []
        soql = format_soql("SELECT Id, Name FROM PermissionSet WHERE Name = {}", PERMISSION_SET)
        found = self._rows(soql)
        permset_id: str | None = str(found[0]["Id"]) if found else None
        if permset_id is not None:
            actions.append(SetupAction("permission set", "", PERMISSION_SET, SetupStatus.EXISTS))
        elif dry_run:
            actions.append(
                SetupAction("permission set", "", PERMISSION_SET, SetupStatus.WOULD_CREATE)
            )
        else:
            try:
                answer = self._api.restful(
                    "sobjects/PermissionSet",
                    method="POST",
                    json={"Name": PERMISSION_SET, "Label": PERMISSION_SET_LABEL},
                )
                permset_id = str((answer or {})["id"])
                actions.append(
                    SetupAction("permission set", "", PERMISSION_SET, SetupStatus.CREATED)
                )
            except STOPS:
                raise
            except ConnectorError as exc:
                if is_refusal(exc):
                    result.refused = exc.message
                again = self._rows(soql)
                if again:  # made by a request whose answer was lost, or meanwhile
                    permset_id = str(again[0]["Id"])
                    actions.append(
                        SetupAction("permission set", "", PERMISSION_SET, SetupStatus.EXISTS)
                    )
                else:
                    actions.append(
                        SetupAction(
                            "permission set", "", PERMISSION_SET, SetupStatus.FAILED, exc.message
                        )
                    )
        actions += self._field_permissions(permset_id, specs, ready, result, dry_run=dry_run)
        actions.append(self._assignment(permset_id, result, dry_run=dry_run))
        return actions

    def _field_permissions(
        self,
        permset_id: str | None,
        specs: Sequence[FieldSpec],
        ready: Sequence[FieldSpec],
        result: SetupResult,
        *,
        dry_run: bool,
    ) -> list[SetupAction]:
        have: dict[str, dict[str, Any]] = {}
        if permset_id is not None:
            soql = format_soql(
                "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
                "WHERE ParentId = {}",
                permset_id,
            )
            have = {str(row.get("Field")): row for row in self._rows(soql)}
        ready_names = {(s.object, s.name) for s in ready}
        actions: list[SetupAction] = []
        for spec in specs:

            def action(
                status: SetupStatus, detail: str = "", spec: FieldSpec = spec
            ) -> SetupAction:
                return SetupAction("field access", spec.object, spec.name, status, detail)

            row = have.get(spec.permission_name)
            if row is not None and row.get("PermissionsRead") and row.get("PermissionsEdit"):
                actions.append(action(SetupStatus.EXISTS, "read, edit"))
            elif dry_run:
                actions.append(action(SetupStatus.WOULD_CREATE, "read, edit"))
            elif permset_id is None:
                actions.append(action(SetupStatus.FAILED, f"no permission set {PERMISSION_SET}"))
            elif (spec.object, spec.name) not in ready_names:
                actions.append(action(SetupStatus.FAILED, "the field is not there"))
            elif row is not None:
                try:
                    self._api.restful(
                        f"sobjects/FieldPermissions/{row['Id']}",
                        method="PATCH",
                        json={"PermissionsRead": True, "PermissionsEdit": True},
                    )
                    actions.append(action(SetupStatus.CREATED, "read, edit (was read only)"))
                except STOPS:
                    raise
                except ConnectorError as exc:
                    if is_refusal(exc):
                        result.refused = exc.message
                    actions.append(action(SetupStatus.FAILED, exc.message))
            else:
                actions.append(self._create_field_permission(permset_id, spec, result))
        return actions

    def _create_field_permission(
        self, permset_id: str, spec: FieldSpec, result: SetupResult
    ) -> SetupAction:
        body = {
            "ParentId": permset_id,
            "SobjectType": spec.object,
            "Field": spec.permission_name,
            "PermissionsRead": True,
            "PermissionsEdit": True,
        }
        try:
            self._api.restful("sobjects/FieldPermissions", method="POST", json=body)
        except STOPS:
            raise
        except ConnectorError as exc:
            if is_duplicate(exc) or isinstance(exc, AmbiguousWriteError):
                soql = format_soql(
                    "SELECT Id, Field FROM FieldPermissions WHERE ParentId = {} AND Field = {}",
                    permset_id,
                    spec.permission_name,
                )
                if self._rows(soql):
                    return SetupAction(
                        "field access", spec.object, spec.name, SetupStatus.EXISTS, "read, edit"
                    )
            if is_refusal(exc):
                result.refused = exc.message
            return SetupAction(
                "field access", spec.object, spec.name, SetupStatus.FAILED, exc.message
            )
        return SetupAction(
            "field access", spec.object, spec.name, SetupStatus.CREATED, "read, edit"
        )

    def _assignment(
        self, permset_id: str | None, result: SetupResult, *, dry_run: bool
    ) -> SetupAction:
        username = result.username
        identity = self.identity()
        user_id = identity.user_id if identity else None
        who = (identity.username if identity else None) or username
        result.username = who
        if user_id is None and username:
            user_id = self.user_id_for(username)
        name = who or user_id or "integration user"

        def action(status: SetupStatus, detail: str = "") -> SetupAction:
            return SetupAction("assignment", PERMISSION_SET, name, status, detail)

        if user_id is None:
            return action(
                SetupStatus.FAILED,
                "cannot tell who the integration user is (userinfo not served to this token): "
                f"assign {PERMISSION_SET} to it in Setup, or `sf org assign permset --name "
                f"{PERMISSION_SET} --on-behalf-of <integration username>`",
            )
        if permset_id is None:
            if dry_run:
                return action(SetupStatus.WOULD_CREATE)
            return action(SetupStatus.FAILED, f"no permission set {PERMISSION_SET}")
        soql = format_soql(
            "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = {} AND PermissionSetId = {}",
            user_id,
            permset_id,
        )
        if self._rows(soql):
            return action(SetupStatus.EXISTS)
        if dry_run:
            return action(SetupStatus.WOULD_CREATE)
        try:
            self._api.restful(
                "sobjects/PermissionSetAssignment",
                method="POST",
                json={"AssigneeId": user_id, "PermissionSetId": permset_id},
            )
        except STOPS:
            raise
        except ConnectorError as exc:
            if self._rows(soql):
                return action(SetupStatus.EXISTS)
            if is_refusal(exc):
                result.refused = exc.message
            return action(SetupStatus.FAILED, exc.message)
        return action(SetupStatus.CREATED)


def _names_object(exc: ConnectorError, full_name: str) -> bool:
    """Whether a create was refused for the object its FullName names."""
    obj = full_name.partition(".")[0]
    return exc.code in ("FIELD_INTEGRITY_EXCEPTION", "INVALID_TYPE", "NOT_FOUND") and (
        obj.lower() in exc.message.lower() or "fullname" in exc.message.lower()
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# --- the metadata deploy package -------------------------------------------------------


def deploy_steps(directory: str, username: str | None) -> list[str]:
    """How an admin deploys the package and grants it (`sf` CLI v2 commands)."""
    user = username or "<the integration user's username>"
    return [
        "Deploy as an admin with the Salesforce CLI (sf), then check again:",
        f"  1. cd {directory}",
        "  2. sf project deploy start --manifest package.xml --target-org <admin org alias>",
        f"  3. sf org assign permset --name {PERMISSION_SET} --on-behalf-of {user} "
        "--target-org <admin org alias>",
        "  4. mqlsync doctor salesforce",
    ]


def _xml_document(root: str, lines: Sequence[str]) -> str:
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<{root} xmlns="{METADATA_NS}">',
            *lines,
            f"</{root}>",
            "",
        ]
    )


def permission_set_xml(specs: Sequence[FieldSpec]) -> str:
    """The source-format `permissionsets/mqlsync_integration.permissionset-meta.xml`."""
    lines = ["    <description>Read and edit on the fields mqlsync writes.</description>"]
    for name in sorted({s.permission_name for s in specs}):
        lines += [
            "    <fieldPermissions>",
            "        <editable>true</editable>",
            f"        <field>{escape(name)}</field>",
            "        <readable>true</readable>",
            "    </fieldPermissions>",
        ]
    lines += [
        "    <hasActivationRequired>false</hasActivationRequired>",
        f"    <label>{PERMISSION_SET_LABEL}</label>",
    ]
    return _xml_document("PermissionSet", lines)


def package_xml(specs: Sequence[FieldSpec], api_version: str) -> str:
    """The manifest: each CustomField (Activity.X for Task fields) and the permission set."""
    members = sorted({s.full_name for s in specs})
    lines = ["    <types>"] if members else []
    lines += [f"        <members>{escape(m)}</members>" for m in members]
    lines += ["        <name>CustomField</name>", "    </types>"] if members else []
    lines += ["    <types>"]
    lines += [f"        <members>{PERMISSION_SET}</members>", "        <name>PermissionSet</name>"]
    lines += ["    </types>", f"    <version>{escape(api_version)}</version>"]
    return _xml_document("Package", lines)


def write_package(
    directory: Path,
    create: Sequence[FieldSpec],
    grant: Sequence[FieldSpec],
    *,
    api_version: str = "59.0",
    username: str | None = None,
) -> list[str]:
    """Write a deployable source-format project; the paths written, relative to it.

    `create`: the fields to create (those the org lacks, or does not show the user);
    `grant`: every field the permission set gives read and edit on.

    A minimal SFDX project (`sfdx-project.json` with the directory itself as its
    package directory), so that `sf project deploy start --manifest package.xml` runs
    from inside it; `.forceignore` keeps the manifest out of the source it scans.
    """
    files: dict[str, str] = {
        "sfdx-project.json": json.dumps(
            {
                "packageDirectories": [{"path": ".", "default": True}],
                "sourceApiVersion": api_version,
            },
            indent=2,
        )
        + "\n",
        ".forceignore": "package.xml\nREADME.txt\n",
        "README.txt": "\n".join(deploy_steps(".", username)) + "\n",
        "package.xml": package_xml(create, api_version),
        f"permissionsets/{PERMISSION_SET}.permissionset-meta.xml": permission_set_xml(grant),
    }
    for spec in create:
        files[f"objects/{spec.metadata_object}/fields/{spec.name}.field-meta.xml"] = (
            spec.field_xml()
        )
    directory.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


# --- lead statuses: the closest org value for each canonical key -----------------------

# A canonical key → (words any of which marks a match, words that rule a value out), in
# order of preference. Stage keys borrow the lead status key of the same meaning.
_HINTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "new": (("open", "new", "not contacted"), ()),
    "working": (("working", "contacted", "in progress", "attempt"), ("not contacted",)),
    "mql": (("marketing qualified", "mql"), ()),
    "sql": (
        ("sales qualified", "sql", "sales accepted", "qualified"),
        ("unqualified", "not qualified", "disqualified", "marketing qualified"),
    ),
    "recycled": (("recycl", "nurtur"), ()),
    "rejected": (
        ("unqualified", "disqualified", "rejected", "not converted", "junk", "lost"),
        (),
    ),
    "converted": (("converted",), ("not converted",)),
}
_STAGE_KEYS = {
    "subscriber": "new",
    "lead": "new",
    "mql": "mql",
    "sql": "sql",
    "opportunity": "converted",
    "customer": "converted",
}


def closest_status(
    key: str, statuses: Sequence[LeadStatusValue], taken: Iterable[str] = ()
) -> LeadStatusValue | None:
    """The org's status closest in meaning to a canonical key (None: no counterpart).

    new: the org's default status; converted: its converted one; others by words in the
    label or API name ("Working…", "Closed - Not Converted" or "Unqualified" for rejected).
    Values in `taken` (given to other keys already) are passed over.
    """
    used = set(taken)
    free = [s for s in statuses if s.value not in used]
    if key == "new":
        found = next((s for s in free if s.default), None)
        if found is not None:
            return found
    if key == "converted":
        found = next((s for s in free if s.converted), None)
        if found is not None:
            return found
    words, unless = _HINTS.get(key, ((key.replace("_", " "),), ()))
    for word in words:
        for status in free:
            text = " ".join(status.names()).lower()
            if word in text and not any(u in text for u in unless):
                if key != "converted" and status.converted:
                    continue  # a converted status is set by converting a lead, never written
                return status
    return None


@dataclass(frozen=True)
class StatusProposal:
    """A stage and lead status mapping for this org, as YAML to paste."""

    text: str
    unmatched: list[str]  # "stage.write.mql", "lead_status.recycled": no counterpart here


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML scalar


def propose_statuses(
    mapping: CrmMapping, statuses: Sequence[LeadStatusValue]
) -> StatusProposal | None:
    """The mapping's stage and lead status sections with each value the org lacks
    replaced by the closest org value; None when the org has every mapped value."""
    have = {name for s in statuses for name in s.names()}
    by_name = {name: s for s in statuses for name in s.names()}
    stage, status = mapping.stage, mapping.lead_status
    stage_on_status = stage.field == status.field
    missing = [v for v in status.values.values() if v not in have]
    if stage_on_status:
        missing += [v for v in stage.write.values() if v not in have]
    if not missing:
        return None
    unmatched: list[str] = []
    # Lead status keys: each org value once; keys already matched keep theirs.
    chosen: dict[str, str] = {}
    for key in status.values:
        found = next((c for c in status.candidates(key) if c in have), None)
        if found is not None:
            chosen[key] = by_name[found].value
    for key in status.values:
        if key in chosen:
            continue
        match = closest_status(key, statuses, chosen.values())
        if match is not None:
            chosen[key] = match.value
        else:
            unmatched.append(f"lead_status.{key}")
    lines = ["stage:", f"  field: {stage.field}"]
    if stage.object:
        lines.append(f"  object: {stage.object}")
    fallback = stage.fallback_field
    stage_obj = stage.object or mapping.contacts[0].object
    stage_written: dict[str, str | None] = {}
    for key, value in stage.write.items():
        if not stage_on_status or value in have:
            stage_written[key.value] = by_name[value].value if value in by_name else value
            continue
        match = closest_status(_STAGE_KEYS.get(key.value, key.value), statuses)
        stage_written[key.value] = match.value if match is not None else None
        if match is None:
            unmatched.append(f"stage.write.{key.value}")
    needs_fallback = any(v is None for v in stage_written.values())
    if fallback or needs_fallback:
        name = fallback or "Lifecycle_Stage__c"
        note = "" if fallback else "  # new: created by `mqlsync crm-setup salesforce`"
        lines.append(f"  fallback_field: {name}{note}")
    lines.append("  write:")
    for key, value in stage.write.items():
        proposed = stage_written[key.value]
        if proposed is None:
            lines.append(
                f"    {key.value}: {_q(value)}  # no counterpart here: while one is missing, "
                f"the stage goes to {stage_obj}.{fallback or 'Lifecycle_Stage__c'}"
            )
        else:
            was = f"  # was {_q(value)}" if proposed != value else ""
            lines.append(f"    {key.value}: {_q(proposed)}{was}")
    if stage.read:
        lines.append("  read:")
        lines += [
            f"    {_q(value)}: {read.value if read is not None else 'null'}"
            for value, read in stage.read.items()
        ]
    lines += ["lead_status:", f"  field: {status.field}"]
    if status.object:
        lines.append(f"  object: {status.object}")
    lines.append("  values:")
    for key, value in status.values.items():
        if key not in chosen:
            lines.append(f"    # {key}: no counterpart in this org (was {_q(value)})")
        else:
            was = f"  # was {_q(value)}" if chosen[key] != value else ""
            lines.append(f"    {key}: {_q(chosen[key])}{was}")
    taken = {value: key for key, value in chosen.items()}
    also = {
        key: [v for v in values if taken.get(v, key) == key]
        for key, values in status.also.items()
        if key in chosen
    }
    also = {key: values for key, values in also.items() if values}
    if also:
        lines.append("  also:")
        lines += [
            f"    {key}: [{', '.join(_q(v) for v in values)}]" for key, values in also.items()
        ]
    return StatusProposal("\n".join(lines), unmatched)
