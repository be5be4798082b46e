"""Mapping files (`mappings/<crm>.yaml`): schema, loader with line-precise errors, lookups.

A mapping is data: which CRM field holds which canonical field, which CRM activity
becomes which activity type, which stage and status values to read and write, where
score fields and task fields go. Users add custom properties by editing the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.errors import MappingError
from scoring.records import (
    ACTIVITY_ATTRIBUTES,
    CONTACT_FIELDS,
    OUTCOME_FIELDS,
    ActivityType,
    Crm,
    LifecycleStage,
)
from scoring.writes import WRITE_FIELDS, Priority
from scoring.yaml_lines import (
    MAX_BYTES,
    Located,
    Problem,
    YamlDocumentError,
    did_you_mean,
    dotted,
    line_for,
    load_with_lines,
    validation_problems,
)
from scoring.yaml_lines import Path as Path_

MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"

# crm and crm_id come from the record's identity, never from a mapped field.
MAPPABLE_CONTACT_FIELDS: frozenset[str] = (CONTACT_FIELDS | OUTCOME_FIELDS) - {"crm", "crm_id"}
TASK_FIELDS: frozenset[str] = frozenset(
    {"key", "contact_id", "owner_id", "subject", "body", "due_at", "priority"}
)
# Objects only one CRM has: a file naming the other CRM's objects was copied from the
# other CRM's mapping (or given where the other one is expected).
CRM_OBJECTS: dict[Crm, frozenset[str]] = {
    Crm.HUBSPOT: frozenset(
        {"contacts", "companies", "deals", "tasks", "meetings", "calls", "emails", "notes"}
    ),
    Crm.SALESFORCE: frozenset(
        {"Lead", "Contact", "Account", "Opportunity", "Task", "Event", "CampaignMember"}
    ),
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _no_duplicate_targets(fields: dict[str, str], what: str) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, crm_field in fields.items():
        if crm_field in seen:
            raise ValueError(f"{what} {crm_field!r} is mapped twice ({seen[crm_field]}, {name})")
        seen[crm_field] = name
    return fields


class ContactSource(_Strict):
    """One CRM object that holds contacts (HubSpot: contacts; Salesforce: Lead, Contact)."""

    object: str
    id_prefix: str | None = None  # Salesforce key prefix (00Q, 003) to route writes by id
    fields: dict[str, str]
    properties: dict[str, str] = Field(default_factory=dict)
    # For an object without the stage field: the stage its records are always in
    # (Salesforce Contacts are converted leads, past MQL: scores are written, stages not).
    fixed_stage: LifecycleStage | None = None

    @field_validator("fields")
    @classmethod
    def _canonical(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name == "lifecycle_stage":
                raise ValueError("lifecycle_stage is read through the stage section, not fields")
            if name not in MAPPABLE_CONTACT_FIELDS:
                raise ValueError(
                    f"unknown canonical field {name!r}"
                    + (
                        did_you_mean(name, MAPPABLE_CONTACT_FIELDS)
                        or f"; known: {sorted(MAPPABLE_CONTACT_FIELDS)}"
                    )
                )
        return _no_duplicate_targets(value, "CRM field")

    @model_validator(mode="after")
    def _properties_distinct(self) -> ContactSource:
        for name in self.properties:
            if name in CONTACT_FIELDS | OUTCOME_FIELDS:
                raise ValueError(f"property {name!r} is a canonical field; map it under fields")
        _no_duplicate_targets({**self.fields, **self.properties}, "CRM field")
        return self

    def crm_fields(self, extra: tuple[str, ...] = ()) -> list[str]:
        """Every CRM field a pull must request for this object."""
        return list(dict.fromkeys([*self.fields.values(), *self.properties.values(), *extra]))


class StageMapping(_Strict):
    """The CRM field holding the lifecycle stage, and its values."""

    field: str
    object: str | None = None  # only this object has the field (Salesforce: Lead)
    write: dict[LifecycleStage, str]
    # CRM values that read as a stage without being written (e.g. "Recycled" → lead).
    read: dict[str, LifecycleStage | None] = Field(default_factory=dict)
    # A field of the same object that holds the canonical stage name ("mql") where the
    # CRM has no value of `field` for a stage (a stock Salesforce org has no "Marketing
    # Qualified" lead status): the stage is then written there and `field` left alone.
    fallback_field: str | None = None

    def from_crm(self, value: str | None) -> LifecycleStage | None:
        """The canonical stage for a CRM value; None for values with no canonical stage."""
        if value in (None, ""):
            return None
        if value in self.read:
            return self.read[value]
        for stage, crm_value in self.write.items():
            if crm_value == value:
                return stage
        return None


class LeadStatusMapping(_Strict):
    """The CRM's lead status field and the values behind canonical keys (mql, recycled, ...)."""

    field: str
    object: str | None = None
    values: dict[str, str]
    # Other values that read as a key, in order of preference; where the CRM lacks the
    # value in `values`, the first of these it has is written instead (a stock
    # Salesforce org has "Closed - Not Converted" where a configured one has "Unqualified").
    also: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _distinct(cls, value: dict[str, str]) -> dict[str, str]:
        return _no_duplicate_targets(value, "status value")

    @model_validator(mode="after")
    def _also_known(self) -> LeadStatusMapping:
        for key in self.also:
            if key not in self.values:
                raise Located(f"also names {key!r}, which values does not map", "also", key)
        seen = {value: key for key, value in self.values.items()}
        for key, values in self.also.items():
            for index, value in enumerate(values):
                if seen.setdefault(value, key) != key:
                    raise Located(f"{value!r} already reads as {seen[value]!r}", "also", key, index)
        return self

    def candidates(self, key: str) -> list[str]:
        """The CRM values that read as `key`, the preferred one first."""
        first = self.values.get(key)
        return [*([first] if first is not None else []), *self.also.get(key, [])]

    def key_for(self, crm_value: str | None) -> str | None:
        for key in self.values:
            if crm_value in self.candidates(key):
                return key
        return None


