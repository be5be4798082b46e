"""What one Salesforce org makes of a mapping: fields it lacks, statuses it has, where the
stage goes.

A mapping is written for many orgs; each org is read once (describe and `LeadStatus`)
before the first pull, and the result is an `OrgPlan`: optional fields the org lacks
are left out of every query, lead status keys take the org's own values, and the stage
goes to `Status` when the org has a status for every stage, else to the mapping's
fallback field. A missing field that is not optional stops the run before it starts.
Pure functions of the mapping and what the org answered: no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from connectors.mapping import Mapping, StageMapping

# Lead fields a converted lead is recognised by (standard on every org's Lead).
CONVERSION_FIELDS = ("IsConverted", "ConvertedContactId", "ConvertedDate")


@dataclass(frozen=True)
class Described:
    """What the check needs from one describe: field names and facts, relationship targets.

    A field the integration user may not read is absent from describe, as from SOQL.
    """

    fields: set[str]
    relationships: dict[str, tuple[str, ...]]
    updateable: set[str] = field(default_factory=set)
    createable: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class LeadStatusRow:
    value: str  # ApiName (what Lead.Status holds)
    label: str
    converted: bool = False
    default: bool = False


@dataclass
class OrgPlan:
    """The mapping as this org can run it."""

    mapping: Mapping  # the stage section as written to this org
    absent: set[tuple[str, str]] = field(default_factory=set)  # optional (object, field)s
    status_values: dict[str, str] = field(default_factory=dict)  # lead status key → value
    stage_to_status: bool = True  # False: the stage goes to the fallback field
    original_stage: StageMapping | None = None  # how `Status` reads, in fallback mode
    warnings: list[str] = field(default_factory=list)

    def present(self, obj: str, names: Iterable[str]) -> list[str]:
        """`names` less the optional fields this org lacks."""
        return [n for n in dict.fromkeys(names) if (obj, n) not in self.absent]


FieldCheck = dict[str, list[str]]  # object → field names wanted
# A describe per object (the connector asks each object once and keeps the answer).
DescribeFn = Callable[[str], Described]


def wanted_fields(mapping: Mapping) -> tuple[FieldCheck, FieldCheck]:
    """(fields read, fields written) by object, as the mapping names them."""
    read: FieldCheck = {}
    written: FieldCheck = {}
    for source in mapping.contacts:
        names = source.crm_fields()
        if mapping.stage.object in (None, source.object):
            names.append(mapping.stage.field)
        if mapping.lead_status.object in (None, source.object):
            names.append(mapping.lead_status.field)
        read[source.object] = names
        written[source.object] = list(mapping.write_back.values())
    for name in mapping.activity_sources:
        read.setdefault(name, []).extend(mapping.activity_fields(name))
    tasks = mapping.tasks
    written.setdefault(tasks.object, []).extend([*tasks.fields.values(), *tasks.constants])
    return read, written


def field_problem(obj: str, name: str, describe: DescribeFn) -> str | None:
    """Why `obj` has no field `name` (None if it has); `Rel.Field` is checked on the
    object the relationship points to, as SOQL resolves it."""
    described = describe(obj)
    head, _, rest = name.partition(".")
    if not rest:
        if head in described.fields:
            return None
        return "no such field, or not visible to the integration user"
    targets = described.relationships.get(head)
    if targets is None:
        return f"no relationship {head!r} on {obj}"
    for target in targets:
        if field_problem(target, rest, describe) is None:
            return None
    return f"no field {rest!r} on {' or '.join(targets)}"


def check_fields(mapping: Mapping, describe: DescribeFn) -> tuple[OrgPlan, list[str]]:
    """The plan's absent optional fields and warnings, and the problems that stop a run."""
    plan = OrgPlan(mapping=mapping)
    problems: list[str] = []
    read, written = wanted_fields(mapping)
    fallback = mapping.stage.fallback_field
    # Each field once, though a pull and a write may both name it (Task.Subject).
    named: dict[str, list[str]] = {}
    for obj, names in [*read.items(), *written.items()]:
        named.setdefault(obj, []).extend(names)
    for obj, names in named.items():
        for name in dict.fromkeys(names):
            if name == fallback and obj == (mapping.stage.object or obj):
                continue  # decided with the statuses (`choose_stage`)
            problem = field_problem(obj, name, describe)
            if problem is None:
                continue
            if mapping.is_optional(obj, name):
                plan.absent.add((obj, name))
                plan.warnings.append(
                    f"{obj}.{name}: not in this org (optional): left out of every query"
                )
            else:
                problems.append(f"{obj}.{name}: {problem}")
    for obj, names in written.items():
        described = describe(obj)
        verb, allowed = (
            ("created", described.createable)
            if obj == mapping.tasks.object
            else ("updated", described.updateable)
        )
        for name in dict.fromkeys(names):
            if name in described.fields and allowed and name not in allowed:
                problems.append(
                    f"{obj}.{name}: the integration user may not have it {verb}: grant edit "
                    "access to the field"
                )
    return plan, problems


def choose_statuses(plan: OrgPlan, statuses: list[LeadStatusRow]) -> None:
    """Give each lead status key the org's value: the mapped one, else the first of its
    `also` values the org has; a key with none is left out, with a warning."""
    status = plan.mapping.lead_status
    have = {s.value for s in statuses} | {s.label for s in statuses}
    for key in status.values:
        value = next((v for v in status.candidates(key) if v in have), None)
        if value is None:
            plan.warnings.append(
                f"LeadStatus has none of {status.candidates(key)} ({key}): leads in such a "
                "status are not read as that, and it is never written"
            )
            continue
        plan.status_values[key] = value
        if value != status.values[key]:
            plan.warnings.append(f"LeadStatus has no {status.values[key]!r}: {key} is {value!r}")


def choose_stage(plan: OrgPlan, statuses: list[LeadStatusRow], describe: DescribeFn) -> list[str]:
    """Write the stage to the status field if the org has a status for every stage, else
    to the fallback field; the problems if neither can be written."""
    stage = plan.mapping.stage
    if stage.field != plan.mapping.lead_status.field:
        return []  # the stage has a field of its own, checked with the others
    have = {s.value for s in statuses} | {s.label for s in statuses}
    missing = {k.value: v for k, v in stage.write.items() if v not in have}
    if not missing:
        return []
    named = ", ".join(f"{v!r} ({k})" for k, v in missing.items())
    obj = stage.object or plan.mapping.contacts[0].object
    fallback = stage.fallback_field
    if fallback is not None and field_problem(obj, fallback, describe) is None:
        plan.stage_to_status = False
        plan.original_stage = stage
        plan.mapping = plan.mapping.model_copy(
            update={
                "stage": StageMapping(
                    field=fallback,
                    object=stage.object,
                    write={k: k.value for k in stage.write},
                    read={},
                    fallback_field=None,
                )
            }
        )
        plan.warnings.append(
            f"LeadStatus has no {named}: the stage is written to {obj}.{fallback}, "
            f"{stage.field} only where a sales status is due"
        )
        return []
    remedy = (
        f"add them to Lead Status in Setup, or let the stage go to {obj}.{fallback} "
        "(run `mqlsync crm-setup salesforce`, which creates it)"
        if fallback is not None
        else "add them to Lead Status in Setup, or change stage.write in the mapping"
    )
    return [f"LeadStatus has no {named}: {remedy}"]
