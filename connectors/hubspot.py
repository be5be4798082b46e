"""HubSpot connector: hubspot-api-client, api objects built once, every call throttled and retried.

The pulls live in `connectors.hubspot_pulls`; this module holds the client, the one way
a request is sent, and the reads and writes of the write-back.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
from collections import abc
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC
from typing import Any

from hubspot import HubSpot  # type: ignore[import-untyped]

from connectors.common import chunks, failed, is_backward, ok
from connectors.config import HubSpotConfig
from connectors.creates import create_in_batches
from connectors.errors import (
    BatchRejected,
    ConnectorError,
    FatalError,
    MappingError,
    RetriableError,
    RunBudgetSpent,
)
from connectors.hubspot_auth import HubSpotTokenProvider
from connectors.hubspot_pulls import HubSpotPulls
from connectors.mapping import Mapping, default_mapping, load_mapping
from connectors.protocol import ContactStatus
from connectors.retry import (
    PartialAnswer,
    Redactor,
    call_with_retry,
    retry_after_s,
    retry_partial,
)
from connectors.throttle import DailyQuota, RateLimitHeaders, Throttle, TokenBucket
from scoring.records import Crm
from scoring.writes import HandoffTask, OutcomeStatus, PropertyUpdate, StageChange, WriteOutcome

log = logging.getLogger(__name__)

BATCH_SIZE = 100
IN_VALUES = 100
TASK_TO_CONTACT = 204  # HubSpot-defined association type: task → contact
# Per-record errors in a 207 answer that are worth another attempt.
RETRIABLE_CATEGORIES = frozenset(
    {"RATE_LIMITS", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}
)
# Answers by which HubSpot refuses a whole batch for what one of its inputs holds (a
# deactivated owner, a contact merged away since the pull, an option that is gone).
BATCH_REFUSALS = frozenset({400, 409, 422})


class HubSpotConnector(HubSpotPulls):
    """`CrmConnector` for HubSpot."""

    crm = Crm.HUBSPOT

    def __init__(
        self,
        config: HubSpotConfig,
        mapping: Mapping | None = None,
        *,
        throttle: Throttle | None = None,
        token_provider: Callable[[], str] | None = None,
    ) -> None:
        self._config = config
        self._mapping = mapping or (
            load_mapping(config.mapping_file, crm=Crm.HUBSPOT)
            if config.mapping_file
            else default_mapping(Crm.HUBSPOT)
        )
        self._throttle = throttle or Throttle(
            {
                "default": TokenBucket(config.throttle.rate, config.throttle.burst),
                "search": TokenBucket(config.search_throttle.rate, config.search_throttle.burst),
            }
        )
        self._redact = Redactor(
            [config.access_token.get_secret_value() if config.access_token else None]
        )
        if token_provider is None and config.oauth is not None:
            token_provider = HubSpotTokenProvider(
                config.oauth,
                config.host,
                str(config.ca_file) if config.ca_file else None,
                config.retry,
                self._redact,
                config.timeout_s,
            )
        self._token_provider = token_provider
        self._checked = False
        self._limits = RateLimitHeaders(config.rate_limit_reserve)
        self._requests = 0
        self._requests_lock = threading.Lock()
        # `concurrency` bounds the requests in flight however many pulls and writes share
        # this connector (the flows build one per CRM and process).
        self._in_flight = threading.BoundedSemaphore(config.concurrency)
        if config.access_token is not None:
            token = config.access_token.get_secret_value()
        else:
            assert token_provider is not None  # the config requires one or the other
            token = token_provider()
            self._redact.add(token)
        self._renewals = 0  # tokens fetched since the first
        self._auth_lock = threading.Lock()
        self._build_apis(token)

    def _build_apis(self, token: str) -> None:
        client = HubSpot(
            access_token=token,
            host=self._config.host.rstrip("/"),
            ssl_ca_cert=str(self._config.ca_file) if self._config.ca_file else None,
            # Retries belong to connectors.retry alone; urllib3's own would double-count.
            retry=False,
            **_pool_options(self._config.concurrency),
        )
        # Each discovery property builds a new ApiClient and pool: take them once.
        self._contacts_search = client.crm.contacts.search_api
        self._contacts_batch = client.crm.contacts.batch_api
        self._contacts_basic = client.crm.contacts.basic_api
        self._tasks_search = client.crm.objects.tasks.search_api
        self._tasks_batch = client.crm.objects.tasks.batch_api
        self._meetings_search = client.crm.objects.meetings.search_api
        self._associations = client.crm.associations.v4.batch_api
        self._events = client.events.events_api
        self._properties = client.crm.properties.core_api

    # --- one request -------------------------------------------------------------------

    def _refresh_auth(self, stale: int | None = None) -> bool:
        """A new token for every api object; whether one was fetched. Requests in flight
        together that were refused the same token (sent in renewal `stale`) share one
        renewal: the first renews, the others find it done (False) and send again with
        its token."""
        assert self._token_provider is not None
        with self._auth_lock:
            if stale is not None and stale != self._renewals:
                return False
            token = self._token_provider()
            self._redact.add(token)
            for api in self._apis():
                api.api_client.configuration.access_token = token
            # Counted once every api object holds the new token: a request that reads
            # this number and then sends must send the token it names.
            self._renewals += 1
            return True

    def _apis(self) -> list[Any]:
        return [
            self._contacts_search,
            self._contacts_batch,
            self._contacts_basic,
            self._tasks_search,
            self._tasks_batch,
            self._meetings_search,
            self._associations,
            self._events,
            self._properties,
        ]

    def _call(
        self,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        idempotent: bool = True,
        what: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        body, _ = self._call_answer(
            method, *args, search=search, idempotent=idempotent, what=what, **kwargs
        )
        return body

    def _call_answer(
        self,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        idempotent: bool = True,
        what: str,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], float | None]:
        """`_call`, with the Retry-After (seconds) its answer carried, if any: a 207 that
        failed records for the rate limit may say when to send them again."""

        sent_with = [0]  # the renewal whose token the latest attempt carried

        def attempt() -> tuple[dict[str, Any], float | None]:
            # Raw JSON: the generated models cost more time than the HTTP round trip.
            with self._in_flight:
                sent_with[0] = self._renewals
                try:
                    response = method(
                        *args,
                        _preload_content=False,
                        _request_timeout=self._config.timeout_s,
                        **kwargs,
                    )
                except Exception as exc:
                    self._limits.observe(_headers(exc))  # a 429 says what is left, too
                    self._hold_on_rate_limit(exc, search)
                    raise
                headers = _headers(response)
                self._limits.observe(headers)
                try:
                    data = response.data
                finally:
                    response.release_conn()
            return (json.loads(data) if data else {}), retry_after_s(headers)

        return call_with_retry(
            attempt,
            policy=self._config.retry,
            redact=self._redact,
            # A private-app token does not expire: a 401 without a token provider is fatal.
            refresh_auth=(
                (lambda: self._refresh_auth(stale=sent_with[0]))
                if self._token_provider is not None
                else None
            ),
            idempotent=idempotent,
            what=what,
            before_attempt=lambda: self._before_request(search),
        )

    def _hold_on_rate_limit(self, exc: Exception, search: bool) -> None:
        """After a 429, hold the bucket the request passed for as long as the answer asks
        (else the first backoff), so that every worker sharing it waits, not only the one
        that was refused: the limit is the account's, and the others would be refused too."""
        # One at a time, the refused request's own retry wait is the only wait needed.
        if self._config.concurrency == 1 or getattr(exc, "status", None) != 429:
            return
        policy = self._config.retry
        asked = retry_after_s(_headers(exc))
        seconds = policy.backoff_base_s if asked is None else asked
        self._throttle.hold(
            "search" if search else "default", min(seconds, policy.max_retry_after_s)
        )

    def _before_request(self, search: bool) -> None:
        quota = self._limits.quota()
        share = self._config.daily_budget_share
        with self._requests_lock:
            # The portal's use as HubSpot last reported it (every integration of the
            # portal, every worker), or this run's own count where that is higher (the
            # headers trail by a request). A share of 1 leaves it to HubSpot's own 429.
            used = max(quota.limit - quota.remaining, self._requests) if quota else 0
            if quota is not None and share < 1 and used >= share * quota.limit:
                raise RunBudgetSpent(
                    f"HubSpot: the portal has used {used} of its daily limit of "
                    f"{quota.limit} requests ({self._requests} by this run): the run's share "
                    f"({share:.0%}) of the daily API budget is spent (the run stops and the "
                    "next one resumes from its cursors)",
                    code="RUN_BUDGET",
                )
            self._requests += 1
        if search:
            # The search endpoints have their own limit and send no rate-limit headers.
            self._throttle.acquire("search")
        else:
            self._throttle.acquire()
            self._limits.pace()

    def quota(self) -> DailyQuota | None:
        """(daily limit, remaining) as HubSpot's last answer said; None before it has.

        Private-app answers carry it; OAuth answers (no daily limit) and the search
        endpoints do not.
        """
        return self._limits.quota()

    @property
    def requests_sent(self) -> int:
        """Requests this connector has sent (each attempt counts), for its daily budget."""
        return self._requests

    # --- reads and writes --------------------------------------------------------------

    def read_status(self, crm_ids: Sequence[str]) -> dict[str, ContactStatus]:
        """Batch-read lead status, stage and owner, 100 ids a call."""
        source = self._mapping.contacts[0]
        status_field = self._mapping.lead_status.field
        owner_field = source.fields.get("owner_id", "hubspot_owner_id")
        props = [status_field, self._mapping.stage.field, owner_field]
        result: dict[str, ContactStatus] = {}
        for item in self._batch_read(list(crm_ids), props):
            p = item.get("properties") or {}
            status = p.get(status_field) or None
            result[str(item["id"])] = ContactStatus(
                crm_id=str(item["id"]),
                lead_status=status,
                status_key=self._mapping.lead_status.key_for(status),
                lifecycle_stage=self._mapping.stage.from_crm(p.get(self._mapping.stage.field)),
                owner_id=p.get(owner_field) or None,
            )
        return result

    def _batch_read(self, ids: list[str], props: list[str]) -> Iterator[dict[str, Any]]:
        """Contacts by id, 100 a call; ids a 207 marks retriable are read again."""

        def read(batch: dict[str, None], attempt: int) -> PartialAnswer[str, Any, str]:
            body = {
                "inputs": [{"id": i} for i in batch],
                "properties": props,
                "propertiesWithHistory": [],
            }
            response, retry_after = self._call_answer(
                self._contacts_batch.read, body, what="contacts batch read"
            )
            return PartialAnswer(
                settled={str(item["id"]): item for item in response.get("results") or []},
                retriable=_retriable_errors(response),
                retry_after=retry_after,
            )

        result = retry_partial(
            read,
            dict.fromkeys(ids),
            self._config.retry,
            what="contacts batch read",
            batch_size=BATCH_SIZE,
            concurrency=self._config.concurrency,
        )
        yield from result.settled.values()
        if result.failing:
            raise RetriableError(f"contacts batch read: {len(result.failing)} ids still failing")

    def update_properties(self, updates: Sequence[PropertyUpdate]) -> list[WriteOutcome]:
        """Batch-update written-back properties, 100 contacts a call."""
        self._ensure_checked()
        write_back = self._mapping.write_back
        inputs = {
            u.crm_id: {write_back[k]: _value(v) for k, v in u.values.items()} for u in updates
        }
        outcomes, _ = self._batch_update(inputs)
        return [outcomes[u.crm_id] for u in updates]

    def change_stages(self, changes: Sequence[StageChange]) -> list[WriteOutcome]:
        """Set lifecycle stages, and check that HubSpot really moved them.

        A backward move is a clear then a set, as HubSpot requires. HubSpot answers a
        backward set it ignores with a 200, and the stage this service believes a contact
        has may be stale (sales moved it on since the pull, so a "forward" move is in fact
        backward): a move counts as done only when its answer and then a read of the
        contact (one batch read per 100 moves) show the new stage.
        """
        self._ensure_checked()
        stage = self._mapping.stage
        status = self._mapping.lead_status
        final: dict[str, dict[str, str]] = {}
        backward: dict[str, dict[str, str]] = {}
        outcomes: dict[str, WriteOutcome] = {}
        for change in changes:
            props = {stage.field: stage.write[change.to_stage]}
            # In HubSpot the stage is lifecyclestage; a lead status goes with it only where
            # the mapping gives that key a value (many portals have no "MQL" lead status).
            if change.lead_status is not None and change.lead_status in status.values:
                props[status.field] = status.values[change.lead_status]
            final[change.crm_id] = props
            if is_backward(change.from_stage, change.to_stage):
                # HubSpot ignores a backward lifecyclestage set (answering 200): clear first.
                backward[change.crm_id] = {stage.field: ""}
        if backward:
            cleared, _ = self._batch_update(backward)
            for crm_id, outcome in cleared.items():
                if outcome.status is not OutcomeStatus.OK:
                    outcomes[crm_id] = outcome
                    final.pop(crm_id, None)
        written, answered = self._batch_update(final)
        outcomes.update(written)
        unconfirmed: dict[str, str] = {}
        for crm_id, props in final.items():
            outcome = outcomes[crm_id]
            if outcome.status is not OutcomeStatus.OK:
                continue
            target = props[stage.field]
            shown = (answered.get(crm_id) or {}).get(stage.field)
            if shown is not None and shown != target:
                outcomes[crm_id] = self._not_moved(outcome, shown, target, "answered")
            else:
                unconfirmed[crm_id] = target
        if unconfirmed:
            outcomes.update(self._confirm_stages(unconfirmed, outcomes))
        return [outcomes[c.crm_id] for c in changes]

    def _confirm_stages(
        self, targets: dict[str, str], outcomes: dict[str, WriteOutcome]
    ) -> dict[str, WriteOutcome]:
        """Read the contacts back: a stage that is not the target is a move not made."""
        field = self._mapping.stage.field
        try:
            actual = {
                str(item["id"]): (item.get("properties") or {}).get(field)
                for item in self._batch_read(list(targets), [field])
            }
        except ConnectorError as exc:
            # Not "failed": the move was accepted and may have landed. Its caller keeps the
            # intent and the handoff claim, so the move is made again and confirmed later.
            return {
                crm_id: WriteOutcome(
                    crm=self.crm,
                    target=crm_id,
                    status=OutcomeStatus.UNCONFIRMED,
                    message=f"contact {crm_id}: stage {target!r} written but not confirmed: "
                    f"{exc.message}",
                    attempts=outcomes[crm_id].attempts,
                )
                for crm_id, target in targets.items()
            }
        return {
            crm_id: self._not_moved(outcomes[crm_id], actual.get(crm_id), target, "reads")
            for crm_id, target in targets.items()
            if actual.get(crm_id) != target
        }

    def _not_moved(
        self, outcome: WriteOutcome, actual: str | None, target: str, how: str
    ) -> WriteOutcome:
        field = self._mapping.stage.field
        if how == "reads" and actual is None:
            seen = "the contact was not found when read back"
        elif how == "reads":
            seen = f"reading it back shows {field} {actual!r}"
        else:
            seen = f"its answer shows {field} {actual!r}"
        return failed(
            self.crm,
            outcome.target,
            f"contact {outcome.target}: HubSpot accepted the move to {target!r} but {seen}: "
            "the move did not happen",
            outcome.attempts,
        )

    def _batch_update(
        self, inputs: dict[str, dict[str, str]]
    ) -> tuple[dict[str, WriteOutcome], dict[str, dict[str, Any]]]:
        """Update contacts 100 a call: an outcome for each, and the properties answered.

        Records a 207 marks retriable are sent again; a batch refused as a whole is split
        (`_update_batch`).
        """
        answered: dict[str, dict[str, Any]] = {}

        def update(
            batch: dict[str, dict[str, str]], attempt: int
        ) -> PartialAnswer[str, WriteOutcome, WriteOutcome]:
            return self._update_batch(batch, attempt, answered)

        result = retry_partial(
            update,
            inputs,
            self._config.retry,
            what="contacts batch update",
            batch_size=BATCH_SIZE,
            concurrency=self._config.concurrency,
        )
        # A record still failing keeps the failure its last attempt was answered with.
        return {**result.settled, **result.failing}, answered

    def _update_batch(
        self,
        batch: dict[str, dict[str, str]],
        attempt: int,
        answered: dict[str, dict[str, Any]],
    ) -> PartialAnswer[str, WriteOutcome, WriteOutcome]:
        """One batch update; a batch refused as a whole is split until the bad records stand
        alone, so that every other record is written and each bad one fails with its reason.

        The properties each answer shows go to `answered`.
        """
        outcomes: dict[str, WriteOutcome] = {}
        retry: set[str] = set()
        asked: list[float] = []
        parts = [batch]
        while parts:
            part = parts.pop()
            body = {"inputs": [{"id": crm_id, "properties": p} for crm_id, p in part.items()]}
            try:
                response, retry_after = self._call_answer(
                    self._contacts_batch.update, body, what="contacts batch update"
                )
            except FatalError as exc:
                if not _refuses_batch(exc):
                    raise
                named = [i for i in dict.fromkeys(_named_ids(exc)) if i in part]
                if len(part) == 1 or named:
                    # A one-record batch refused is that record's failure; so is a record
                    # the refusal names.
                    for crm_id in named or list(part):
                        outcomes[crm_id] = failed(
                            self.crm, crm_id, f"contact {crm_id}: {exc.message}", attempt
                        )
                    rest = {i: p for i, p in part.items() if i not in named}
                    if named and rest:
                        parts.append(rest)
                else:
                    items = list(part.items())
                    middle = len(items) // 2
                    parts += [dict(items[middle:]), dict(items[:middle])]
                continue
            for crm_id in part:
                outcomes[crm_id] = ok(self.crm, crm_id, crm_id, attempt)
            for result in response.get("results") or []:
                answered[str(result.get("id"))] = result.get("properties") or {}
            for error in response.get("errors") or []:
                error_ids = [str(i) for i in (error.get("context") or {}).get("ids") or []]
                for crm_id in error_ids:
                    if crm_id not in part:
                        continue
                    if error.get("category") in RETRIABLE_CATEGORIES:
                        retry.add(crm_id)
                        if retry_after is not None:
                            asked.append(retry_after)
                    message = self._redact(str(error.get("message")))
                    outcomes[crm_id] = failed(
                        self.crm, crm_id, f"contact {crm_id}: {message}", attempt
                    )
        return PartialAnswer(
            settled={i: o for i, o in outcomes.items() if i not in retry},
            retriable={i: outcomes[i] for i in retry},
            retry_after=max(asked) if asked else None,
        )

    def create_tasks(self, tasks: Sequence[HandoffTask]) -> list[WriteOutcome]:
        """Create tasks 100 a call with the contact association inline; never twice per key.

        A create whose answer is lost or a 5xx is looked up by its key (twice, the second
        time once the search index has caught up) before it is sent again; a batch
        refused as a whole is split until the refused tasks stand alone.
        """
        self._ensure_checked()
        return create_in_batches(
            self.crm,
            tasks,
            BATCH_SIZE,
            self._send_tasks,
            self.find_tasks,
            self._config.retry.max_attempts,
            self._config.settle_s,
            backoff=self._config.retry,
        )

    def _send_tasks(
        self, pending: list[HandoffTask], attempt: int
    ) -> tuple[dict[str, WriteOutcome], list[HandoffTask]]:
        key_field = self._mapping.tasks.fields["key"]
        body = {"inputs": [self._task_input(t) for t in pending]}
        try:
            response = self._call(
                self._tasks_batch.create, body, idempotent=False, what="tasks batch create"
            )
        except FatalError as exc:
            if _refuses_batch(exc):
                raise BatchRejected(
                    exc.message, status=exc.status, code=exc.code, context=exc.context
                ) from None
            raise
        created = {
            str((r.get("properties") or {}).get(key_field)): str(r["id"])
            for r in response.get("results") or []
        }
        errors = response.get("errors") or []
        messages = "; ".join(str(e.get("message")) for e in errors)
        retriable = any(e.get("category") in RETRIABLE_CATEGORIES for e in errors)
        outcomes: dict[str, WriteOutcome] = {}
        retry: list[HandoffTask] = []
        for task in pending:
            if task.key in created:
                outcomes[task.key] = ok(self.crm, task.key, created[task.key], attempt)
            else:
                message = self._redact(messages or "not created")
                outcomes[task.key] = failed(
                    self.crm,
                    task.key,
                    f"task {task.key} for contact {task.contact_id}: {message}",
                    attempt,
                )
                retry.append(task)
        return outcomes, retry if retriable else []

    def _task_input(self, task: HandoffTask) -> dict[str, Any]:
        m = self._mapping.tasks
        values: dict[str, str | None] = {
            "key": task.key,
            "subject": task.subject,
            "body": task.body,
            "due_at": task.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "priority": m.priorities[task.priority],
            "owner_id": task.owner_id,
        }
        props = dict(m.constants)
        props.update({m.fields[k]: v for k, v in values.items() if k in m.fields and v is not None})
        return {
            "properties": props,
            "associations": [
                {
                    "to": {"id": task.contact_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": TASK_TO_CONTACT,
                        }
                    ],
                }
            ],
        }

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """Task ids by handoff key, through the tasks search API (100 keys a request)."""
        key_field = self._mapping.tasks.fields["key"]
        found: dict[str, str] = {}
        for batch in chunks(list(dict.fromkeys(keys)), IN_VALUES):
            filters = [{"propertyName": key_field, "operator": "IN", "values": list(batch)}]
            for response in self._keyset_search(
                self._tasks_search.do_search, filters, [key_field], "tasks search"
            ):
                for item in response.get("results") or []:
                    key = (item.get("properties") or {}).get(key_field)
                    if key:
                        found.setdefault(str(key), str(item["id"]))
        return found

    # --- schema check ------------------------------------------------------------------

    def check_mapping(self) -> list[str]:
        """Properties and option values the mapping names that the portal does not have."""
        contacts = self._property_defs("contacts")
        tasks = self._property_defs("tasks")
        problems: list[str] = []
        m = self._mapping
        wanted = [
            *m.contacts[0].crm_fields(),
            m.stage.field,
            m.lead_status.field,
            *m.write_back.values(),
        ]
        problems += [
            f"contacts.{n}: no such HubSpot property"
            for n in dict.fromkeys(wanted)
            if n not in contacts
        ]
        problems += [
            f"tasks.{n}: no such HubSpot property"
            for n in [*m.tasks.fields.values(), *m.tasks.constants]
            if n not in tasks
        ]
        for field, values in (
            (m.stage.field, m.stage.write.values()),
            (m.lead_status.field, m.lead_status.values.values()),
        ):
            options = contacts.get(field)
            if options:
                problems += [
                    f"contacts.{field}: no option {v!r}" for v in values if v not in options
                ]
        # A clean check holds for this connector's life: writes need not ask again.
        self._checked = not problems
        return problems

    def _property_defs(self, object_type: str) -> dict[str, set[str]]:
        response = self._call(
            self._properties.get_all, object_type, what=f"{object_type} properties"
        )
        return {
            p["name"]: {o.get("value") for o in p.get("options") or []}
            for p in response.get("results") or []
        }

    def _ensure_checked(self) -> None:
        if self._checked:
            return
        problems = self.check_mapping()
        if problems:
            raise MappingError("mapping does not match the HubSpot portal: " + "; ".join(problems))
        self._checked = True