class TaskMapping(_Strict):
    """Where a handoff task's fields go, plus fixed values and priority names."""

    object: str
    fields: dict[str, str]
    constants: dict[str, str] = Field(default_factory=dict)
    priorities: dict[Priority, str]

    @field_validator("fields")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name not in TASK_FIELDS:
                raise ValueError(f"unknown task field {name!r}; known: {sorted(TASK_FIELDS)}")
        missing = {"key", "subject", "due_at"} - set(value)
        if missing:
            raise ValueError(f"task fields {sorted(missing)} must be mapped")
        return _no_duplicate_targets(value, "CRM field")


SourceKind = Literal[
    "events_api", "email_events", "form_submissions", "marketing_events", "crm_object"
]
HUBSPOT_KINDS: tuple[str, ...] = get_args(SourceKind)
# Marketing email event types the email events API documents.
EMAIL_EVENT_TYPES = frozenset(
    {
        "SENT", "DROPPED", "PROCESSED", "DELIVERED", "DEFERRED", "BOUNCE", "OPEN", "CLICK",
        "PRINT", "FORWARD", "STATUSCHANGE", "SPAMREPORT", "SUPPRESSED", "UNBOUNCE",
    }
)  # fmt: skip
PARTICIPATION_STATES = frozenset({"REGISTERED", "ATTENDED", "CANCELLED", "NO_SHOW", "EMPTY"})
# The fields each HubSpot source kind offers its rules (besides properties, for events
# and CRM objects, and `values.<field>` of a form submission).
SOURCE_FIELDS: dict[str, frozenset[str]] = {
    "events_api": frozenset({"event", "event_type"}),
    "email_events": frozenset(
        {
            "type",
            "recipient",
            "emailCampaignId",
            "url",
            "subject",
            "category",
            "source",
            "portalSubscriptionStatus",
            "filteredEvent",
            "appName",
        }
    ),
    "form_submissions": frozenset({"form", "form_id", "form_name", "page_url"}),
    "marketing_events": frozenset(
        {
            "state",
            "event_id",
            "event_name",
            "event_type",
            "external_event_id",
            "duration_seconds",
            "attendance_percentage",
        }
    ),
}


