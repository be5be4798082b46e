"""Read canonical contacts and activities from JSON Lines files, line by line.

A bad line is reported with its file and line number and skipped; the rest are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scoring.records import ACTIVITY_ATTRIBUTES, Activity, ActivityType, Contact

ACTIVITY_FIELDS = {"crm", "crm_id", "contact_id", "type", "occurred_at", "raw_type", "attributes"}
KNOWN_TYPES = {t.value for t in ActivityType}


@dataclass
class LineErrors:
    """Problems found while reading, as `file:line: message` strings."""

    messages: list[str] = field(default_factory=list)

    def add(self, path: Path, line: int, message: str) -> None:
        self.messages.append(f"{path}:{line}: {message}")


def read_contacts(path: Path, errors: LineErrors, default_crm: str) -> Iterator[Contact]:
    for line_no, data in _json_lines(path, errors):
        data.setdefault("crm", default_crm)
        try:
            yield Contact.model_validate(data)
        except ValidationError as exc:
            errors.add(path, line_no, _describe(exc, data))


def read_activities(path: Path, errors: LineErrors, default_crm: str) -> Iterator[Activity]:
    for line_no, data in _json_lines(path, errors):
        data.setdefault("crm", default_crm)
        try:
            yield Activity.model_validate(activity_payload(data))
        except ValidationError as exc:
            errors.add(path, line_no, _describe(exc, data))


def activity_payload(data: dict[str, Any]) -> dict[str, Any]:
    """Split a flat activity object into fields and free-form attributes.

    A type the vocabulary does not know is kept as `other` with its raw type.
    """
    payload = {k: v for k, v in data.items() if k in ACTIVITY_FIELDS or k in ACTIVITY_ATTRIBUTES}
    extra = {
        k: str(v)
        for k, v in data.items()
        if k not in payload and v is not None and not isinstance(v, dict | list)
    }
    if extra:
        payload["attributes"] = {**payload.get("attributes", {}), **extra}
    kind = payload.get("type")
    if isinstance(kind, str) and kind not in KNOWN_TYPES:
        payload["raw_type"] = kind
        payload["type"] = ActivityType.OTHER.value
    return payload


def _json_lines(path: Path, errors: LineErrors) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.add(path, line_no, f"not JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(data, dict):
                errors.add(path, line_no, "expected a JSON object")
                continue
            yield line_no, data


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    record = data.get("crm_id", "?")
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()
    )
    return f"record {record}: {problems}"
