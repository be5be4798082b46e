"""The one interface flows use to talk to a CRM."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from connectors.paging import Page
from scoring.records import Activity, Contact, Crm, LifecycleStage
from scoring.writes import HandoffTask, PropertyUpdate, StageChange, WriteOutcome


@dataclass(frozen=True)
class Deletion:
    """A contact removed from the CRM (HubSpot archived, Salesforce IsDeleted), or a
    Salesforce lead converted: sales took it, and it lives on as `converted_to`."""

    crm: Crm
    crm_id: str
    deleted_at: datetime | None
    converted_to: str | None = None
    converted_at: datetime | None = None


@dataclass(frozen=True)
class ContactStatus:
    """What sales may have changed since the last pull: status, stage and owner."""

    crm_id: str
    lead_status: str | None  # the CRM's value
    status_key: str | None  # the mapping's canonical key for it ("recycled", ...), if any
    lifecycle_stage: LifecycleStage | None
    owner_id: str | None


@runtime_checkable
class CrmConnector(Protocol):
    """Pull pages since a cursor and apply batched writes; cursors are returned, never stored.

    Every pull takes an optional `until` (exclusive): only records before it, asked of
    the CRM in its own query language where the API takes a bound. Such a bounded pull
    (a backfill's window) did not read what came after `until`, so it is no place to
    resume from: its pages carry no cursor and no source cursors.
    """

    crm: Crm

    def pull_contacts(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Contact]]:
        """Contacts changed at or after `since` minus the overlap window (all if None),
        and before `until` (no end if None)."""
        ...

    def pull_activities(
        self,
        since: datetime | None,
        sources: Mapping[str, datetime] | None = None,
        *,
        until: datetime | None = None,
    ) -> Iterator[Page[Activity]]:
        """Activities recorded at or after `since` minus the overlap window (all if None),
        and before `until` (no end if None).

        `sources`: each activity source's own cursor, by name, as the last page's
        `source_cursors` gave them; a source missing from a non-empty one is new. A
        bounded pull reads every source from `since`.
        """
        ...

    def pull_deletions(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Deletion]]:
        """Contacts deleted at or after `since` minus the overlap window (all if None),
        and before `until` (no end if None)."""
        ...

    def read_status(self, crm_ids: Sequence[str]) -> dict[str, ContactStatus]:
        """Current lead status, stage and owner for these contacts (missing ids are absent)."""
        ...

    def update_properties(self, updates: Sequence[PropertyUpdate]) -> list[WriteOutcome]:
        """Write score fields in batches; one outcome per update, in order."""
        ...

    def change_stages(self, changes: Sequence[StageChange]) -> list[WriteOutcome]:
        """Move lifecycle stages / lead statuses; one outcome per change, in order."""
        ...

    def create_tasks(self, tasks: Sequence[HandoffTask]) -> list[WriteOutcome]:
        """Create handoff tasks in batches, never twice for one key; one outcome per task."""
        ...

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """Task ids by idempotency key, for the keys the CRM already has."""
        ...

    def check_mapping(self) -> list[str]:
        """Problems between the mapping and the CRM's own schema (empty when all is well)."""
        ...