class ActivitySource(_Strict):
    """A CRM object or event type that yields activities.

    HubSpot sources say which API they read (`kind`); Salesforce sources are SObjects
    named by their key and have no kind.
    - events_api: one event type of the Events API (Enterprise hubs): `event` is a
      standard type (`e_visited_page`) or a custom event's short name (`webinar_attended`,
      which the portal calls `pe{portalId}_webinar_attended`); default: the source's key.
    - email_events: marketing email events; `event_types` limits the types read.
    - form_submissions: submissions of every form; rules match `form` (GUID or name).
    - marketing_events: participations in marketing events; rules match `state`.
    - crm_object: a CRM engagement object (`object`: meetings, calls, emails,
      communications), with its contacts from the v4 associations.
    """

    kind: SourceKind | None = None
    object: str | None = None  # crm_object: the object type
    event: str | None = None  # events_api: the event name (default: the source's key)
    event_types: list[str] = Field(default_factory=list)  # email_events: only these types
    contact: list[str] = Field(default_factory=list)  # first non-empty field is the contact id
    # Field holding the time (events carry their own); a list: the first non-empty one
    # (a Salesforce all-day Event has an ActivityDate and no ActivityDateTime).
    occurred_at: str | list[str] | None = None
    fields: list[str] = Field(default_factory=list)  # extra fields to request

    @property
    def time_fields(self) -> list[str]:
        """The fields holding the time, in order of preference (none: the source's default)."""
        if self.occurred_at is None:
            return []
        return [self.occurred_at] if isinstance(self.occurred_at, str) else list(self.occurred_at)

    @model_validator(mode="after")
    def _fits_kind(self) -> ActivitySource:
        if isinstance(self.occurred_at, list) and self.kind is not None:
            raise Located("a list of time fields is for Salesforce sources", "occurred_at")
        if self.object is not None and self.kind != "crm_object":
            raise Located("object is only for kind crm_object", "object")
        if self.kind == "crm_object" and not self.object:
            raise Located(
                "kind crm_object needs object (meetings, calls, emails, communications, …)"
            )
        if self.event is not None and self.kind != "events_api":
            raise Located("event is only for kind events_api", "event")
        if self.event_types and self.kind != "email_events":
            raise Located("event_types is only for kind email_events", "event_types")
        for index, name in enumerate(self.event_types):
            if name not in EMAIL_EVENT_TYPES:
                raise Located(
                    f"unknown email event type {name!r}"
                    + (
                        did_you_mean(name, EMAIL_EVENT_TYPES)
                        or f"; known: {sorted(EMAIL_EVENT_TYPES)}"
                    ),
                    "event_types",
                    index,
                )
        if self.kind in ("email_events", "form_submissions", "marketing_events") and (
            self.contact or self.occurred_at
        ):
            raise Located(
                f"kind {self.kind} finds its own contact and time",
                "contact" if self.contact else "occurred_at",
            )
        return self


Condition = dict[str, str | bool]


class ActivityRule(_Strict):
    """Records of `source` matching `when` become `type`, with attributes from CRM fields."""

    source: str
    when: Condition = Field(default_factory=dict)
    type: ActivityType
    set: dict[str, str] = Field(default_factory=dict)  # fixed attribute values
    attributes: dict[str, str] = Field(default_factory=dict)  # attribute → CRM field

    def matches(self, get: Any) -> bool:
        return all(_equal(get(name), want) for name, want in self.when.items())


class ActivitySkip(_Strict):
    """Records of `source` matching `when` are not activities (e.g. our own handoff tasks)."""

    source: str
    when: Condition
    reason: str

    def matches(self, get: Any) -> bool:
        return all(_equal(get(name), want) for name, want in self.when.items())


