"""The Tooling API subset a setup command uses: create a custom field
(`POST /tooling/sobjects/CustomField`) and list them (`GET /tooling/query`).

A created field exists at once, but the integration user has no field-level access to
it until a permission set granting it is assigned to them (sandbox.salesforce_access):
until then describe leaves it out and SOQL and writes answer INVALID_FIELD. The user
needs "Customize Application" to create fields; `OrgOptions.can_customize=False` takes
it away. Task and Event share their custom fields: they are created on `Activity`
(`Activity.Handoff_Key__c`) and appear on both; a FullName naming Task or Event is
refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import soql
from sandbox.clock import now_ms, salesforce_iso
from sandbox.ids import sf_id
from sandbox.salesforce_errors import SalesforceError
from sandbox.salesforce_schema import CUSTOMIZABLE, DATA_PATH
from sandbox.salesforce_store import Org

TOOLING_PATH = DATA_PATH + "/tooling"
# A custom field's API name: a letter, then letters, digits and single underscores, not
# ending in one, then `__c`; at most 40 characters before the suffix.
_FIELD_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)__c$")
_NAME_RULE = (
    "The Field Name field can only contain underscores and alphanumeric characters. It must "
    "be unique, begin with a letter, not include spaces, not end with an underscore, and not "
    "contain two consecutive underscores."
)
# Metadata type -> the field type describe and SOQL see.
FIELD_TYPES = {
    "Number": "double",
    "Text": "string",
    "LongTextArea": "textarea",
    "Checkbox": "boolean",
}
_TOOLING_FIELDS = {
    "Id": "id",
    "DeveloperName": "string",
    "TableEnumOrId": "string",
    "NamespacePrefix": "string",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
}


def _integrity(message: str, field: str | None = None) -> SalesforceError:
    return SalesforceError(400, "FIELD_INTEGRITY_EXCEPTION", message, [field] if field else None)


def _int_between(meta: dict[str, Any], key: str, low: int, high: int) -> int:
    value = meta.get(key)
    if value is None:
        raise _integrity(f"{key}: value not specified", key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _integrity(f"{key}: must be a whole number from {low} to {high}", key)
    return value


def check_metadata(meta: Any) -> tuple[str, Any]:
    """(describe type, default value) of a field's Metadata, or FIELD_INTEGRITY_EXCEPTION."""
    if not isinstance(meta, dict):
        raise _integrity("Metadata: value not specified", "Metadata")
    if not isinstance(meta.get("label"), str) or not meta["label"].strip():
        raise _integrity("label: value not specified", "label")
    kind = meta.get("type")
    if kind not in FIELD_TYPES:
        raise _integrity(
            f"type: bad value: {kind!r}; expected one of {sorted(FIELD_TYPES)}", "type"
        )
    default: Any = None
    if kind == "Number":
        precision = _int_between(meta, "precision", 1, 18)
        _int_between(meta, "scale", 0, precision)
    elif kind == "Text":
        _int_between(meta, "length", 1, 255)
    elif kind == "LongTextArea":
        _int_between(meta, "length", 256, 131_072)
        _int_between(meta, "visibleLines", 2, 50)
    else:
        raw = meta.get("defaultValue")
        if raw not in (True, False, "true", "false"):
            raise _integrity("defaultValue: a Checkbox needs true or false", "defaultValue")
        default = raw in (True, "true")
    for flag in ("externalId", "unique"):
        if meta.get(flag) and kind != "Text":
            raise _integrity(f"{flag}: only a Text field can be {flag}", flag)
    return FIELD_TYPES[kind], default


@dataclass
class _FieldRow:
    id: str
    sobject: str
    name: str
    created_ms: int

    def value(self, name: str) -> Any:
        return {
            "Id": self.id,
            "DeveloperName": self.name.removesuffix("__c"),
            "TableEnumOrId": self.sobject,
            "NamespacePrefix": None,
            "CreatedDate": self.created_ms,
            "LastModifiedDate": self.created_ms,
        }.get(name)


