"""Salesforce connector: simple-salesforce over a session it owns.

Leads and Contacts come from SOQL on `SystemModstamp` through `query_all_iter`
(2,000 a page, server-side query locators, no result cap); activities from Task,
Event and CampaignMember as the mapping says; writes through sObject Collections,
200 records a call with `allOrNone=false` so one bad record does not sink a batch.
Every value placed in SOQL goes through `format_soql`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from connectors.common import chunks, failed, ok
from connectors.config import SalesforceConfig
from connectors.creates import create_in_batches
from connectors.errors import ConnectorError, MappingError
from connectors.mapping import ActivitySource, ContactSource, Mapping, default_mapping, load_mapping
from connectors.paging import Page
from connectors.protocol import ContactStatus, Deletion
from connectors.retry import Redactor
from connectors.salesforce_session import SalesforceSession
from connectors.streams import Stream, at, pull
from connectors.throttle import Throttle, TokenBucket
from connectors.translate import field_value, parse_datetime, to_activity, to_contact
from scoring.records import Activity, Contact, Crm
from scoring.writes import HandoffTask, PropertyUpdate, StageChange, WriteOutcome

log = logging.getLogger(__name__)

QUERY_PAGE = 2000  # records per query page, the server's default batch size
COLLECTION_SIZE = 200  # sObject Collections limit per call
IDS_PER_QUERY = 200  # keeps a `WHERE Id IN (...)` query well under the URL length limit
MODSTAMP = "SystemModstamp"
T = TypeVar("T")
# Per-record error codes in a collections answer that are worth another attempt.
RETRIABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "TEMPORARY_ERROR"}
)


@dataclass(frozen=True)
class _Described:
    """What check_mapping needs from one describe: field names, relationship targets."""

    fields: set[str]
    relationships: dict[str, tuple[str, ...]]


def _soql_time(value: datetime) -> str:
    # A datetime literal formatted here, never taken from data: 2026-01-31T09:00:00Z.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SalesforceConnector:
    """`CrmConnector` for Salesforce."""

    crm = Crm.SALESFORCE

    def __init__(
        self,
        config: SalesforceConfig,
        mapping: Mapping | None = None,
        *,
        throttle: Throttle | None = None,
    ) -> None:
        self._config = config
        self._mapping = mapping or (
            load_mapping(config.mapping_file, crm=Crm.SALESFORCE)
            if config.mapping_file
            else default_mapping(Crm.SALESFORCE)
        )
        self._throttle = throttle or Throttle(
            {"default": TokenBucket(config.throttle.rate, config.throttle.burst)}
        )
        self._redact = Redactor()
        self._session = SalesforceSession(config, self._throttle, self._redact)
        # The session supplies the real token on every request; this one only fills a slot.
        self._sf = Salesforce(
            instance_url=config.instance_url.rstrip("/"),
            session_id=self._session.token or "pending",
            version=config.api_version,
            session=self._session,
        )
        self._checked = False

    # --- pulls -------------------------------------------------------------------------

    def _rows(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        return self._sf.query_all_iter(soql, include_deleted=include_deleted)

    def _pages(self, rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Regroup rows into pages of the server's page size, so pages map to requests."""
        page: list[dict[str, Any]] = []
        for row in rows:
            page.append(row)
            if len(page) >= QUERY_PAGE:
                yield page
                page = []
        yield page

    def _stream(
        self,
        obj: str,
        fields: list[str],
        translate: Callable[[Any, str], T | None],
        *,
        where: str = "",
        deleted: bool = False,
    ) -> Stream[T]:
        """One SObject read on SystemModstamp from the window start, a page per request."""

        def fetch(start: datetime | None) -> Iterator[list[dict[str, Any]]]:
            soql = self._select(obj, ["Id", MODSTAMP, *fields], start, where)
            return self._pages(self._rows(soql, include_deleted=deleted))

        return Stream(obj, fetch, translate, time=at(MODSTAMP), key="Id")

    def pull_contacts(self, since: datetime | None) -> Iterator[Page[Contact]]:
        """Leads, then Contacts, modified at or after `since` minus the overlap."""
        streams: list[Stream[Contact]] = []
        for source in self._mapping.contacts:
            extra: tuple[str, ...] = ()
            if self._mapping.stage.object in (None, source.object):
                extra += (self._mapping.stage.field,)

            def translate(row: Any, crm_id: str, source: ContactSource = source) -> Contact:
                return to_contact(self._mapping, source, crm_id, row)

            streams.append(self._stream(source.object, source.crm_fields(extra), translate))
        return pull(streams, since, self._config.overlap_minutes)

    def _select(self, obj: str, fields: list[str], start: datetime | None, where: str = "") -> str:
        clauses = [where] if where else []
        if start is not None:
            clauses.append(f"{MODSTAMP} >= {_soql_time(start)}")
        soql = format_soql(
            "SELECT {:literal} FROM {:literal}", ", ".join(dict.fromkeys(fields)), obj
        )
        if clauses:
            soql += " WHERE " + " AND ".join(clauses)
        return soql + f" ORDER BY {MODSTAMP} ASC, Id ASC"

    def pull_activities(
        self, since: datetime | None, sources: MappingABC[str, datetime] | None = None
    ) -> Iterator[Page[Activity]]:
        """Task, Event and CampaignMember rows modified since the window start (each
        source's own cursor in `sources`, where one is stored)."""
        streams: list[Stream[Activity]] = []
        for name, decl in self._mapping.activity_sources.items():

            def translate(
                row: Any, crm_id: str, name: str = name, decl: ActivitySource = decl
            ) -> Activity | None:
                contact_id = next((v for f in decl.contact if (v := field_value(row, f))), None)
                return to_activity(
                    self._mapping,
                    name,
                    crm_id,
                    contact_id,
                    field_value(row, decl.occurred_at or "CreatedDate"),
                    row,
                )

            streams.append(self._stream(name, self._mapping.activity_fields(name), translate))
        return pull(streams, since, self._config.overlap_minutes, source_since=sources)

    def pull_deletions(self, since: datetime | None) -> Iterator[Page[Deletion]]:
        """Deleted Leads and Contacts (queryAll with IsDeleted = true)."""

        def translate(row: Any, crm_id: str) -> Deletion:
            return Deletion(self.crm, crm_id, parse_datetime(row.get(MODSTAMP), MODSTAMP))

        streams = [
            self._stream(source.object, [], translate, where="IsDeleted = true", deleted=True)
            for source in self._mapping.contacts
        ]
        return pull(streams, since, self._config.overlap_minutes)

    # --- reads and writes --------------------------------------------------------------

    def read_status(self, crm_ids: Sequence[str]) -> dict[str, ContactStatus]:
        """Lead status and owner (Leads), owner (Contacts), 200 ids a query."""
        result: dict[str, ContactStatus] = {}
        status = self._mapping.lead_status
        for source, ids in self._by_source(crm_ids):
            owner = source.fields.get("owner_id", "OwnerId")
            has_status = status.object in (None, source.object)
            fields = ["Id", owner, *([status.field] if has_status else [])]
            for batch in chunks(ids, IDS_PER_QUERY):
                soql = format_soql(
                    "SELECT {:literal} FROM {:literal} WHERE Id IN {}",
                    ", ".join(dict.fromkeys(fields)),
                    source.object,
                    list(batch),
                )
                for row in self._rows(soql):
                    value = row.get(status.field) if has_status else None
                    result[str(row["Id"])] = ContactStatus(
                        crm_id=str(row["Id"]),
                        lead_status=value,
                        status_key=status.key_for(value),
                        lifecycle_stage=self._mapping.stage.from_crm(value) if has_status else None,
                        owner_id=row.get(owner),
                    )
        return result

    def _by_source(self, crm_ids: Sequence[str]) -> list[tuple[ContactSource, list[str]]]:
        groups: dict[str, list[str]] = {}
        for crm_id in crm_ids:
            groups.setdefault(self._mapping.source_for_id(crm_id).object, []).append(crm_id)
        # Pairs, not a dict: a mapping section holds dicts and cannot be a key.
        return [(self._mapping.source(obj), ids) for obj, ids in groups.items()]

    def update_properties(self, updates: Sequence[PropertyUpdate]) -> list[WriteOutcome]:
        """Write score fields through sObject Collections, 200 records a call."""
        self._ensure_checked()
        wb = self._mapping.write_back
        records = {
            u.crm_id: {
                "attributes": {"type": self._mapping.source_for_id(u.crm_id).object},
                "Id": u.crm_id,
                **{wb[k]: v for k, v in u.values.items()},
            }
            for u in updates
        }
        outcomes = self._collections_update(records)
        return [outcomes[u.crm_id] for u in updates]

    def change_stages(self, changes: Sequence[StageChange]) -> list[WriteOutcome]:
        """Set `Lead.Status` from the mapping (a lead status key, else the stage's value)."""
        self._ensure_checked()
        status = self._mapping.lead_status
        stage = self._mapping.stage
        records: dict[str, dict[str, Any]] = {}
        outcomes: dict[str, WriteOutcome] = {}
        for change in changes:
            obj = self._mapping.source_for_id(change.crm_id).object
            if stage.object not in (None, obj):
                outcomes[change.crm_id] = failed(
                    self.crm, change.crm_id, f"{obj} records have no {stage.field} field"
                )
                continue
            if change.lead_status is not None:
                value = status.values.get(change.lead_status)
            else:
                value = stage.write.get(change.to_stage)
            if value is None:
                outcomes[change.crm_id] = failed(
                    self.crm,
                    change.crm_id,
                    f"no {stage.field} value mapped for {change.lead_status or change.to_stage}",
                )
                continue
            records[change.crm_id] = {
                "attributes": {"type": obj},
                "Id": change.crm_id,
                stage.field: value,
            }
        outcomes.update(self._collections_update(records))
        return [outcomes[c.crm_id] for c in changes]

    def _collections_update(self, records: dict[str, dict[str, Any]]) -> dict[str, WriteOutcome]:
        outcomes: dict[str, WriteOutcome] = {}
        pending = list(records)
        for attempt in range(1, self._config.retry.max_attempts + 1):
            retry: list[str] = []
            for batch in chunks(pending, COLLECTION_SIZE):
                body = {"allOrNone": False, "records": [records[i] for i in batch]}
                results = self._sf.restful("composite/sobjects", method="PATCH", json=body) or []
                for crm_id, result in zip(batch, results, strict=False):
                    if result.get("success"):
                        outcomes[crm_id] = ok(self.crm, crm_id, crm_id, attempt)
                        continue
                    errors = result.get("errors") or []
                    outcomes[crm_id] = failed(self.crm, crm_id, self._messages(errors), attempt)
                    if any(e.get("statusCode") in RETRIABLE_CODES for e in errors):
                        retry.append(crm_id)
            if not retry:
                break
            pending = retry
        return outcomes

    def _messages(self, errors: list[dict[str, Any]]) -> str:
        return self._redact(
            "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors) or "failed"
        )

    def create_tasks(self, tasks: Sequence[HandoffTask]) -> list[WriteOutcome]:
        """Create Tasks 200 a call; after an ambiguous failure, look them up before resending."""
        self._ensure_checked()
        return create_in_batches(
            self.crm,
            tasks,
            COLLECTION_SIZE,
            self._send_tasks,
            self.find_tasks,
            self._config.retry.max_attempts,
            self._config.settle_s,
        )

    def _send_tasks(
        self, pending: list[HandoffTask], attempt: int
    ) -> tuple[dict[str, WriteOutcome], list[HandoffTask]]:
        body = {"allOrNone": False, "records": [self._task_record(t) for t in pending]}
        results = self._sf.restful("composite/sobjects", method="POST", json=body) or []
        outcomes: dict[str, WriteOutcome] = {}
        retry: list[HandoffTask] = []
        for task, result in zip(pending, results, strict=False):
            if result.get("success"):
                outcomes[task.key] = ok(self.crm, task.key, str(result.get("id")), attempt)
                continue
            errors = result.get("errors") or []
            outcomes[task.key] = failed(self.crm, task.key, self._messages(errors), attempt)
            if any(e.get("statusCode") in RETRIABLE_CODES for e in errors):
                retry.append(task)
        return outcomes, retry

    def _task_record(self, task: HandoffTask) -> dict[str, Any]:
        m = self._mapping.tasks
        values: dict[str, Any] = {
            "key": task.key,
            "contact_id": task.contact_id,
            "owner_id": task.owner_id,
            "subject": task.subject,
            "body": task.body,
            # ActivityDate is a date field: the due day in UTC.
            "due_at": task.due_at.astimezone(UTC).date().isoformat(),
            "priority": m.priorities[task.priority],
        }
        record: dict[str, Any] = {"attributes": {"type": m.object}, **m.constants}
        record.update(
            {m.fields[k]: v for k, v in values.items() if k in m.fields and v is not None}
        )
        return record

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """Task ids by handoff key (200 keys a query)."""
        key_field = self._mapping.tasks.fields["key"]
        found: dict[str, str] = {}
        for batch in chunks(list(dict.fromkeys(keys)), IDS_PER_QUERY):
            soql = format_soql(
                "SELECT Id, {:literal} FROM {:literal} WHERE {:literal} IN {}",
                key_field,
                self._mapping.tasks.object,
                key_field,
                list(batch),
            )
            for row in self._rows(soql):
                found.setdefault(str(row[key_field]), str(row["Id"]))
        return found

    # --- schema check ------------------------------------------------------------------

    def check_mapping(self) -> list[str]:
        """Fields the mapping names that the org lacks, and status values not in LeadStatus."""
        m = self._mapping
        problems: list[str] = []
        wanted: dict[str, list[str]] = {}
        for source in m.contacts:
            names = [*source.crm_fields(), *m.write_back.values()]
            if m.stage.object in (None, source.object):
                names.append(m.stage.field)
            wanted[source.object] = names
        wanted[m.tasks.object] = [*m.tasks.fields.values(), *m.tasks.constants]
        describes: dict[str, _Described] = {}
        for obj, names in wanted.items():
            problems += [
                f"{obj}.{n}: {problem}"
                for n in dict.fromkeys(names)
                if (problem := self._field_problem(obj, n, describes))
            ]
        statuses: set[str] = set()
        for row in self._rows("SELECT ApiName, MasterLabel FROM LeadStatus"):
            statuses.update(str(v) for v in (row.get("ApiName"), row.get("MasterLabel")) if v)
        for value in [*m.lead_status.values.values(), *m.stage.write.values()]:
            if value not in statuses:
                problems.append(f"LeadStatus has no value {value!r}")
        # A clean check holds for this connector's life: writes need not ask again.
        self._checked = not problems
        return problems

    def _field_problem(self, obj: str, name: str, describes: dict[str, _Described]) -> str | None:
        """Why `obj` has no field `name` (None if it has); `Rel.Field` is checked on the
        object the relationship points to, as SOQL resolves it."""
        described = self._described(obj, describes)
        head, _, rest = name.partition(".")
        if not rest:
            return None if head in described.fields else "no such Salesforce field"
        targets = described.relationships.get(head)
        if targets is None:
            return f"no relationship {head!r} on {obj}"
        for target in targets:
            problem = self._field_problem(target, rest, describes)
            if problem is None:
                return None
        return f"no field {rest!r} on {' or '.join(targets)}"

    def _described(self, obj: str, cache: dict[str, _Described]) -> _Described:
        if obj not in cache:
            result = self._sf.restful(f"sobjects/{obj}/describe") or {}
            fields = result.get("fields") or []
            cache[obj] = _Described(
                fields={f["name"] for f in fields},
                relationships={
                    f["relationshipName"]: tuple(f.get("referenceTo") or ())
                    for f in fields
                    if f.get("relationshipName")
                },
            )
        return cache[obj]

    def _ensure_checked(self) -> None:
        if self._checked:
            return
        try:
            problems = self.check_mapping()
        except ConnectorError as exc:
            raise MappingError(f"could not check the mapping against Salesforce: {exc}") from exc
        if problems:
            raise MappingError("mapping does not match the Salesforce org: " + "; ".join(problems))
        self._checked = True
