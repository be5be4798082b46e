"""Salesforce Bulk API 2.0 query jobs over an `Org`: create, status, results by locator
(CSV), abort, delete. What each rule imitates is cited in `sandbox/README.md`.

A job runs its query when it is created (the rows are the org's at that moment, as a
real job's snapshot is) and reports `InProgress` to the first status read, so that a
client has to poll before it reads results, as it must against a real org.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import soql
from sandbox.ids import sf_id
from sandbox.salesforce_schema import API_VERSION, DATA_PATH
from sandbox.salesforce_store import Org, QueryResult

JOBS_PATH = DATA_PATH + "/jobs/query"
OPERATIONS = ("query", "queryAll")
# A results page holds at most this many rows whatever maxRecords asks (the documented
# default when maxRecords is absent is "as many as fit", bounded here for memory).
MAX_PAGE_ROWS = 50_000


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"errorCode": code, "message": message}], status_code=status)


@dataclass
class QueryJob:
    id: str
    operation: str
    query: str
    result: QueryResult
    created: datetime
    state: str = "UploadComplete"
    reads: int = 0  # status reads so far: the first sees the job still running
    locators: dict[str, int] = field(default_factory=dict)  # locator -> row offset

    def info(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.result.sobject,
            "createdById": "005000000000001AAA",
            "createdDate": self.created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "systemModstamp": self.created.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(API_VERSION),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        if self.state == "JobComplete":
            body["numberRecordsProcessed"] = len(self.result.rows)
            body["retries"] = 0
            body["totalProcessingTime"] = 0
        return body


class BulkQueryApi:
    """Route handlers for the query jobs of one org."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.jobs: dict[str, QueryJob] = {}
        self._ids = itertools.count(1)

    def routes(self) -> list[Route]:
        return [
            Route(JOBS_PATH, self.create, methods=["POST"]),
            Route(JOBS_PATH + "/", self.create, methods=["POST"]),
            Route(JOBS_PATH + "/{job_id}", self.status, methods=["GET"]),
            Route(JOBS_PATH + "/{job_id}", self.abort, methods=["PATCH"]),
            Route(JOBS_PATH + "/{job_id}", self.delete, methods=["DELETE"]),
            Route(JOBS_PATH + "/{job_id}/results", self.results, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "the request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "JSON_PARSER_ERROR", "the request body is not a JSON object")
        operation, text = body.get("operation"), body.get("query")
        if operation not in OPERATIONS:
            return _error(400, "INVALIDJOB", f"Invalid operation: {operation}")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "INVALIDJOB", "A query is required for a query job")
        if body.get("contentType", "CSV") != "CSV":
            return _error(400, "INVALIDJOB", "Query jobs return CSV only")
        try:
            if soql.parse(text).offset:
                # Bulk API 2.0 refuses OFFSET (and GROUP BY, TYPEOF, aggregates,
                # parent-to-child subqueries, which this sandbox's SOQL has not at all).
                return _error(400, "API_ERROR", "OFFSET is not supported by Bulk API 2.0")
            result = self.org.query(text, include_deleted=operation == "queryAll")
        except soql.SoqlError as exc:
            return _error(400, exc.code, exc.message)
        job_id = "750" + sf_id("Task", next(self._ids))[3:]
        job = QueryJob(job_id, operation, text, result, datetime.now(UTC))
        self.jobs[job_id] = job
        return JSONResponse(job.info())

    def _job(self, request: Request) -> QueryJob | None:
        return self.jobs.get(request.path_params["job_id"])

    async def status(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if job.state in ("UploadComplete", "InProgress"):
            job.reads += 1
            job.state = "InProgress" if job.reads == 1 else "JobComplete"
        return JSONResponse(job.info())

    async def abort(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "the request body is not JSON")
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            return _error(400, "INVALIDJOB", "A query job's state can only be set to Aborted")
        if job.state in ("JobComplete", "Failed", "Aborted"):
            return _error(400, "INVALIDJOB", f"Cannot abort a job in state {job.state}")
        job.state = "Aborted"
        return JSONResponse(job.info())

    async def delete(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if job.state in ("UploadComplete", "InProgress"):
            return _error(400, "INVALIDJOB", "Abort the job before deleting it")
        del self.jobs[job.id]
        return Response(status_code=204)

    async def results(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if job.state != "JobComplete":
            return _error(
                400, "INVALIDJOB", f"Results are not available for a job in state {job.state}"
            )
        params = request.query_params
        locator = params.get("locator")
        if locator:
            if locator not in job.locators:
                return _error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
            offset = job.locators[locator]
        else:
            offset = 0
        asked = params.get("maxRecords")
        if asked is not None and (not asked.isdigit() or int(asked) < 1):
            return _error(400, "INVALIDREQUEST", f"Invalid maxRecords: {asked}")
        size = min(int(asked) if asked else MAX_PAGE_ROWS, MAX_PAGE_ROWS)
        rows = job.result.rows[offset : offset + size]
        following = offset + len(rows)
        if following < len(job.result.rows):
            next_locator = _locator(following)
            job.locators[next_locator] = following
        else:
            next_locator = "null"
        return Response(
            self._csv(job.result, rows),
            media_type="text/csv",
            headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(rows))},
        )

    def _csv(self, result: QueryResult, rows: list[Any]) -> str:
        """Rows as Bulk API 2.0 writes them: a header of the query's fields as written
        (a parent's field as `Parent.Field`), every value quoted, a null as an empty
        field, booleans as `true`/`false`."""
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(result.fields)
        for row in rows:
            record = self.org.render(result.sobject, row, result.fields)
            writer.writerow([_text(_path(record, name)) for name in result.fields])
        return out.getvalue()


def _locator(offset: int) -> str:
    # Opaque to the client, as a real one is; unique per offset within a job.
    return f"MTAw{offset:08d}"


def _path(record: dict[str, Any], name: str) -> Any:
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        key = next((k for k in value if k.casefold() == part.casefold()), None)
        value = value.get(key) if key is not None else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