def _equal(value: Any, want: str | bool) -> bool:
    if isinstance(want, bool):
        return bool(value) is want
    if isinstance(value, tuple):
        # A field with several names for one thing: a form by its GUID or its name.
        return any(v is not None and str(v) == want for v in value)
    return value is not None and str(value) == want


def _check_condition(source: str, decl: ActivitySource, when: Condition) -> None:
    """Refuse a rule condition the source can never meet (a typo in a type or state)."""
    kind = decl.kind
    if kind in ("email_events", "form_submissions", "marketing_events"):
        known = SOURCE_FIELDS[kind]
        for name in when:
            if name not in known and not (
                kind == "form_submissions" and name.startswith("values.")
            ):
                raise Located(
                    f"{kind} source {source!r} has no field {name!r}"
                    + (did_you_mean(name, known) or f"; fields: {sorted(known)}"),
                    "when",
                    name,
                )
    checks = {
        "email_events": ("type", EMAIL_EVENT_TYPES),
        "marketing_events": ("state", PARTICIPATION_STATES),
    }
    if kind in checks:
        field, values = checks[kind]
        want = when.get(field)
        if isinstance(want, str) and want not in values:
            raise Located(
                f"{kind} source {source!r}: {field} {want!r} never occurs"
                + (did_you_mean(want, values) or f"; one of {sorted(values)}"),
                "when",
                field,
            )
        if (
            kind == "email_events"
            and isinstance(want, str)
            and decl.event_types
            and want not in decl.event_types
        ):
            raise Located(
                f"email_events source {source!r} reads only {decl.event_types}: "
                f"type {want!r} never arrives",
                "when",
                field,
            )


