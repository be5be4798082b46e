"""Small builders for contacts and activities in scoring tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from scoring.model import ScoringModel, parse_model
from scoring.records import Activity, Contact

MODELS = Path(__file__).parent / "models"
AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_ids = count(1)


def model(name: str) -> ScoringModel:
    path = MODELS / f"{name}.yaml"
    return parse_model(path.read_text(), str(path))


def contact(**fields: Any) -> Contact:
    fields.setdefault("crm", "hubspot")
    fields.setdefault("crm_id", "c1")
    return Contact(**fields)


def activity(kind: str, days_ago: float = 1, **attributes: Any) -> Activity:
    attributes.setdefault("crm", "hubspot")
    attributes.setdefault("contact_id", "c1")
    attributes.setdefault("crm_id", f"a{next(_ids)}")
    return Activity(type=kind, occurred_at=AS_OF - timedelta(days=days_ago), **attributes)
