"""Salesforce REST v59.0 endpoints over an `Org`: query/queryAll with cursors, sObject
rows, sObject Collections, limits, and the OAuth endpoints (token, userinfo)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import faults, soql
from sandbox.auth import Credentials
from sandbox.limits import Limiter
from sandbox.salesforce_oauth import (
    JWT_GRANT,
    OAuthError,
    check_assertion,
    check_client,
    token_answer,
    userinfo,
)
from sandbox.salesforce_schema import API_VERSION, DATA_PATH, REFERENCES, SETUP_OBJECTS
from sandbox.salesforce_store import PAGE_SIZE, Org, SalesforceError

COLLECTION_LIMIT = 200
# sObject Collections process records in chunks, a new one at each change of type.
CHUNK_LIMIT = 10
CREATABLE = ("Task", *SETUP_OBJECTS)
_DESCRIBE_TYPES = {
    "id": "id",
    "reference": "reference",
    "string": "string",
    "textarea": "textarea",
    "picklist": "picklist",
    "int": "int",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}


def sf_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from exc


class SalesforceApi:
    """Route handlers bound to one org."""

    def __init__(self, org: Org, credentials: Credentials, limiter: Limiter) -> None:
        self.org = org
        self.credentials = credentials
        self.limiter = limiter

    def routes(self) -> list[Route]:
        d = DATA_PATH
        routes = [
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/oauth2/userinfo", self.userinfo, methods=["GET"]),
            Route("/services/data", self.versions, methods=["GET"]),
            Route("/services/data/", self.versions, methods=["GET"]),
            Route(d + "/sobjects/{sobject}/describe", self.describe, methods=["GET"]),
            Route(d + "/sobjects/{sobject}/describe/", self.describe, methods=["GET"]),
            Route(d + "/sobjects/{sobject}/{record_id}", self.get_record, methods=["GET"]),
            Route(d + "/sobjects/{sobject}/{record_id}", self.patch_record, methods=["PATCH"]),
            Route(d + "/sobjects/{sobject}", self.create_record, methods=["POST"]),
            Route(d + "/sobjects/{sobject}/", self.create_record, methods=["POST"]),
            Route(d + "/composite/sobjects", self.collections_update, methods=["PATCH"]),
            Route(d + "/composite/sobjects", self.collections_create, methods=["POST"]),
        ]
        for slash in ("", "/"):
            routes += [
                Route(d + "/query" + slash, self.query, methods=["GET"]),
                Route(d + "/queryAll" + slash, self.query_all, methods=["GET"]),
                Route(d + "/limits" + slash, self.limits, methods=["GET"]),
            ]
        routes += [
            Route(d + "/query/{locator}", self.query_more, methods=["GET"]),
            Route(d + "/queryAll/{locator}", self.query_more, methods=["GET"]),
        ]
        return routes

    # -- auth ---------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """Client credentials or JWT bearer; any other grant type is refused."""
        # Parsed by hand: starlette's form parser needs python-multipart, and this
        # endpoint only ever receives application/x-www-form-urlencoded.
        parsed = parse_qs((await request.body()).decode("utf-8", "replace"))
        form = {k: v[0] for k, v in parsed.items()}
        base = _base_url(request)
        try:
            grant = form.get("grant_type")
            if grant == "client_credentials":
                check_client(form, self.credentials)
            elif grant == JWT_GRANT:
                check_assertion(form.get("assertion"), self.credentials, base)
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return JSONResponse(exc.body(), status_code=400)
        return JSONResponse(token_answer(self.credentials, base))

    async def userinfo(self, request: Request) -> Response:
        return JSONResponse(userinfo(self.credentials, _base_url(request)))

    async def versions(self, request: Request) -> Response:
        return JSONResponse([{"label": "Winter '24", "url": DATA_PATH, "version": API_VERSION}])

    # -- query --------------------------------------------------------------------------

    async def query(self, request: Request) -> Response:
        return self._run(request, include_deleted=False)

    async def query_all(self, request: Request) -> Response:
        return self._run(request, include_deleted=True)

    def _run(self, request: Request, include_deleted: bool) -> Response:
        text = request.query_params.get("q")
        if not text:
            return sf_error(400, "MALFORMED_QUERY", "No query string specified (q)")
        try:
            result = self.org.query(text, include_deleted)
        except soql.SoqlError as exc:
            return sf_error(400, exc.code, exc.message)
        locator = self.org.open_cursor(result) if len(result.rows) > PAGE_SIZE else None
        return JSONResponse(self._page(result, locator, 0, include_deleted))

    async def query_more(self, request: Request) -> Response:
        locator, _, offset_text = request.path_params["locator"].rpartition("-")
        result = self.org.cursors.get(locator)
        if result is None or not offset_text.isdigit():
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        include_deleted = "/queryAll/" in request.url.path
        return JSONResponse(self._page(result, locator, int(offset_text), include_deleted))

    def _page(
        self, result: Any, locator: str | None, offset: int, all_rows: bool
    ) -> dict[str, Any]:
        rows = result.rows[offset : offset + PAGE_SIZE]
        done = offset + PAGE_SIZE >= len(result.rows)
        body: dict[str, Any] = {
            "totalSize": len(result.rows),
            "done": done,
            "records": [self.org.render(result.sobject, r, result.fields) for r in rows],
        }
        if not done and locator:
            # Salesforce serves queryAll cursors under /query as well.
            body["nextRecordsUrl"] = f"{DATA_PATH}/query/{locator}-{offset + PAGE_SIZE}"
        return body

    async def limits(self, request: Request) -> Response:
        lim = self.limiter
        daily = lim.limits.salesforce_daily
        return JSONResponse(
            {
                "DailyApiRequests": {
                    "Max": daily,
                    "Remaining": max(0, daily - lim.salesforce_used),
                },
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            }
        )

    # -- single records -----------------------------------------------------------------

    def _sobject(self, name: str) -> str | None:
        return self.org.sobject_name(name)

    async def describe(self, request: Request) -> Response:
        """A minimal describe of the fields the user can read: each field's name, type,
        writability and, for references, the relationship name and the objects it points
        to. Fields hidden by field-level security are left out, as the real API does."""
        sobject = self._sobject(request.path_params["sobject"])
        if sobject is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        org = self.org
        fields = []
        for name, ftype in org.visible_fields(sobject).items():
            writable = org.editable(sobject, name)
            allowed = org.picklist_values.get((sobject, name), set())
            relationship, targets = REFERENCES.get((sobject, name), (None, ()))
            fields.append(
                {
                    "name": name,
                    "label": name.replace("__c", "").replace("_", " "),
                    "type": _DESCRIBE_TYPES[ftype],
                    "custom": name.endswith("__c"),
                    "updateable": writable and sobject in ("Lead", "Contact"),
                    "createable": writable and sobject in CREATABLE,
                    "nillable": name != "Id",
                    "referenceTo": list(targets),
                    "relationshipName": relationship,
                    "polymorphicForeignKey": len(targets) > 1,
                    "picklistValues": [
                        {"value": v, "label": v, "active": True} for v in sorted(allowed)
                    ],
                }
            )
        return JSONResponse(
            {
                "name": sobject,
                "label": sobject,
                "custom": False,
                "queryable": True,
                "createable": sobject in CREATABLE,
                "fields": fields,
            }
        )

    async def get_record(self, request: Request) -> Response:
        sobject = self._sobject(request.path_params["sobject"])
        if sobject is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        row = self.org.lookup(sobject, request.path_params["record_id"])
        if row is None or self.org.value(sobject, row, "IsDeleted"):
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return JSONResponse(self.org.render(sobject, row, list(self.org.visible_fields(sobject))))

    async def patch_record(self, request: Request) -> Response:
        sobject = self._sobject(request.path_params["sobject"])
        if sobject is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            values = await _json(request)
            if not isinstance(values, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "expected a JSON object")
            rid = request.path_params["record_id"]
            if sobject in SETUP_OBJECTS:
                self.org.access.prepare_update(sobject, rid, values)()
            else:
                self.org.prepare_update(sobject, rid, values)()
        except SalesforceError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return Response(status_code=204)

    async def create_record(self, request: Request) -> Response:
        sobject = self._sobject(request.path_params["sobject"])
        if sobject is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if sobject not in CREATABLE:
            return sf_error(
                400, "NOT_FOUND", f"Only {', '.join(CREATABLE)} records are created in this org"
            )
        try:
            values = await _json(request)
            if not isinstance(values, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "expected a JSON object")
            new_id = self.org.prepare_create(sobject, values)()
        except SalesforceError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return JSONResponse({"id": new_id, "success": True, "errors": []}, status_code=201)

    # -- sObject Collections ------------------------------------------------------------

    async def _collection(self, request: Request) -> tuple[list[dict[str, Any]], bool]:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records is required")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise SalesforceError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit "
                f"more than {COLLECTION_LIMIT} records into this call",
            )
        if _chunks(records) > CHUNK_LIMIT:
            # "A single request can process up to 10 chunks" (sObject Collections); the
            # wording is the platform's own for this limit.
            raise SalesforceError(
                400,
                "LIMIT_EXCEEDED",
                f"Cannot have more than {CHUNK_LIMIT} chunks in a single operation. "
                "Please rearrange the data to reduce chunking.",
            )
        return records, bool(body.get("allOrNone", False))

    async def collections_update(self, request: Request) -> Response:
        try:
            records, all_or_none = await self._collection(request)
        except SalesforceError as exc:
            return JSONResponse(exc.body(), status_code=400)

        def prepare(rec: dict[str, Any]) -> Callable[[], None]:
            sobject = (rec.get("attributes") or {}).get("type")
            if sobject is None:
                raise SalesforceError(400, "INVALID_TYPE", "Must send a concrete entity type.")
            return self.org.prepare_update(self._sobject(sobject) or sobject, _record_id(rec), rec)

        return self._apply(request, records, all_or_none, prepare, lambda rec, _: _record_id(rec))

    async def collections_create(self, request: Request) -> Response:
        try:
            records, all_or_none = await self._collection(request)
            _check_mixed(records)
        except SalesforceError as exc:
            return JSONResponse(exc.body(), status_code=400)

        def prepare(rec: dict[str, Any]) -> Callable[[], str]:
            sobject = self._sobject(str((rec.get("attributes") or {}).get("type") or ""))
            if sobject not in CREATABLE:
                raise SalesforceError(400, "INVALID_TYPE", "Must send a concrete entity type.")
            if _record_id(rec):
                raise SalesforceError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "cannot specify Id in an insert call",
                    ["Id"],
                )
            return self.org.prepare_create(sobject, rec)

        return self._apply(request, records, all_or_none, prepare, lambda _, result: result)

    def _apply(
        self,
        request: Request,
        records: list[dict[str, Any]],
        all_or_none: bool,
        prepare: Callable[[dict[str, Any]], Callable[[], Any]],
        id_of: Callable[[dict[str, Any], Any], Any],
    ) -> Response:
        """Validate every record, then apply: all or none, or each that passed."""
        keys = [_record_id(r) or str(i) for i, r in enumerate(records)]
        failing = faults.partial_failures(request, keys)
        prepared: list[Callable[[], Any] | SalesforceError] = []
        for key, rec in zip(keys, records, strict=True):
            if key in failing:
                prepared.append(
                    SalesforceError(
                        400,
                        "UNABLE_TO_LOCK_ROW",
                        "unable to obtain exclusive access to this record or 1 records: " + key,
                    )
                )
                continue
            try:
                prepared.append(prepare(rec))
            except SalesforceError as exc:
                prepared.append(exc)
        any_failed = any(isinstance(p, SalesforceError) for p in prepared)
        results = []
        for rec, p in zip(records, prepared, strict=True):
            if isinstance(p, SalesforceError):
                out = {"success": False, "errors": [p.record_error()]}
                if _record_id(rec):
                    out = {"id": _record_id(rec), **out}
                results.append(out)
            elif all_or_none and any_failed:
                rolled = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and "
                    "the request was using AllOrNone header",
                    "fields": [],
                }
                out = {"success": False, "errors": [rolled]}
                if _record_id(rec):
                    out = {"id": _record_id(rec), **out}
                results.append(out)
            else:
                results.append({"id": id_of(rec, p()), "success": True, "errors": []})
        return JSONResponse(results)


def _base_url(request: Request) -> str:
    """The URL the client reached the sandbox at: its instance URL (and My Domain)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def _chunks(records: list[Any]) -> int:
    """How many chunks a collection is processed in: one more at each change of type."""
    count, previous = 0, None
    for rec in records:
        attributes = rec.get("attributes") if isinstance(rec, dict) else None
        kind = str((attributes or {}).get("type") or "").casefold()
        if count == 0 or kind != previous:
            count, previous = count + 1, kind
    return count


def _check_mixed(records: list[Any]) -> None:
    """Setup objects (permission sets and their records) and other objects cannot be
    created in one call."""
    kinds = {
        str((rec.get("attributes") or {}).get("type") or "").casefold()
        for rec in records
        if isinstance(rec, dict)
    }
    setup = {o.casefold() for o in SETUP_OBJECTS}
    if kinds & setup and kinds - setup:
        raise SalesforceError(
            400,
            "MIXED_DML_OPERATION",
            "DML operation on setup object is not permitted after you have updated a "
            "non-setup object (or vice versa)",
        )


def _record_id(record: dict[str, Any]) -> str | None:
    """The record's Id: field names are case-insensitive in Salesforce ("id" and "Id" alike)."""
    return next((str(v) for k, v in record.items() if k.casefold() == "id" and v), None)