class Mapping(_Strict):
    """A whole mapping file for one CRM."""

    crm: Crm
    contacts: list[ContactSource] = Field(min_length=1)
    # Canonical fields knowingly not mapped, with the reason.
    not_mapped: dict[str, str] = Field(default_factory=dict)
    stage: StageMapping
    lead_status: LeadStatusMapping
    write_back: dict[str, str]
    tasks: TaskMapping
    activity_sources: dict[str, ActivitySource]
    activities: list[ActivityRule]
    skip_activities: list[ActivitySkip] = Field(default_factory=list)
    # `Object.Field` names the account may lack: a missing one is dropped from the pulls
    # with one warning (its value reads as empty), where any other missing field stops
    # the run before it starts.
    optional: list[str] = Field(default_factory=list)

    @field_validator("optional")
    @classmethod
    def _optional_named(cls, value: list[str]) -> list[str]:
        for index, name in enumerate(value):
            head, dot, rest = name.partition(".")
            if not (head and dot and rest):
                raise Located(f"{name!r}: name an optional field as Object.Field", index)
        return value

    def is_optional(self, obj: str, name: str) -> bool:
        return f"{obj}.{name}" in self.optional

    @field_validator("not_mapped")
    @classmethod
    def _not_mapped_known(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name not in MAPPABLE_CONTACT_FIELDS:
                raise ValueError(f"unknown canonical field {name!r}")
        return value

    @field_validator("write_back")
    @classmethod
    def _write_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - WRITE_FIELDS
        if unknown:
            raise ValueError(
                f"unknown write-back field(s) {sorted(unknown)}; known: {sorted(WRITE_FIELDS)}"
            )
        missing = WRITE_FIELDS - set(value)
        if missing:
            raise ValueError(f"write-back field(s) {sorted(missing)} have no CRM property")
        return _no_duplicate_targets(value, "CRM property")

    @model_validator(mode="after")
    def _sources_have_kinds(self) -> Mapping:
        for name, decl in self.activity_sources.items():
            if self.crm is Crm.HUBSPOT and decl.kind is None:
                raise Located(
                    f"activity source {name!r} needs a kind: one of {list(HUBSPOT_KINDS)} "
                    "(an Events API type is `kind: events_api`, a CRM object "
                    "`kind: crm_object` with `object:`)",
                    "activity_sources",
                    name,
                )
            if self.crm is Crm.SALESFORCE and decl.kind is not None:
                raise Located(
                    f"activity source {name!r}: kind {decl.kind!r} is a HubSpot source; "
                    "a Salesforce source is an SObject named by its key",
                    "activity_sources",
                    name,
                    "kind",
                )
        return self

    @model_validator(mode="after")
    def _rules_name_sources(self) -> Mapping:
        sections: list[tuple[str, Sequence[ActivityRule | ActivitySkip]]] = [
            ("activities", self.activities),
            ("skip_activities", self.skip_activities),
        ]
        for section, rules in sections:
            for index, rule in enumerate(rules):
                if rule.source not in self.activity_sources:
                    raise Located(
                        f"activity source {rule.source!r} is not declared under activity_sources",
                        section,
                        index,
                        "source",
                    )
                try:
                    _check_condition(rule.source, self.activity_sources[rule.source], rule.when)
                except Located as exc:
                    raise Located(str(exc), section, index, *exc.loc) from None
        for index, rule in enumerate(self.activities):
            for part, names in (("set", rule.set), ("attributes", rule.attributes)):
                for name in names:
                    if name in {"crm", "crm_id", "contact_id", "type", "occurred_at", "raw_type"}:
                        raise Located(
                            f"activity attribute {name!r} is reserved",
                            "activities",
                            index,
                            part,
                            name,
                        )
        return self

    def source(self, obj: str) -> ContactSource:
        for source in self.contacts:
            if source.object == obj:
                return source
        raise KeyError(obj)

    def source_for_id(self, crm_id: str) -> ContactSource:
        """The contact object an id belongs to (by key prefix); the first one if unprefixed."""
        for source in self.contacts:
            if source.id_prefix and crm_id.startswith(source.id_prefix):
                return source
        return self.contacts[0]

    def rules_for(self, source: str) -> list[ActivityRule]:
        return [rule for rule in self.activities if rule.source == source]

    def sources_of(self, *kinds: str) -> dict[str, ActivitySource]:
        """The activity sources of these kinds, by name, in file order."""
        return {n: d for n, d in self.activity_sources.items() if d.kind in kinds}

    def activity_fields(self, source: str) -> list[str]:
        """CRM fields a pull must request for one activity source."""
        decl = self.activity_sources[source]
        names: list[str] = [*decl.contact, *decl.fields]
        names.extend(decl.time_fields)
        rules: list[ActivityRule | ActivitySkip] = [
            *self.rules_for(source),
            *(s for s in self.skip_activities if s.source == source),
        ]
        for rule in rules:
            names.extend(rule.when)
            if isinstance(rule, ActivityRule):
                names.extend(rule.attributes.values())
        return list(dict.fromkeys(names))

    def coverage(self) -> dict[str, Literal["mapped", "not_mapped", "missing"]]:
        """Each canonical contact field: mapped on every object, knowingly left out, or missing."""
        result: dict[str, Literal["mapped", "not_mapped", "missing"]] = {}
        for name in sorted(MAPPABLE_CONTACT_FIELDS):
            if name == "lifecycle_stage":
                covered = all(self.stage.object in (None, s.object) for s in self.contacts)
            else:
                covered = all(name in s.fields for s in self.contacts)
            if covered:
                result[name] = "mapped"
            elif name in self.not_mapped:
                result[name] = "not_mapped"
            else:
                result[name] = "missing"
        return result


# --- loading with line numbers -------------------------------------------------------


def _keys_at(path: Path_) -> list[str]:
    """The keys allowed at a path, for suggestions (sections by their path)."""
    shape = tuple("#" if isinstance(part, int) else part for part in path)
    sections: dict[tuple[str, ...], type[BaseModel]] = {
        (): Mapping,
        ("contacts", "#"): ContactSource,
        ("stage",): StageMapping,
        ("lead_status",): LeadStatusMapping,
        ("tasks",): TaskMapping,
        ("activities", "#"): ActivityRule,
        ("skip_activities", "#"): ActivitySkip,
    }
    if len(shape) == 2 and shape[0] == "activity_sources":
        return list(ActivitySource.model_fields)
    section = sections.get(shape)
    return list(section.model_fields) if section is not None else []


def _read(file: Path) -> bytes:
    try:
        with file.open("rb") as handle:
            # One byte past the limit is enough to refuse the file without reading it all.
            return handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise MappingError(f"{file}: cannot read the mapping: {exc.strerror or exc}") from None


def load_mapping(path: str | Path, *, crm: Crm | None = None) -> Mapping:
    """Load and validate a mapping file; errors name the file and line.

    With `crm`, the file must be that CRM's mapping: a Salesforce mapping where the
    HubSpot one is expected (or the reverse) is refused before anything uses it.
    """
    file = Path(path)
    try:
        data, marks = load_with_lines(_read(file), str(file))
    except YamlDocumentError as exc:
        raise MappingError(str(exc)) from None
    if data is None:
        raise MappingError(f"{file}:1: the file is empty: a mapping starts with `crm:`")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise MappingError(
            f"{file}:{marks.get((), 1)}: a mapping file is a YAML mapping "
            f"(crm:, contacts:, …), not {kind}"
        )
    declared = data.get("crm")
    if crm is not None and declared in [other.value for other in Crm] and declared != crm.value:
        raise MappingError(
            f"{file}:{marks.get(('crm',), 1)}: crm: this is the {declared} mapping, but the "
            f"{crm.value} mapping is expected here: point the {crm.value} mapping setting "
            f"(MQLSYNC_{crm.value.upper()}_MAPPING) at a {crm.value} file"
        )
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, marks, _keys_at)
        raise MappingError("\n".join(problem.render(str(file)) for problem in problems)) from None
    others = _objects_of_other_crm(mapping, marks)
    if others:
        raise MappingError("\n".join(problem.render(str(file)) for problem in others))
    return mapping


