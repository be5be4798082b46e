"""CRM payloads → canonical records, driven by the mapping. Pure functions, no I/O.

Anything a CRM user can type ends up here, so every value is checked before it becomes
part of a record: a value the store or the scorer cannot hold makes its record a
`RecordError` that names the field (canonical and CRM name) and the value, and the pull
reports that record and goes on with the others.

What is refused and what is repaired:
- free text (names, title, company, activity subjects, urls, custom properties) loses
  control characters (PostgreSQL text refuses NUL; the others are invisible junk) and
  is cut to `MAX_TEXT` characters, ending in "…": a pasted 100 kB job title must not
  cost the contact its score, and no rule needs more than its first thousand characters;
- identifiers (CRM ids, email, owner, lead status) are never cut: a shortened id or
  email names somebody else. One longer than its limit is refused;
- numbers must be finite and fit what the store holds (company size: a PostgreSQL
  INTEGER, and no company employs more than `MAX_COMPANY_SIZE`); out of range is refused,
  not clamped, because a clamped head count would score as a real, huge company;
- timestamps must parse and lie between `EARLIEST` and `LATEST`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import ValidationError

from connectors.mapping import ActivitySource, ContactSource, Mapping
from scoring.records import ACTIVITY_ATTRIBUTES, Activity, ActivityType, Contact, Crm

# Longest free text kept; longer text is cut (see the module docstring).
MAX_TEXT = 1_000
# Identifiers are refused beyond these: the store's id columns are VARCHAR(64), and an
# email address has at most 254 characters (RFC 5321).
MAX_ID = 64
MAX_KEY = 254
# The store's company_size is an INTEGER (32-bit on PostgreSQL); the largest employers
# have about two million people, so ten million is already no company size.
MAX_COMPANY_SIZE = 10_000_000
INT32_MAX = 2**31 - 1
# Custom numeric properties live in a JSON column that other systems read as int64.
INT64_MAX = 2**63 - 1
# Timestamps outside these are typing slips or placeholders ("0001-01-01"), and near
# datetime's own limits a time zone shift no longer fits.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
SHOWN_CHARS = 80

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_MS = re.compile(r"[+-]?[0-9]{1,30}")
# C0 and C1 control characters except tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone surrogates arrive from JSON escapes such as "\ud800" and cannot be encoded.
_SURROGATE = re.compile("[\ud800-\udfff]")
_KEY_FIELDS = frozenset({"email", "owner_id", "lead_status"})


class RecordError(ValueError):
    """One record could not be translated; the pull reports it and goes on.

    `field`, `crm_field` and `value` say what was wrong when one value was.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        crm_field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.crm_field = crm_field
        self.value = value


class _Bad(ValueError):
    """A value-level problem; the caller adds the field names and makes a RecordError."""


def show(value: Any) -> str:
    """A value for a message: repr'd so control characters show, and cut to ~80 chars."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return f"{value[:SHOWN_CHARS]!r}… ({len(value)} chars)"
    text = repr(_plain(value))
    return text if len(text) <= SHOWN_CHARS + 20 else text[: SHOWN_CHARS + 17] + "..."


def _plain(value: Any) -> Any:
    # JSON as simple-salesforce parses it (OrderedDict) is shown as the JSON it was.
    if isinstance(value, MappingABC):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _label(field: str, crm_field: str | None) -> str:
    return f"{field} ({crm_field})" if crm_field and crm_field != field else field


def bad_value(field: str, crm_field: str | None, value: Any, reason: str) -> RecordError:
    """The one message format: `field company_size (numemployees): value '-5': must be >= 0`."""
    return RecordError(
        f"field {_label(field, crm_field)}: value {show(value)}: {reason}",
        field=field,
        crm_field=crm_field,
        value=value,
    )


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


# --- values ----------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, MappingABC):
        return "an object"
    if isinstance(value, list | tuple | set):
        return "a list"
    return f"a {type(value).__name__}"


def _clean(text: str) -> str:
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))
    return text.strip()


def _as_text(value: Any) -> str | None:
    """Text from a CRM value: strings, and numbers a CRM may send for a text field."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("not a finite number")
        text = repr(value)
    else:
        raise _Bad(f"expected text, got {_kind(value)}")
    return _clean(text) or None


def _free_text(value: Any) -> str | None:
    text = _as_text(value)
    if text is not None and len(text) > MAX_TEXT:
        return text[: MAX_TEXT - 1] + "…"
    return text


def _key_text(value: Any, limit: int = MAX_KEY) -> str | None:
    text = _as_text(value)
    if text is not None and len(text) > limit:
        raise _Bad(f"longer than {limit} characters ({len(text)})")
    return text


