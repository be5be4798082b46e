"""HubSpot CRM v3 (and v4 associations, events v3) endpoints over a `HubSpotPortal`."""

from __future__ import annotations

import json
import uuid
from bisect import bisect_left, bisect_right
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import faults, hubspot_search
from sandbox.clock import hubspot_iso, now_ms, parse_instant
from sandbox.hubspot_schema import DEFAULT_CONTACT_PROPERTIES, DEFAULT_PROPERTIES
from sandbox.hubspot_store import (
    CONTACT_ID_BASE,
    MEETING_TO_CONTACT,
    HubSpotError,
    HubSpotPortal,
    Problem,
    invalid_input,
)

BATCH_LIMIT = 100
LIST_LIMIT = 100


def error_body(status: int, category: str, message: str, **extra: Any) -> JSONResponse:
    """A HubSpot error response: status "error", message, correlationId, category."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return JSONResponse(body, status_code=status)


def _from_error(exc: HubSpotError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if exc.context:
        extra["context"] = exc.context
    if exc.sub_category:
        extra["subCategory"] = exc.sub_category
    if exc.errors:
        extra["errors"] = exc.errors
    return error_body(exc.status, exc.category, exc.message, **extra)


def missing_error(message: str, ids: list[str]) -> dict[str, Any]:
    """The batch error HubSpot adds when some of the requested ids do not exist."""
    return _record_error(HubSpotError(404, "OBJECT_NOT_FOUND", message, context={"ids": ids}))


def _record_error(exc: HubSpotError) -> dict[str, Any]:
    """One entry of a batch's `errors` list (the client's StandardError needs each key)."""
    out = {
        "status": "error",
        "category": exc.category,
        "message": exc.message,
        "context": exc.context,
        "links": {},
        "errors": [],
    }
    if exc.sub_category:
        out["subCategory"] = exc.sub_category
    return out


def prop_names(values: list[str] | None, default: tuple[str, ...]) -> list[str]:
    """The `properties` a read asks for (repeated or comma-separated), or `default`."""
    names = [n for v in values or [] for n in str(v).split(",") if n]
    return names or list(default)


def association_json(ident: str, contact: int, type_id: int) -> dict[str, Any]:
    """One result of a v4 associations batch read: an object and its one contact."""
    return {
        "from": {"id": ident},
        "to": [
            {
                # A string, and no label for an unlabelled type: as the v4 associations
                # document (associations.json) gives them.
                "toObjectId": str(contact),
                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id}],
            }
        ],
    }


def batch_response(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int, status: int = 200
) -> JSONResponse:
    """A batch answer: 200 (or `status`), or 207 when some inputs failed with `errors`."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": hubspot_iso(started),
        "completedAt": hubspot_iso(now_ms()),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        status = 207
    return JSONResponse(body, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def _retriable(ident: str) -> HubSpotError:
    return HubSpotError(
        500,
        "INTERNAL_ERROR",
        "Internal error processing this record; retry",
        context={"ids": [ident]},
        sub_category="RETRIABLE",
    )


class HubSpotApi:
    """Route handlers bound to one portal."""

    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal

    def routes(self) -> list[Route]:
        c = "/crm/v3/objects/contacts"
        return [
            Route(c, self.list_contacts, methods=["GET"]),
            Route(c + "/search", self.search_contacts, methods=["POST"]),
            Route(c + "/batch/read", self.batch_read, methods=["POST"]),
            Route(c + "/batch/update", self.batch_update, methods=["POST"]),
            Route(c + "/{contact_id}", self.get_contact, methods=["GET"]),
            Route(c + "/{contact_id}", self.patch_contact, methods=["PATCH"]),
            Route("/crm/v3/objects/tasks", self.create_task, methods=["POST"]),
            Route("/crm/v3/objects/tasks/batch/create", self.batch_create_tasks, methods=["POST"]),
            Route("/crm/v3/objects/tasks/search", self.search_tasks, methods=["POST"]),
            Route("/crm/v3/objects/tasks/{task_id}", self.get_task, methods=["GET"]),
            Route("/crm/v3/objects/meetings/search", self.search_meetings, methods=["POST"]),
            Route(
                "/crm/v4/associations/{from_type}/{to_type}/batch/read",
                self.associations_read,
                methods=["POST"],
            ),
            Route("/crm/v3/owners", self.owners, methods=["GET"]),
            Route("/crm/v3/owners/", self.owners, methods=["GET"]),
            Route("/events/v3/events", self.events, methods=["GET"]),
            Route("/events/v3/events/", self.events, methods=["GET"]),
        ]

    # -- contacts -----------------------------------------------------------------------

    async def list_contacts(self, request: Request) -> Response:
        q = request.query_params
        limit = min(int(q.get("limit", 10)), LIST_LIMIT)
        archived = _flag(q.get("archived"))
        names = prop_names(q.getlist("properties"), DEFAULT_CONTACT_PROPERTIES)
        try:
            ids, nxt = self.portal.list_page(q.get("after"), limit, archived)
        except ValueError:
            return error_body(400, "VALIDATION_ERROR", "after must be a valid paging cursor")
        body: dict[str, Any] = {
            "results": [self.portal.contact_json(self.portal.contacts[i], names) for i in ids]
        }
        if nxt:
            link = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?after={nxt}"
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONResponse(body)

    async def get_contact(self, request: Request) -> Response:
        q = request.query_params
        contact = self.portal.find_contact(
            request.path_params["contact_id"], _flag(q.get("archived")), q.get("idProperty")
        )
        if contact is None:
            return Response(status_code=404)  # the real API answers an empty 404 here
        names = prop_names(q.getlist("properties"), DEFAULT_CONTACT_PROPERTIES)
        return JSONResponse(self.portal.contact_json(contact, names))

    async def patch_contact(self, request: Request) -> Response:
        try:
            body = await _json(request)
            props = body.get("properties") or {}
            self.portal.check_properties(props, self.portal.schema["contacts"])
            contact = self.portal.find_contact(request.path_params["contact_id"])
            if contact is None:
                return Response(status_code=404)
            self.portal.update_contact(contact, props)
        except HubSpotError as exc:
            return _from_error(exc)
        return JSONResponse(
            self.portal.contact_json(contact, [*DEFAULT_CONTACT_PROPERTIES, *props])
        )

    async def search_contacts(self, request: Request) -> Response:
        portal = self.portal
        portal.settle_search()
        try:
            body = await _json(request)
            hubspot_search.check_request(body)
            groups = body.get("filterGroups") or []
            # Scan by modstamp when the filters bound it, else by id when they bound that
            # (the "slice by hs_object_id" pattern), else everything in modstamp order.
            time_b = hubspot_search.bounded(groups, "lastmodifieddate")
            id_b = None if time_b else hubspot_search.bounded(groups, "hs_object_id")
            indexed = "hs_object_id" if id_b else "lastmodifieddate"
            pred = hubspot_search.compile_groups(
                groups, self.portal.schema["contacts"], portal.contact_value, indexed=indexed
            )
            offset, size = hubspot_search.page_window(body.get("after"), body.get("limit"))
        except hubspot_search.SearchError as exc:
            return error_body(400, "VALIDATION_ERROR", str(exc))
        except HubSpotError as exc:
            return _from_error(exc)
        names = prop_names(body.get("properties"), DEFAULT_CONTACT_PROPERTIES)
        sorts = body.get("sorts") or []
        if pred is hubspot_search.always and hubspot_search.is_presorted(sorts, indexed):
            # The index alone answers: page through its keys without touching records.
            keys = portal.id_keys(id_b) if id_b else portal.modstamp_keys(time_b)
            page = [portal.searchable(k) for k in keys[offset : offset + size]]
            total = len(keys)
        else:
            candidates = portal.id_candidates(id_b) if id_b else portal.search_candidates(time_b)
            matches = [c for c in candidates if pred(c)]
            matches = hubspot_search.sort_records(matches, sorts, portal.contact_value, indexed)
            page, total = matches[offset : offset + size], len(matches)
        return JSONResponse(
            _search_body(total, offset, size, [portal.contact_json(c, names) for c in page])
        )

    async def batch_read(self, request: Request) -> Response:
        started = now_ms()
        try:
            body = await _json(request)
            inputs = _inputs(body)
        except HubSpotError as exc:
            return _from_error(exc)
        archived = _flag(request.query_params.get("archived"))
        names = prop_names(body.get("properties"), DEFAULT_CONTACT_PROPERTIES)
        results, missing = [], []
        failing = faults.partial_failures(request, [str(i.get("id")) for i in inputs])
        errors = [_record_error(_retriable(i)) for i in failing]
        for item in inputs:
            ident = str(item.get("id"))
            if ident in failing:
                continue
            contact = self.portal.find_contact(ident, archived, body.get("idProperty"))
            if contact is None:
                missing.append(ident)
            else:
                results.append(self.portal.contact_json(contact, names))
        if missing:
            errors.append(
                missing_error(
                    "Could not get some CONTACT objects, they may be "
                    "deleted or not exist. Check that ids are valid.",
                    missing,
                )
            )
        return batch_response(results, errors, started)

    async def batch_update(self, request: Request) -> Response:
        started = now_ms()
        portal = self.portal
        try:
            body = await _json(request)
            inputs = _inputs(body)
            ids = [str(i.get("id")) for i in inputs]
            if len(set(ids)) != len(ids):
                raise HubSpotError(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
            # One invalid input fails the whole batch: nothing is written.
            problems = [
                (index, problem)
                for index, item in enumerate(inputs)
                for problem in portal.property_problems(
                    item.get("properties") or {}, portal.schema["contacts"]
                )
            ]
            if problems:
                raise invalid_input(problems)
        except HubSpotError as exc:
            return _from_error(exc)
        failing = faults.partial_failures(request, ids)
        results, errors, missing = [], [], []
        for item in inputs:
            ident = str(item.get("id"))
            if ident in failing:
                errors.append(_record_error(_retriable(ident)))
                continue
            contact = portal.find_contact(ident)
            if contact is None:
                missing.append(ident)
                continue
            props = item.get("properties") or {}
            portal.update_contact(contact, props)
            results.append(portal.contact_json(contact, [*DEFAULT_CONTACT_PROPERTIES, *props]))
        if missing:
            # Ids that do not exist (or were archived or merged away) are the documented
            # 207 case: the other inputs are written.
            errors.append(
                missing_error(
                    "Could not update some CONTACT objects, they may be deleted or not exist.",
                    missing,
                )
            )
        return batch_response(results, errors, started)

    # -- tasks --------------------------------------------------------------------------

    async def create_task(self, request: Request) -> Response:
        try:
            body = await _json(request)
            task = self.portal.create_task(
                body.get("properties") or {}, body.get("associations") or []
            )
        except HubSpotError as exc:
            return _from_error(exc)
        names = [*DEFAULT_PROPERTIES, *task.props]
        return JSONResponse(self.portal.task_json(task, names, with_assoc=False), status_code=201)

    async def batch_create_tasks(self, request: Request) -> Response:
        started = now_ms()
        portal = self.portal
        try:
            body = await _json(request)
            inputs = _inputs(body)
            # One invalid input fails the whole batch: no task is created.
            checked = [
                portal.task_problems(item.get("properties") or {}, item.get("associations") or [])
                for item in inputs
            ]
            problems: list[tuple[int | None, Problem]] = [
                (index, problem) for index, (found, _) in enumerate(checked) for problem in found
            ]
            if problems:
                raise invalid_input(problems)
        except HubSpotError as exc:
            return _from_error(exc)
        keys = [str(i) for i in range(len(inputs))]
        failing = faults.partial_failures(request, keys)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for key, item, (_, contact_ids) in zip(keys, inputs, checked, strict=True):
            if key in failing:
                errors.append(_record_error(_retriable(key)))
                continue
            task = portal.add_task(item.get("properties") or {}, contact_ids)
            results.append(
                portal.task_json(task, [*DEFAULT_PROPERTIES, *task.props], with_assoc=False)
            )
        return batch_response(results, errors, started, 201)

    async def get_task(self, request: Request) -> Response:
        try:
            task = self.portal.tasks.get(int(request.path_params["task_id"]))
        except ValueError:
            task = None
        if task is None:
            return Response(status_code=404)
        names = prop_names(request.query_params.getlist("properties"), DEFAULT_PROPERTIES)
        return JSONResponse(self.portal.task_json(task, names))

    async def search_tasks(self, request: Request) -> Response:
        portal = self.portal
        try:
            body = await _json(request)
            hubspot_search.check_request(body)
            groups = body.get("filterGroups") or []
            pred = hubspot_search.compile_groups(
                groups, self.portal.schema["tasks"], portal.task_value
            )
            offset, size = hubspot_search.page_window(body.get("after"), body.get("limit"))
        except hubspot_search.SearchError as exc:
            return error_body(400, "VALIDATION_ERROR", str(exc))
        except HubSpotError as exc:
            return _from_error(exc)
        matches = [t for t in portal.tasks.values() if portal.task_indexed(t) and pred(t)]
        matches = hubspot_search.sort_records(matches, body.get("sorts") or [], portal.task_value)
        names = prop_names(body.get("properties"), DEFAULT_PROPERTIES)
        page = matches[offset : offset + size]
        return JSONResponse(
            _search_body(
                len(matches), offset, size, [portal.task_json(t, names, False) for t in page]
            )
        )

    # -- meetings and associations ------------------------------------------------------

    async def search_meetings(self, request: Request) -> Response:
        portal = self.portal
        try:
            body = await _json(request)
            hubspot_search.check_request(body)
            groups = body.get("filterGroups") or []
            pred = hubspot_search.compile_groups(
                groups,
                self.portal.schema["meetings"],
                portal.meeting_value,
                indexed="hs_lastmodifieddate",
            )
            offset, size = hubspot_search.page_window(body.get("after"), body.get("limit"))
        except hubspot_search.SearchError as exc:
            return error_body(400, "VALIDATION_ERROR", str(exc))
        except HubSpotError as exc:
            return _from_error(exc)
        bounds = hubspot_search.bounded(groups, "hs_lastmodifieddate")
        matches = [m for m in portal.meeting_candidates(bounds) if pred(m)]
        matches = hubspot_search.sort_records(
            matches, body.get("sorts") or [], portal.meeting_value, "hs_lastmodifieddate"
        )
        names = prop_names(body.get("properties"), DEFAULT_PROPERTIES)
        page = matches[offset : offset + size]
        return JSONResponse(
            _search_body(len(matches), offset, size, [portal.meeting_json(m, names) for m in page])
        )

    async def associations_read(self, request: Request) -> Response:
        started = now_ms()
        from_type = request.path_params["from_type"]
        to_type = request.path_params["to_type"]
        try:
            body = await _json(request)
            inputs = _inputs(body, limit=1000)
        except HubSpotError as exc:
            return _from_error(exc)
        if (from_type, to_type) != ("meetings", "contacts"):
            return error_body(
                400,
                "VALIDATION_ERROR",
                f"Associations {from_type} to {to_type} are not served here",
            )
        results, missing = [], []
        for item in inputs:
            ident = str(item.get("id"))
            contact = self.portal.meeting_contact(ident)
            if contact is None:
                missing.append(ident)
                continue
            results.append(association_json(ident, contact, MEETING_TO_CONTACT))
        errors = []
        if missing:
            errors.append(
                missing_error(
                    "No associations found for some meetings",
                    missing,
                )
            )
        return batch_response(results, errors, started)

    # -- owners (the properties API is sandbox.hubspot_properties) -----------------------

    async def owners(self, request: Request) -> Response:
        q = request.query_params
        owners = self.portal.owners_json(archived=_flag(q.get("archived")))
        if q.get("email"):
            owners = [o for o in owners if o["email"] == q["email"]]
        limit = min(int(q.get("limit", 100)), 500)
        start = int(q.get("after") or 0)
        body: dict[str, Any] = {"results": owners[start : start + limit]}
        if start + limit < len(owners):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return JSONResponse(body)

    # -- events --------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        q = request.query_params
        portal = self.portal
        if q.get("objectType", "contact").lower() not in ("contact", "contacts", "0-1"):
            return JSONResponse({"results": []})
        etype = q.get("eventType")
        positions = portal.event_pos.get(etype) if etype else portal.all_event_pos
        if positions is None:
            return error_body(400, "VALIDATION_ERROR", f"Unknown eventType {etype}")
        ts = portal.population.hubspot.ts
        try:
            lo = parse_instant(q["occurredAfter"]) if q.get("occurredAfter") else None
            hi = parse_instant(q["occurredBefore"]) if q.get("occurredBefore") else None
            limit = min(int(q.get("limit", 100)), 1000)
            offset = int(q.get("after") or 0)
        except ValueError as exc:
            return error_body(400, "VALIDATION_ERROR", f"Invalid parameter: {exc}")
        sort = ",".join(q.getlist("sort")) or "DESCENDING"
        descending = sort in ("DESCENDING", "-occurredAt")
        selected = _time_slice(positions, ts, lo, hi)
        object_id = q.get("objectId")
        if object_id:
            person = int(object_id) - CONTACT_ID_BASE
            selected = [p for p in selected if portal.population.hubspot.person[p] == person]
        if descending:
            selected = selected[::-1]
        page = selected[offset : offset + limit]
        body: dict[str, Any] = {"results": [portal.event_json(p) for p in page]}
        if offset + limit < len(selected):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return JSONResponse(body)


def _time_slice(positions: Any, ts: Any, lo: int | None, hi: int | None) -> list[int]:
    """Positions (ascending in time) with lo < ts < hi, by bisecting on their times."""

    class _View:
        def __len__(self) -> int:
            return len(positions)

        def __getitem__(self, i: int) -> int:
            return int(ts[positions[i]])

    view = _View()
    start = bisect_right(view, lo) if lo is not None else 0
    end = bisect_left(view, hi) if hi is not None else len(positions)
    return list(positions[start:end])


def _search_body(
    total: int, offset: int, size: int, results: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"total": total, "results": results}
    if offset + size < total:
        body["paging"] = {"next": {"after": str(offset + size)}}
    return body


def _inputs(body: dict[str, Any], limit: int = BATCH_LIMIT) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required")
    if len(inputs) > limit:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Batch input exceeds the limit of {limit} inputs ({len(inputs)} given)",
        )
    return inputs


__all__ = ["HubSpotApi", "error_body"]


def _flag(value: str | None) -> bool:
    # The generated client renders Python booleans as "True"/"False".
    return (value or "").lower() == "true"
