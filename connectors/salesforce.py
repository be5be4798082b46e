"""Salesforce connector: simple-salesforce over a session it owns.

Leads and Contacts come from SOQL on `SystemModstamp` through `query_all_iter`
(2,000 a page, server-side query locators, no result cap); activities from Task,
Event and CampaignMember as the mapping says, on `SystemModstamp` too (a bounded pull
adds `SystemModstamp < until`: the field every query orders and resumes by); writes
through sObject Collections, 200 records a call with `allOrNone=false` so one bad record
does not sink a batch.
Every value placed in SOQL goes through `format_soql`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as MappingABC
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from connectors.common import chunks, failed, ok
from connectors.config import SalesforceConfig
from connectors.creates import create_in_batches
from connectors.errors import AmbiguousWriteError, MappingError
from connectors.mapping import ActivitySource, ContactSource, Mapping, default_mapping, load_mapping
from connectors.paging import Page
from connectors.protocol import ContactStatus, Deletion
from connectors.retry import PartialAnswer, Redactor, retry_partial
from connectors.salesforce_bulk import bulk_rows
from connectors.salesforce_org import (
    CONVERSION_FIELDS,
    Described,
    LeadStatusRow,
    OrgPlan,
    check_fields,
    choose_stage,
    choose_statuses,
)
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
ORDER = f" ORDER BY {MODSTAMP} ASC, Id ASC"  # every REST pull's order, resumable by
CONVERTED_LEAD = "CANNOT_UPDATE_CONVERTED_LEAD"
T = TypeVar("T")
# Per-record error codes in a collections answer that are worth another attempt.
RETRIABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "TEMPORARY_ERROR"}
)


def _one_result_each(results: Any, sent: int) -> bool:
    """Whether a collections answer lists one result object per record sent (it is
    documented to, in order; anything else cannot be read record by record)."""
    return (
        isinstance(results, list)
        and len(results) == sent
        and all(isinstance(r, dict) for r in results)
    )


def _count(results: Any) -> int | str:
    return len(results) if isinstance(results, list) else type(results).__name__


def _soql_time(value: datetime) -> str:
    # A datetime literal formatted here, never taken from data: 2026-01-31T09:00:00Z.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _soql_time_ceiling(value: datetime) -> str:
    """`value` as a SOQL literal, rounded up to the second (literals have no fraction):
    an exclusive upper bound then cuts off no record before `value`."""
    whole = value.replace(microsecond=0)
    return _soql_time(whole if whole == value else whole + timedelta(seconds=1))


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
        self._client: Salesforce | None = None  # built on first use: see `api`
        self._plan: OrgPlan | None = None  # the mapping as this org runs it, once checked
        self._describes: dict[str, Described] = {}
        self._warnings: list[str] = []
        self._converted_to: dict[str, str] = {}  # lead id → the Contact it became

    @property
    def api(self) -> Salesforce:
        """The simple-salesforce client: every request it sends goes through this
        connector's session (TLS, auth renewal, throttle, budget guard, retries).

        Built on first use, at the instance the token answer names (the login host is
        not the org's instance), so making a connector costs no request.
        """
        if self._client is None:
            self._client = Salesforce(
                instance_url=self._session.instance_url(),
                # The session sets the current token on every request; this fills a slot.
                session_id=self._session.token or "pending",
                version=self._config.api_version,
                session=self._session,
            )
        return self._client

    @property
    def mapping(self) -> Mapping:
        return self._mapping

    # --- pulls -------------------------------------------------------------------------

    def _rows(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        return self.api.query_all_iter(soql, include_deleted=include_deleted)

    def _object_rows(
        self, obj: str, soql: str, *, include_deleted: bool
    ) -> Iterator[dict[str, Any]]:
        """An object's rows: REST query pages, or, when the first page says the object
        holds more than `bulk_rows` (a first sync, a backfill), one Bulk API 2.0 query
        job over the same query without its ORDER BY. The first page is then read for
        nothing: one request, against the ones the job saves."""
        result = self.api.query(soql, include_deleted=include_deleted)
        threshold = self._config.bulk_rows
        if threshold and not result["done"] and int(result["totalSize"]) > threshold:
            yield from bulk_rows(
                self.api,
                obj,
                soql.removesuffix(ORDER),
                include_deleted=include_deleted,
                page_rows=self._config.bulk_page_rows,
                poll_s=self._config.bulk_poll_s,
            )
            return
        while True:
            yield from result["records"]
            if result["done"]:
                return
            result = self.api.query_more(
                result["nextRecordsUrl"], identifier_is_url=True, include_deleted=include_deleted
            )

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
        name: str | None = None,
    ) -> Stream[T]:
        """One SObject read on SystemModstamp over the window, a page per request."""

        present = self._org().present(obj, fields)

        def fetch(start: datetime | None, until: datetime | None) -> Iterator[list[dict[str, Any]]]:
            soql = self._select(obj, ["Id", MODSTAMP, *present], start, until, where)
            return self._pages(self._object_rows(obj, soql, include_deleted=deleted))

        return Stream(name or obj, fetch, translate, time=at(MODSTAMP), key="Id")

    def pull_contacts(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Contact]]:
        """Leads and Contacts (one after the other, or side by side with `concurrency`)
        modified at or after `since` minus the overlap (and before `until`).

        A converted lead is no contact of its own: the Contact it became is (see
        `pull_deletions`), so that the person is counted once.
        """
        plan = self._org()
        mapping = plan.mapping
        streams: list[Stream[Contact]] = []
        for source in mapping.contacts:
            extra: tuple[str, ...] = ()
            if mapping.stage.object in (None, source.object):
                extra += (mapping.stage.field,)
                if plan.original_stage is not None:
                    extra += (plan.original_stage.field,)

            def translate(row: Any, crm_id: str, source: ContactSource = source) -> Contact:
                contact = to_contact(mapping, source, crm_id, row)
                if contact.lifecycle_stage is None and plan.original_stage is not None:
                    # Stage in the fallback field, not written yet: the status tells.
                    contact = contact.model_copy(update={"lifecycle_stage": self._stage_of(row)})
                return contact

            where = "IsConverted = false" if self._converts(source.object) else ""
            streams.append(
                self._stream(source.object, source.crm_fields(extra), translate, where=where)
            )
        return pull(streams, since, self._config.overlap_minutes, until=until,
                    concurrency=self._config.concurrency)  # fmt: skip

    def _converts(self, obj: str) -> bool:
        """True for an object whose records are converted (Lead): it has IsConverted."""
        return all(f in self._describe(obj).fields for f in CONVERSION_FIELDS)

    def _select(
        self,
        obj: str,
        fields: list[str],
        start: datetime | None,
        until: datetime | None = None,
        where: str = "",
    ) -> str:
        clauses = [where] if where else []
        if start is not None:
            clauses.append(f"{MODSTAMP} >= {_soql_time(start)}")
        if until is not None:
            clauses.append(f"{MODSTAMP} < {_soql_time_ceiling(until)}")
        soql = format_soql(
            "SELECT {:literal} FROM {:literal}", ", ".join(dict.fromkeys(fields)), obj
        )
        if clauses:
            soql += " WHERE " + " AND ".join(clauses)
        return soql + ORDER

    def pull_activities(
        self,
        since: datetime | None,
        sources: MappingABC[str, datetime] | None = None,
        *,
        until: datetime | None = None,
    ) -> Iterator[Page[Activity]]:
        """Task, Event and CampaignMember rows modified since the window start (each
        source's own cursor in `sources`, where one is stored), and before `until`.

        Bounded on `SystemModstamp`, as the start is, not on the time the activity
        happened: an Event's `ActivityDateTime` may lie ahead of when it was booked, and
        the window is what changed in the CRM within it."""
        mapping = self._org().mapping
        streams: list[Stream[Activity]] = []
        for name, decl in mapping.activity_sources.items():

            def translate(
                row: Any, crm_id: str, name: str = name, decl: ActivitySource = decl
            ) -> Activity | None:
                contact_id = next((v for f in decl.contact if (v := field_value(row, f))), None)
                # The first time field with a value: an all-day Event has only its date.
                times = decl.time_fields or ["CreatedDate"]
                occurred = next((v for f in times if (v := field_value(row, f))), None)
                return to_activity(mapping, name, crm_id, contact_id, occurred, row)

            streams.append(self._stream(name, mapping.activity_fields(name), translate))
        return pull(streams, since, self._config.overlap_minutes, source_since=sources,
                    until=until, concurrency=self._config.concurrency)  # fmt: skip

    def pull_deletions(
        self, since: datetime | None, *, until: datetime | None = None
    ) -> Iterator[Page[Deletion]]:
        """Deleted Leads and Contacts (queryAll with IsDeleted = true), and converted Leads,
        modified at or after `since` minus the overlap (and before `until`).

        A converted lead is never written to again (Salesforce refuses it): it leaves
        the live contacts, and names the Contact it became and when.
        """

        def translate(row: Any, crm_id: str) -> Deletion:
            return Deletion(self.crm, crm_id, parse_datetime(row.get(MODSTAMP), MODSTAMP))

        def converted(row: Any, crm_id: str) -> Deletion:
            when = parse_datetime(row.get("ConvertedDate"), "ConvertedDate")
            into = row.get("ConvertedContactId")
            return Deletion(
                self.crm, crm_id, when, converted_to=str(into) if into else None, converted_at=when
            )

        streams = [
            self._stream(source.object, [], translate, where="IsDeleted = true", deleted=True)
            for source in self._org().mapping.contacts
        ]
        streams += [
            self._stream(
                source.object,
                ["ConvertedContactId", "ConvertedDate"],
                converted,
                where="IsConverted = true",
                name=f"{source.object} converted",
            )
            for source in self._org().mapping.contacts
            if self._converts(source.object)
        ]
        return pull(streams, since, self._config.overlap_minutes, until=until,
                    concurrency=self._config.concurrency)  # fmt: skip

    # --- reads and writes --------------------------------------------------------------

    def read_status(self, crm_ids: Sequence[str]) -> dict[str, ContactStatus]:
        """Lead status and owner (Leads), owner (Contacts), 200 ids a query."""
        result: dict[str, ContactStatus] = {}
        plan = self._org()
        status = plan.mapping.lead_status
        stage = plan.mapping.stage
        for source, ids in self._by_source(crm_ids):
            owner = source.fields.get("owner_id", "OwnerId")
            has_status = status.object in (None, source.object)
            has_stage = stage.object in (None, source.object)
            fields = [
                "Id",
                owner,
                *([status.field] if has_status else []),
                *([stage.field] if has_stage else []),
            ]
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
                        lifecycle_stage=self._stage_of(row) if has_stage else None,
                        owner_id=row.get(owner),
                    )
        return result

    def _stage_of(self, row: MappingABC[str, Any]) -> Any:
        """The stage a row shows: its stage field, else (in fallback mode) its status."""
        plan = self._org()
        stage = plan.mapping.stage.from_crm(row.get(plan.mapping.stage.field))
        if stage is None and plan.original_stage is not None:
            stage = plan.original_stage.from_crm(row.get(plan.original_stage.field))
        return stage

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
        plan = self._org()
        records: dict[str, dict[str, Any]] = {}
        outcomes: dict[str, WriteOutcome] = {}
        for change in changes:
            obj = plan.mapping.source_for_id(change.crm_id).object
            values = self._stage_values(plan, obj, change)
            if isinstance(values, str):
                outcomes[change.crm_id] = failed(self.crm, change.crm_id, values)
                continue
            records[change.crm_id] = {"attributes": {"type": obj}, "Id": change.crm_id, **values}
        outcomes.update(self._collections_update(records))
        return [outcomes[c.crm_id] for c in changes]

    def _stage_values(self, plan: OrgPlan, obj: str, change: StageChange) -> dict[str, Any] | str:
        """The fields a stage move sets on this org, or why it cannot be written.

        To the status field: the sales status due, else the stage's status. To a fallback
        field: the stage's name, and the status too where one is due and the org has it.
        """
        stage, status = plan.mapping.stage, plan.mapping.lead_status
        if stage.object not in (None, obj):
            return f"{obj} records have no {stage.field} field"
        due = plan.status_values.get(change.lead_status) if change.lead_status else None
        if plan.stage_to_status:
            value = due if change.lead_status is not None else stage.write.get(change.to_stage)
            if value is None:
                return f"no {stage.field} value mapped for {change.lead_status or change.to_stage}"
            return {stage.field: value}
        values: dict[str, Any] = {stage.field: stage.write[change.to_stage]}
        if due is not None:
            values[status.field] = due
        return values

    def _collections_update(self, records: dict[str, dict[str, Any]]) -> dict[str, WriteOutcome]:
        """Update records 200 a call: an outcome for each the answers name.

        Records failed with a retriable code (a locked row, a busy server) are sent again.
        """

        def update(
            batch: dict[str, dict[str, Any]], attempt: int
        ) -> PartialAnswer[str, WriteOutcome, WriteOutcome]:
            body = {"allOrNone": False, "records": list(batch.values())}
            results = self.api.restful("composite/sobjects", method="PATCH", json=body) or []
            settled: dict[str, WriteOutcome] = {}
            retriable: dict[str, WriteOutcome] = {}
            if not _one_result_each(results, len(batch)):
                # Which result is whose is unknown: every record is sent again (an update
                # applied twice is the same update).
                why = f"the answer held {_count(results)} results for {len(batch)} records"
                return PartialAnswer(
                    retriable={i: failed(self.crm, i, why, attempt) for i in batch}
                )
            # The answer lists one result per record, in the order sent.
            for crm_id, result in zip(batch, results, strict=True):
                if result.get("success"):
                    settled[crm_id] = ok(self.crm, crm_id, crm_id, attempt)
                    continue
                errors = result.get("errors") or []
                outcome = failed(self.crm, crm_id, self._messages(errors), attempt)
                if any(e.get("statusCode") in RETRIABLE_CODES for e in errors):
                    retriable[crm_id] = outcome
                else:
                    settled[crm_id] = outcome
            return PartialAnswer(settled=settled, retriable=retriable)

        # One type after another: a call processes a chunk per change of type and refuses
        # more than ten, so Leads and Contacts must not alternate (a retry keeps the order).
        ordered = sorted(records, key=lambda i: str(records[i]["attributes"]["type"]))
        result = retry_partial(
            update,
            {crm_id: records[crm_id] for crm_id in ordered},
            self._config.retry,
            what="Salesforce collections update",
            batch_size=COLLECTION_SIZE,
            concurrency=self._config.concurrency,
        )
        # A record still failing keeps the failure its last attempt was answered with.
        return {**result.settled, **result.failing}

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
            backoff=self._config.retry,
        )

    def _send_tasks(
        self, pending: list[HandoffTask], attempt: int
    ) -> tuple[dict[str, WriteOutcome], list[HandoffTask]]:
        body = {"allOrNone": False, "records": [self._task_record(t) for t in pending]}
        results = self.api.restful("composite/sobjects", method="POST", json=body) or []
        if not _one_result_each(results, len(pending)):
            # Some may have been created, with ids this answer does not tie to them:
            # looked up before anything is sent again.
            raise AmbiguousWriteError(
                f"Salesforce task create: the answer held {_count(results)} results "
                f"for {len(pending)} records"
            )
        outcomes: dict[str, WriteOutcome] = {}
        retry: list[HandoffTask] = []
        converted: list[HandoffTask] = []
        for task, result in zip(pending, results, strict=True):
            if result.get("success"):
                outcomes[task.key] = ok(self.crm, task.key, str(result.get("id")), attempt)
                continue
            errors = result.get("errors") or []
            outcomes[task.key] = failed(self.crm, task.key, self._messages(errors), attempt)
            codes = {e.get("statusCode") for e in errors}
            if codes & RETRIABLE_CODES:
                retry.append(task)
            elif CONVERTED_LEAD in codes and task.contact_id not in self._converted_to:
                converted.append(task)
        # A lead converted since it was scored: the task goes to the Contact it became,
        # where sales now works the person (nothing was created: the record was refused).
        into = self._converted_contacts([t.contact_id for t in converted])
        self._converted_to.update(into)
        retry += [t for t in converted if t.contact_id in into]
        return outcomes, retry

    def _converted_contacts(self, lead_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in chunks(list(dict.fromkeys(lead_ids)), IDS_PER_QUERY):
            soql = format_soql(
                "SELECT Id, ConvertedContactId FROM Lead WHERE IsConverted = true AND Id IN {}",
                list(batch),
            )
            for row in self._rows(soql):
                if row.get("ConvertedContactId"):
                    found[str(row["Id"])] = str(row["ConvertedContactId"])
        return found

    def _task_record(self, task: HandoffTask) -> dict[str, Any]:
        m = self._mapping.tasks
        values: dict[str, Any] = {
            "key": task.key,
            "contact_id": self._converted_to.get(task.contact_id, task.contact_id),
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
        """What in the mapping this org lacks and a run cannot do without (empty: none).

        Every field a pull or a write names is checked against describe, before any
        query: an optional one the org lacks is left out (`warnings`), any other stops
        the run, named. Only then is `LeadStatus` read, to give each status key the
        org's value and to choose where the stage is written.
        """
        describe = self._describe
        plan, problems = check_fields(self._mapping, describe)
        if not problems:
            statuses = self._lead_statuses()
            choose_statuses(plan, statuses)
            problems += choose_stage(plan, statuses, describe)
        # A clean check holds for this connector's life: pulls and writes need not ask again.
        self._plan = None if problems else plan
        self._warnings = list(plan.warnings)
        return problems

    @property
    def warnings(self) -> list[str]:
        """What the last check left out or chose for this org (optional fields, statuses)."""
        return list(self._warnings)

    def _lead_statuses(self) -> list[LeadStatusRow]:
        rows = self._rows("SELECT ApiName, MasterLabel, IsConverted, IsDefault FROM LeadStatus")
        return [
            LeadStatusRow(
                value=str(row.get("ApiName") or row.get("MasterLabel")),
                label=str(row.get("MasterLabel") or row.get("ApiName")),
                converted=bool(row.get("IsConverted")),
                default=bool(row.get("IsDefault")),
            )
            for row in rows
        ]

    def _describe(self, obj: str) -> Described:
        if obj not in self._describes:
            result = self.api.restful(f"sobjects/{obj}/describe") or {}
            fields = result.get("fields") or []
            self._describes[obj] = Described(
                fields={f["name"] for f in fields},
                relationships={
                    f["relationshipName"]: tuple(f.get("referenceTo") or ())
                    for f in fields
                    if f.get("relationshipName")
                },
                updateable={f["name"] for f in fields if f.get("updateable")},
                createable={f["name"] for f in fields if f.get("createable")},
            )
        return self._describes[obj]

    def _org(self) -> OrgPlan:
        """The mapping as this org runs it, checked on first use (before any pull)."""
        if self._plan is not None:
            return self._plan
        problems = self.check_mapping()
        if problems or self._plan is None:
            raise MappingError("mapping does not match the Salesforce org: " + "; ".join(problems))
        return self._plan

    def _ensure_checked(self) -> None:
        self._org()