def _pool_options(concurrency: int) -> dict[str, int]:
    """Client options for `concurrency` requests at once. Each api object keeps a pool of
    5 per CPU connections (hubspot-api-client's default), and sources pulled at once
    share one object for the paths without a typed API: past that size urllib3 would open
    a connection per request and discard it."""
    default = multiprocessing.cpu_count() * 5
    return {"connection_pool_maxsize": concurrency} if concurrency > default else {}


def _value(value: Any) -> str:
    # HubSpot takes every property value as a string; "" clears a property.
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _headers(answer: object) -> abc.Mapping[str, Any] | None:
    """An answer's (or a client exception's) headers, if it has them."""
    headers = getattr(answer, "headers", None)
    return headers if isinstance(headers, abc.Mapping) else None


def _retriable_errors(response: abc.Mapping[str, Any]) -> dict[str, str]:
    """The ids a 207 answer failed with an error worth another attempt, with its message."""
    return {
        str(i): str(error.get("message"))
        for error in response.get("errors") or []
        if error.get("category") in RETRIABLE_CATEGORIES
        for i in (error.get("context") or {}).get("ids") or []
    }


def _refuses_batch(exc: FatalError) -> bool:
    return exc.status in BATCH_REFUSALS and not isinstance(exc, MappingError)


def _named_ids(exc: ConnectorError) -> list[str]:
    """The record ids a refusal's context names (HubSpot sends `ids`, sometimes `id`)."""
    context = exc.context or {}
    ids = context.get("ids") or context.get("id") or []
    return [str(i) for i in ids] if isinstance(ids, list) else []
