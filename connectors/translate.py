"""CRM payloads → canonical records, driven by the mapping. Pure functions, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from datetime import UTC, date, datetime, time
from typing import Any

from connectors.mapping import ContactSource, Mapping
from scoring.records import ACTIVITY_ATTRIBUTES, Activity, ActivityType, Contact


class RecordError(ValueError):
    """One record could not be translated; the pull reports it and goes on."""


def field_value(record: MappingABC[str, Any], name: str) -> Any:
    """A field by name; `A.B` follows a one-level relationship (Salesforce `Account.Name`)."""
    if name in record:
        return record[name]
    head, _, rest = name.partition(".")
    if rest:
        parent = record.get(head)
        if isinstance(parent, MappingABC):
            return field_value(parent, rest)
    return None


def parse_datetime(value: Any) -> datetime | None:
    """CRM timestamps: ISO 8601 (Z, +00:00 or Salesforce's +0000), epoch ms, or a date."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]  # Salesforce: 2026-01-01T00:00:00.000+0000
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordError(f"not a timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_SIZE_BAND = re.compile(r"^\s*([\d,]+)\s*(?:[-\u2013]\s*[\d,]+|\+)?\s*$")


def _int(value: Any) -> int | None:
    """A head count: a number, or a band as HubSpot's numemployees options give it
    ("25-50", "1000+"), read as its lower bound so that `gte` rules stay conservative."""
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        pass
    band = _SIZE_BAND.match(str(value))
    if band is None:
        raise RecordError(f"not a number or a size band: {value!r}")
    return int(band.group(1).replace(",", ""))


def _text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return str(value)


def to_contact(
    mapping: Mapping, source: ContactSource, crm_id: str, record: MappingABC[str, Any]
) -> Contact:
    """A canonical contact from one CRM record (a HubSpot properties dict or a SOQL row)."""
    values: dict[str, Any] = {}
    for name, crm_field in source.fields.items():
        raw = field_value(record, crm_field)
        if name == "company_size":
            values[name] = _int(raw)
        elif name in ("created_at", "updated_at"):
            values[name] = parse_datetime(raw)
        else:
            values[name] = _text(raw)
    if mapping.stage.object in (None, source.object):
        values["lifecycle_stage"] = mapping.stage.from_crm(
            _text(field_value(record, mapping.stage.field))
        )
    elif source.fixed_stage is not None:
        values["lifecycle_stage"] = source.fixed_stage
    properties = {
        name: field_value(record, crm_field) for name, crm_field in source.properties.items()
    }
    try:
        return Contact(crm=mapping.crm, crm_id=crm_id, properties=properties, **values)
    except ValueError as exc:
        raise RecordError(str(exc).splitlines()[0]) from exc


def to_activity(
    mapping: Mapping,
    source: str,
    crm_id: str,
    contact_id: str | None,
    occurred_at: Any,
    record: MappingABC[str, Any],
) -> Activity | None:
    """A canonical activity, or None when the mapping says the record is not one.

    A record no rule matches becomes `other` with a raw type naming its source and
    distinguishing values, so it is kept, never dropped silently.
    """

    def get(name: str) -> Any:
        return field_value(record, name)

    if contact_id is not None:
        contact_id = str(contact_id)
    for skip in mapping.skip_activities:
        if skip.source == source and skip.matches(get):
            return None
    if not contact_id:
        raise RecordError("no contact id")
    when = parse_datetime(occurred_at)
    if when is None:
        raise RecordError("no occurrence time")
    rules = mapping.rules_for(source)
    rule = next((r for r in rules if r.matches(get)), None)
    named: dict[str, str | None] = {}
    extra: dict[str, str] = {}
    raw_type: str | None = None
    if rule is None:
        activity_type = ActivityType.OTHER
        keys = sorted({k for r in rules for k in r.when})
        raw_type = ":".join([source, *(str(get(k)) for k in keys if get(k) is not None)])
        attributes: dict[str, str] = {}
        fixed: dict[str, str] = {}
    else:
        activity_type = rule.type
        attributes = rule.attributes
        fixed = rule.set
    for name, crm_field in attributes.items():
        value = _text(get(crm_field))
        if value is None:
            continue
        if name in ACTIVITY_ATTRIBUTES:
            named[name] = value
        else:
            extra[name] = value
    for name, value in fixed.items():
        (named if name in ACTIVITY_ATTRIBUTES else extra)[name] = value
    try:
        return Activity(
            crm=mapping.crm,
            crm_id=crm_id,
            contact_id=contact_id,
            type=activity_type,
            occurred_at=when,
            raw_type=raw_type,
            attributes=extra,
            **named,
        )
    except ValueError as exc:
        raise RecordError(str(exc).splitlines()[0]) from exc