def _objects_of_other_crm(mapping: Mapping, marks: dict[Path_, int]) -> list[Problem]:
    others = {other: objects for other, objects in CRM_OBJECTS.items() if other is not mapping.crm}
    named: list[tuple[Path_, str]] = [
        (("contacts", index, "object"), source.object)
        for index, source in enumerate(mapping.contacts)
    ]
    named.append((("tasks", "object"), mapping.tasks.object))
    if mapping.stage.object is not None:
        named.append((("stage", "object"), mapping.stage.object))
    problems: list[Problem] = []
    for where, obj in named:
        for other, objects in others.items():
            if obj in objects:
                problems.append(
                    Problem(
                        line_for(marks, where) or 1,
                        dotted(where),
                        f"{obj!r} is a {other.value} object, but this file says crm: "
                        f"{mapping.crm.value}: use the {other.value} mapping, "
                        f"or name {mapping.crm.value} objects",
                    )
                )
    return problems


def default_mapping(crm: Crm) -> Mapping:
    """The mapping shipped in `mappings/<crm>.yaml`."""
    return load_mapping(MAPPINGS_DIR / f"{crm.value}.yaml", crm=crm)


def missing_properties(
    required: dict[str, list[str]], available: dict[str, set[str]]
) -> Iterator[str]:
    """Messages for CRM fields the mapping names that the CRM's schema does not have."""
    for obj, names in required.items():
        have = available.get(obj, set())
        for name in names:
            if name.split(".", 1)[0] not in have and name not in have:
                yield f"{obj}.{name} is named in the mapping but does not exist in the CRM"


__all__ = [
    "ACTIVITY_ATTRIBUTES",
    "ActivityRule",
    "ActivitySkip",
    "ActivitySource",
    "ContactSource",
    "Mapping",
    "SourceKind",
    "default_mapping",
    "load_mapping",
]