def _identifier(value: Any) -> str:
    """A CRM id: text or an integer, short, printable; never repaired."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Bad("missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(f"expected an id, got {_kind(value)}")
    text = str(value)
    if _CONTROL.search(text) or _SURROGATE.search(text):
        raise _Bad("contains control characters")
    if len(text) > MAX_ID:
        raise _Bad(f"longer than {MAX_ID} characters ({len(text)})")
    return text


_SIZE_BAND = re.compile(r"^\s*([\d,]+)\s*(?:[-\u2013]\s*[\d,]+|\+)?\s*$")


def _count(value: Any) -> int | None:
    """A head count: a number, or a band as HubSpot's numemployees options give it
    ("25-50", "1000+"), read as its lower bound so that `gte` rules stay conservative."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad("a boolean, not a number")
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) > 40:
            raise _Bad("not a number or a size band")
        number = _number_text(text)
    else:
        raise _Bad(f"expected a number, got {_kind(value)}")
    if not math.isfinite(number):
        raise _Bad("not a finite number")
    if number < 0:
        raise _Bad("must be >= 0")
    if number > MAX_COMPANY_SIZE:
        # Also keeps the value inside the store's 32-bit INTEGER column.
        raise _Bad(f"must be <= {MAX_COMPANY_SIZE:,} (no company is that large)")
    return int(number)


