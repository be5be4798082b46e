"""The local mirror of CRM contacts and activities the scorer reads."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlmodel import col

from scoring.records import ACTIVITY_ATTRIBUTES, Activity, Contact, Crm
from store.chunking import in_chunks
from store.db import Bind, reading
from store.tables import ActivityRow, ContactRow, table_of
from store.upsert import bulk_upsert

CONTACT_COLUMNS = (
    "email", "first_name", "last_name", "job_title", "company", "company_size", "industry",
    "country", "lifecycle_stage", "lead_status", "owner_id", "created_at", "updated_at",
    "accepted_at", "properties",
)  # fmt: skip
ACTIVITY_COLUMNS = ("contact_id", "type", "raw_type", "occurred_at", "attributes")


def upsert_contacts(engine: Engine, contacts: Sequence[Contact], pulled_at: datetime) -> int:
    """Insert or refresh contacts by (crm, crm_id) in a few statements.

    A row is replaced only by a version the CRM modified later: two runs pulling at once,
    or an overlap re-read, must not put back a stage the service has since written.
    """
    rows = [
        {
            "crm": c.crm.value,
            "crm_id": c.crm_id,
            **{name: _plain(getattr(c, name)) for name in CONTACT_COLUMNS},
            "deleted": False,
            "pulled_at": pulled_at,
        }
        for c in contacts
    ]
    with engine.begin() as connection:
        return bulk_upsert(
            connection,
            table_of(ContactRow),
            rows,
            ("crm", "crm_id"),
            (*CONTACT_COLUMNS, "deleted", "pulled_at"),
            newer="updated_at",
        )


def upsert_activities(engine: Engine, activities: Sequence[Activity]) -> int:
    """Insert or refresh activities by (crm, crm_id) in a few statements."""
    rows = [
        {
            "crm": a.crm.value,
            "crm_id": a.crm_id,
            "contact_id": a.contact_id,
            "type": a.type.value,
            "raw_type": a.raw_type,
            "occurred_at": a.occurred_at,
            "attributes": _attributes(a),
        }
        for a in activities
    ]
    with engine.begin() as connection:
        return bulk_upsert(
            connection,
            table_of(ActivityRow),
            rows,
            ("crm", "crm_id"),
            ACTIVITY_COLUMNS,
        )


def mark_deleted(engine: Engine, crm: Crm, crm_ids: Sequence[str]) -> int:
    if not crm_ids:
        return 0
    with engine.begin() as connection:
        result = connection.execute(
            update(ContactRow)
            .where(col(ContactRow.crm) == crm.value, col(ContactRow.crm_id).in_(crm_ids))
            .values(deleted=True)
        )
        return result.rowcount


def set_stage(engine: Engine, crm: Crm, crm_id: str, stage: str) -> None:
    """Keep the mirror in step with a stage the service wrote, until the next pull.

    The lead status is forgotten: the write may have changed it, and a stale value (say
    a rejection from before the MQL) must not read as sales' verdict on the new MQL.
    The write touched the contact, so the next incremental pull brings the real value.
    """
    with engine.begin() as connection:
        connection.execute(
            update(ContactRow)
            .where(col(ContactRow.crm) == crm.value, col(ContactRow.crm_id) == crm_id)
            .values(lifecycle_stage=stage, lead_status=None)
        )


def load_contacts(
    engine: Bind, crm: Crm, crm_ids: Iterable[str] | None = None, *, deleted: bool = False
) -> list[Contact]:
    """Live contacts (or, with `deleted`, the deleted ones), all or those with these ids."""
    query = select(ContactRow).where(
        col(ContactRow.crm) == crm.value, col(ContactRow.deleted) == deleted
    )
    if crm_ids is not None:
        query = query.where(col(ContactRow.crm_id).in_(list(crm_ids)))
    with reading(engine) as connection:
        rows = connection.execute(query.order_by(col(ContactRow.crm_id))).mappings().all()
    return [contact_from_row(row) for row in rows]


def live_contact_ids(engine: Engine, crm: Crm, shard: int = 0, shards: int = 1) -> list[str]:
    """Ids of live contacts in one shard; a contact's shard is a stable hash of its id."""
    with engine.connect() as connection:
        ids = connection.execute(
            select(col(ContactRow.crm_id)).where(
                col(ContactRow.crm) == crm.value,
                col(ContactRow.deleted) == False,  # noqa: E712
            )
        ).scalars()
        return sorted(i for i in ids if zlib.crc32(i.encode()) % shards == shard)


def contacts_touched_between(engine: Engine, crm: Crm, start: datetime, end: datetime) -> list[str]:
    """Live contacts updated in [start, end] or with an activity in it."""
    with engine.connect() as connection:
        updated = connection.execute(
            select(col(ContactRow.crm_id)).where(
                col(ContactRow.crm) == crm.value,
                col(ContactRow.deleted) == False,  # noqa: E712
                col(ContactRow.updated_at).between(start, end),
            )
        ).scalars()
        active = connection.execute(
            select(col(ActivityRow.contact_id))
            .where(
                col(ActivityRow.crm) == crm.value,
                col(ActivityRow.occurred_at).between(start, end),
            )
            .distinct()
        ).scalars()
        return sorted(set(updated) | set(active))


def load_activities(
    engine: Bind, crm: Crm, contact_ids: Sequence[str]
) -> dict[str, list[Activity]]:
    """Activities of these contacts, grouped by contact id."""
    grouped: dict[str, list[Activity]] = defaultdict(list)
    with reading(engine) as connection:
        for chunk in in_chunks(contact_ids):
            chunk = list(chunk)
            rows = connection.execute(
                select(ActivityRow).where(
                    col(ActivityRow.crm) == crm.value,
                    col(ActivityRow.contact_id).in_(chunk),
                )
            ).mappings()
            for row in rows:
                grouped[row["contact_id"]].append(activity_from_row(row))
    return grouped


def find_contact(engine: Engine, key: str) -> Contact | None:
    """A contact by CRM id or by email (case-insensitive, no wildcards)."""
    with engine.connect() as connection:
        row = (
            connection.execute(
                select(ContactRow).where(
                    (col(ContactRow.crm_id) == key)
                    | (func.lower(col(ContactRow.email)) == key.strip().lower())
                )
            )
            .mappings()
            .first()
        )
    return contact_from_row(row) if row is not None else None


def contact_from_row(row: Any) -> Contact:
    return Contact(
        crm=row["crm"],
        crm_id=row["crm_id"],
        **{name: row[name] for name in CONTACT_COLUMNS},
    )


def activity_from_row(row: Any) -> Activity:
    attributes = dict(row["attributes"] or {})
    named = {name: attributes.pop(name) for name in ACTIVITY_ATTRIBUTES if name in attributes}
    return Activity(
        crm=row["crm"],
        crm_id=row["crm_id"],
        contact_id=row["contact_id"],
        type=row["type"],
        raw_type=row["raw_type"],
        occurred_at=row["occurred_at"],
        attributes=attributes,
        **named,
    )


def _attributes(activity: Activity) -> dict[str, Any]:
    named = {
        name: getattr(activity, name)
        for name in ACTIVITY_ATTRIBUTES
        if getattr(activity, name) is not None
    }
    return {**activity.attributes, **named}


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") and not isinstance(value, dict) else value