class ToolingApi:
    """The CustomField create and the Tooling query, over one org."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.rows: list[_FieldRow] = []
        for sobject in CUSTOMIZABLE:
            if sobject == "Event":
                continue  # its custom fields are Task's: both are Activity's
            table = "Activity" if sobject == "Task" else sobject
            for name in org.schema[sobject]:
                if name.endswith("__c"):
                    self._add_row(table, name, org.setup_ms)

    def routes(self) -> list[Route]:
        t = TOOLING_PATH
        routes = []
        for slash in ("", "/"):
            routes += [
                Route(t + "/sobjects/CustomField" + slash, self.create_field, methods=["POST"]),
                Route(t + "/query" + slash, self.query, methods=["GET"]),
            ]
        return routes

    def _add_row(self, sobject: str, name: str, created_ms: int) -> str:
        row = _FieldRow(sf_id("CustomField", len(self.rows)), sobject, name, created_ms)
        self.rows.append(row)
        return row.id

    async def create_field(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            new_id = self._create(body)
        except json.JSONDecodeError as exc:
            err = SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")
            return JSONResponse(err.body(), status_code=400)
        except SalesforceError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return JSONResponse(
            {"id": new_id, "success": True, "errors": [], "warnings": [], "infos": []},
            status_code=201,
        )

    def _create(self, body: Any) -> str:
        org = self.org
        if not org.options.can_customize:
            # The user lacks "Customize Application", which creating fields needs.
            raise SalesforceError(
                403, "INSUFFICIENT_ACCESS", "insufficient access rights on entity"
            )
        full_name = body.get("FullName") if isinstance(body, dict) else None
        if not isinstance(full_name, str) or "." not in full_name:
            raise _integrity("FullName: expected Object.Field__c", "FullName")
        obj_name, _, name = full_name.partition(".")
        table, targets = self._targets(obj_name)
        if not _FIELD_NAME.match(name) or len(name) > 43:
            raise _integrity(_NAME_RULE, "FullName")
        if any(existing.casefold() == name.casefold() for existing in org.schema[targets[0]]):
            raise SalesforceError(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {name.removesuffix('__c')} on {table}.",
                ["FullName"],
            )
        ftype, default = check_metadata(body.get("Metadata"))
        for sobject in targets:
            org.add_field(sobject, name, ftype, default)
        return self._add_row(table, name, now_ms())

    def _targets(self, obj_name: str) -> tuple[str, tuple[str, ...]]:
        """(the table a FullName names, the objects that get the field)."""
        if obj_name.casefold() == "activity":
            return "Activity", ("Task", "Event")
        sobject = self.org.sobject_name(obj_name)
        if sobject in ("Task", "Event"):
            raise _integrity(
                f"Cannot create a custom field on {sobject}: the custom fields of Task and "
                "Event are created on Activity",
                "FullName",
            )
        if sobject not in CUSTOMIZABLE:
            raise _integrity(f"FullName: no customizable object named {obj_name}", "FullName")
        return sobject, (sobject,)

    async def query(self, request: Request) -> Response:
        text = request.query_params.get("q")
        if not text:
            err = SalesforceError(400, "MALFORMED_QUERY", "No query string specified (q)")
            return JSONResponse(err.body(), status_code=400)
        try:
            records = self._run(text)
        except soql.SoqlError as exc:
            err = SalesforceError(400, exc.code, exc.message)
            return JSONResponse(err.body(), status_code=400)
        return JSONResponse({"size": len(records), "totalSize": len(records), "done": True,
                             "queryLocator": None, "entityTypeName": "CustomField",
                             "records": records})  # fmt: skip

    def _run(self, text: str) -> list[dict[str, Any]]:
        q = soql.parse(text)
        if q.sobject.casefold() != "customfield":
            raise soql.SoqlError(
                "INVALID_TYPE", f"sObject type '{q.sobject}' is not supported by this sandbox."
            )
        fields = {k.casefold(): k for k in _TOOLING_FIELDS}

        def resolve(name: str) -> tuple[str, Any]:
            canonical = fields.get(name.casefold())
            if canonical is None:
                raise soql.SoqlError(
                    "INVALID_FIELD", f"No such column '{name}' on entity 'CustomField'."
                )
            return _TOOLING_FIELDS[canonical], lambda row: row.value(canonical)

        for name in q.fields:
            resolve(name)
        pred = soql.compile_where(q.where, resolve)
        rows = [r for r in self.rows if pred(r)]
        if q.order_by:
            rows = soql.sort_rows(rows, q.order_by, resolve)
        rows = rows[q.offset :]
        if q.limit is not None:
            rows = rows[: q.limit]
        return [self._render(r, q.fields) for r in rows]

    def _render(self, row: _FieldRow, names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": "CustomField",
                "url": f"{TOOLING_PATH}/sobjects/CustomField/{row.id}",
            }
        }
        for name in names:
            canonical = next(k for k in _TOOLING_FIELDS if k.casefold() == name.casefold())
            value = row.value(canonical)
            if _TOOLING_FIELDS[canonical] == "datetime" and value is not None:
                value = salesforce_iso(value)
            out[canonical] = value
        return out