def _number_text(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    band = _SIZE_BAND.match(text)
    digits = band.group(1).replace(",", "") if band else ""
    if not digits:
        raise _Bad("not a number or a size band")
    return int(digits)


def _instant(value: Any) -> datetime | None:
    """CRM timestamps: ISO 8601 (Z, +00:00 or Salesforce's +0000), epoch ms, or a date."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad("a boolean, not a timestamp")
    if isinstance(value, datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), tzinfo=UTC)
    elif isinstance(value, int | float):
        parsed = _from_epoch_ms(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        parsed = _from_epoch_ms(int(text)) if _EPOCH_MS.fullmatch(text) else _from_iso(text)
    else:
        raise _Bad(f"expected a timestamp, got {_kind(value)}")
    try:
        in_range = EARLIEST <= parsed.astimezone(UTC) < LATEST
    except (OverflowError, ValueError):
        in_range = False
    if not in_range:
        raise _Bad(f"out of range (before {EARLIEST:%Y} or from {LATEST:%Y} on)")
    return parsed


def _from_epoch_ms(ms: float) -> datetime:
    if isinstance(ms, float) and not math.isfinite(ms):
        raise _Bad("not a finite number")
    lo = (EARLIEST - _EPOCH) // timedelta(milliseconds=1)
    hi = (LATEST - _EPOCH) // timedelta(milliseconds=1)
    if not lo <= ms < hi:
        raise _Bad(f"epoch milliseconds out of range (before {EARLIEST:%Y} or from {LATEST:%Y} on)")
    return _EPOCH + timedelta(milliseconds=int(ms))


def _from_iso(text: str) -> datetime:
    if len(text) > 64:
        raise _Bad("not a timestamp")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]  # Salesforce: 2026-01-01T00:00:00.000+0000
    try:
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise _Bad(
            f"not a timestamp ({exc})" if "range" in str(exc) else "not a timestamp"
        ) from exc
    # A time without a zone is read as UTC: both CRMs send UTC, and a bare date is a day.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _property(value: Any) -> Any:
    """A custom property kept in Contact.properties (a JSON column): scalars only."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > INT64_MAX:
            raise _Bad("a number too large to keep")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("not a finite number")
        return value
    return _free_text(value)


def parse_datetime(value: Any, crm_field: str | None = None) -> datetime | None:
    """CRM timestamps: ISO 8601 (Z, +00:00 or Salesforce's +0000), epoch ms, or a date.

    Raises `RecordError` naming the value (and `crm_field`, when given) when it is no
    timestamp or out of range.
    """
    try:
        return _instant(value)
    except _Bad as exc:
        if crm_field is not None:
            raise bad_value(crm_field, None, value, str(exc)) from exc
        raise RecordError(f"value {show(value)}: {exc}", value=value) from exc


def _int(value: Any) -> int | None:
    """A company size (see `_count`); `RecordError` naming the value otherwise."""
    try:
        return _count(value)
    except _Bad as exc:
        raise RecordError(f"value {show(value)}: {exc}", value=value) from exc


def record_id(record: Any, key: str) -> str:
    """The id of a CRM record (`key`: "id", "Id"), or `RecordError` saying what is wrong."""
    if not isinstance(record, MappingABC):
        raise RecordError(f"record: value {show(record)}: expected an object with an id")
    raw = record.get(key)
    try:
        return _identifier(raw)
    except _Bad as exc:
        raise bad_value("crm_id", key, raw, str(exc)) from exc


def properties_of(item: Any, key: str = "properties") -> MappingABC[str, Any]:
    """A HubSpot object's properties (an empty dict when absent), or `RecordError`."""
    props = item.get(key) if isinstance(item, MappingABC) else None
    if props is None:
        return {}
    if not isinstance(props, MappingABC):
        raise bad_value(key, None, props, "expected an object")
    return props


def valid_ids(items: Sequence[Any], key: str) -> list[str]:
    """The usable ids among `items`, for follow-up reads (bad ones are reported elsewhere)."""
    out = []
    for item in items:
        try:
            out.append(record_id(item, key))
        except RecordError:
            continue
    return out


def issue_id(record: Any, key: str) -> str:
    """Something to name a record by in a report, even when its id is missing or bad.

    Bounded and printable: it goes into the audit log's contact_id (VARCHAR(64)).
    """
    raw = record.get(key) if isinstance(record, MappingABC) else None
    if raw is None or raw == "":
        return "(no id)"
    text = show(raw) if not isinstance(raw, str | int) or isinstance(raw, bool) else str(raw)
    text = _CONTROL.sub("?", _SURROGATE.sub("?", text))
    return text if len(text) <= MAX_ID else text[: MAX_ID - 1] + "…"


def last_numeric_id(results: Sequence[Any]) -> int | None:
    """The last decimal id among search results, to page on (None when there are none)."""
    for item in reversed(results):
        raw = item.get("id") if isinstance(item, MappingABC) else None
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
            return int(raw)
    if results:
        raise RecordError("no result on this search page has a numeric id to page on")
    return None


# --- pydantic errors as one line -------------------------------------------------------


def _reason(error: Any) -> str:
    ctx = error.get("ctx") or {}
    match error.get("type"):
        case "greater_than_equal":
            return f"must be >= {ctx.get('ge')}"
        case "less_than_equal":
            return f"must be <= {ctx.get('le')}"
        case "string_too_short":
            return "must not be empty"
        case "enum":
            return f"must be one of {ctx.get('expected')}"
    return str(error.get("msg", "invalid")).lower()


def validation_error(exc: ValidationError, crm_fields: MappingABC[str, str | None]) -> RecordError:
    """A pydantic error as one line per field: `field company_size: value -5: must be >= 0`."""
    parts = []
    first: tuple[str, str | None, Any] | None = None
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = ".".join(str(p) for p in loc) or "record"
        crm_field = crm_fields.get(str(loc[0])) if loc else None
        value = error.get("input")
        parts.append(f"field {_label(name, crm_field)}: value {show(value)}: {_reason(error)}")
        first = first or (name, crm_field, value)
    name, crm_field, value = first or ("record", None, None)
    return RecordError("; ".join(parts), field=name, crm_field=crm_field, value=value)


# --- records ---------------------------------------------------------------------------


def to_contact(
    mapping: Mapping, source: ContactSource, crm_id: str, record: MappingABC[str, Any]
) -> Contact:
    """A canonical contact from one CRM record (a HubSpot properties dict or a SOQL row)."""
    if not isinstance(record, MappingABC):
        raise RecordError(f"record {show(crm_id)}: value {show(record)}: expected an object")
    try:
        crm_id = _identifier(crm_id)
    except _Bad as exc:
        raise bad_value("crm_id", None, crm_id, str(exc)) from exc
    crm_fields: dict[str, str | None] = {"crm_id": None}
    values: dict[str, Any] = {}

    def read(name: str, crm_field: str, convert: Any) -> Any:
        crm_fields[name] = crm_field
        raw = field_value(record, crm_field)
        try:
            return convert(raw)
        except _Bad as exc:
            raise bad_value(name, crm_field, raw, str(exc)) from exc

    for name, crm_field in source.fields.items():
        if name == "company_size":
            values[name] = read(name, crm_field, _count)
        elif name in ("created_at", "updated_at", "accepted_at"):
            values[name] = read(name, crm_field, _instant)
        elif name in _KEY_FIELDS:
            values[name] = read(name, crm_field, _key_text)
        else:
            values[name] = read(name, crm_field, _free_text)
    if mapping.stage.object in (None, source.object):
        stage_value = read("lifecycle_stage", mapping.stage.field, _key_text)
        values["lifecycle_stage"] = mapping.stage.from_crm(stage_value)
    elif source.fixed_stage is not None:
        values["lifecycle_stage"] = source.fixed_stage
    properties = {
        name: read(name, crm_field, _property) for name, crm_field in source.properties.items()
    }
    try:
        return Contact(crm=mapping.crm, crm_id=crm_id, properties=properties, **values)
    except ValidationError as exc:
        raise validation_error(exc, crm_fields) from exc


# Where each HubSpot source kind carries an activity's contact and time, for messages.
_HUBSPOT_NAMES: dict[str, tuple[str, str]] = {
    "events_api": ("objectId", "occurredAt"),
    "email_events": ("recipient", "created"),
    "form_submissions": ("values.email", "submittedAt"),
    "marketing_events": ("associations.contact.contactId", "occurredAt"),
}


def _activity_names(mapping: Mapping, source: str) -> tuple[str, str]:
    """CRM names of an activity's contact id and time, for messages."""
    decl = mapping.activity_sources.get(source)
    if mapping.crm is Crm.HUBSPOT:
        kind = decl.kind if decl else "events_api"
        if kind == "crm_object":
            return "association to contacts", _time_names(decl, "hs_timestamp")
        return _HUBSPOT_NAMES.get(kind or "events_api", ("objectId", "occurredAt"))
    contact = "/".join(decl.contact) if decl and decl.contact else "WhoId"
    return contact, _time_names(decl, "CreatedDate")


def _time_names(decl: ActivitySource | None, default: str) -> str:
    return "/".join(decl.time_fields if decl and decl.time_fields else [default])


def to_activity(
    mapping: Mapping,
    source: str,
    crm_id: str,
    contact_id: Any,
    occurred_at: Any,
    record: MappingABC[str, Any],
) -> Activity | None:
    """A canonical activity, or None when the mapping says the record is not one.

    A record no rule matches becomes `other` with a raw type naming its source and
    distinguishing values, so it is kept, never dropped silently.
    """
    if not isinstance(record, MappingABC):
        raise RecordError(f"record {show(crm_id)}: value {show(record)}: expected an object")

    def get(name: str) -> Any:
        return field_value(record, name)

    contact_field, time_field = _activity_names(mapping, source)
    try:
        crm_id = _identifier(crm_id)
    except _Bad as exc:
        raise bad_value("crm_id", None, crm_id, str(exc)) from exc
    for skip in mapping.skip_activities:
        if skip.source == source and skip.matches(get):
            return None
    if contact_id is None or contact_id == "":
        raise RecordError(
            f"field {_label('contact_id', contact_field)}: no contact id",
            field="contact_id",
            crm_field=contact_field,
        )
    try:
        contact_id = _identifier(contact_id)
    except _Bad as exc:
        raise bad_value("contact_id", contact_field, contact_id, str(exc)) from exc
    try:
        when = _instant(occurred_at)
    except _Bad as exc:
        raise bad_value("occurred_at", time_field, occurred_at, str(exc)) from exc
    if when is None:
        raise RecordError(
            f"field {_label('occurred_at', time_field)}: no occurrence time",
            field="occurred_at",
            crm_field=time_field,
        )
    rules = mapping.rules_for(source)
    rule = next((r for r in rules if r.matches(get)), None)
    named: dict[str, str | None] = {}
    extra: dict[str, str] = {}
    raw_type: str | None = None
    if rule is None:
        activity_type = ActivityType.OTHER
        keys = sorted({k for r in rules for k in r.when})
        parts = [source, *(_raw_part(get(k)) for k in keys if get(k) is not None)]
        raw_type = _free_text(":".join(parts)) or "(none)"
        attributes: dict[str, str] = {}
        fixed: dict[str, str] = {}
    else:
        activity_type = rule.type
        attributes = rule.attributes
        fixed = rule.set
    for name, crm_field in attributes.items():
        raw = get(crm_field)
        try:
            value = _free_text(raw)
        except _Bad as exc:
            raise bad_value(name, crm_field, raw, str(exc)) from exc
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
    except ValidationError as exc:
        names: dict[str, str | None] = {"occurred_at": time_field, "contact_id": contact_field}
        names.update({n: f for n, f in attributes.items()})
        raise validation_error(exc, names) from exc


def _raw_part(value: Any) -> str:
    # The raw type only names a kind of record: any value is shown, none refused.
    if isinstance(value, tuple):  # one thing by several names (a form's GUID and name)
        return " / ".join(_raw_part(v) for v in value if v not in (None, ""))
    try:
        return _free_text(value) or ""
    except _Bad:
        return show(value)
