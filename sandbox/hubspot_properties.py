"""The properties API over `portal.schema`: read properties and groups, create them
(as the product's setup does on a stock portal), and the profile that decides which
definitions a portal starts with.

A stock portal has none of the product's `mqlsync_*` properties; creating them through
`POST /crm/v3/properties/{objectType}` makes the portal accept the product's writes,
because every write path validates against `portal.schema`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.clock import hubspot_iso, now_ms
from sandbox.hubspot_engagements import ENGAGEMENT_SCHEMAS
from sandbox.hubspot_routes import error_body
from sandbox.hubspot_schema import PropertyDef, default_group, property_json
from sandbox.hubspot_store import HubSpotPortal

PRODUCT_PREFIX = "mqlsync_"
TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
FIELD_TYPES = (
    "booleancheckbox",
    "calculation_equation",
    "checkbox",
    "date",
    "file",
    "html",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
)
# HubSpot allows up to ten unique-value properties per object.
MAX_UNIQUE = 10
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_STOCK_GROUPS = {
    "contacts": (
        ("contactinformation", "Contact information"),
        ("conversioninformation", "Conversion information"),
        ("emailinformation", "Email information"),
        ("analyticsinformation", "Web analytics history"),
    ),
}


def apply_profile(portal: HubSpotPortal, profile: str) -> None:
    """Shape `portal.schema` for a profile; the engagement objects exist in both."""
    for object_type, props in ENGAGEMENT_SCHEMAS.items():
        portal.schema.setdefault(object_type, dict(props))
    if profile == "stock":
        for object_type in ("contacts", "tasks"):
            schema = portal.schema[object_type]
            for name in [n for n in schema if n.startswith(PRODUCT_PREFIX)]:
                del schema[name]


def _group_json(name: str, label: str, order: int) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": order, "archived": False}


class PropertiesApi:
    """`/crm/v3/properties/{objectType}[/{name}|/groups[/{groupName}]]`."""

    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal
        self.groups: dict[str, dict[str, tuple[str, int]]] = {}
        for object_type in portal.schema:
            stock = _STOCK_GROUPS.get(object_type, ())
            names = [*stock, (default_group(object_type), "Information")]
            self.groups[object_type] = {}
            for order, (name, label) in enumerate(names):
                self.groups[object_type].setdefault(name, (label, order))

    def routes(self) -> list[Route]:
        base = "/crm/v3/properties/{object_type}"
        return [
            Route(base, self.list_properties, methods=["GET"]),
            Route(base, self.create_property, methods=["POST"]),
            Route(base + "/groups", self.list_groups, methods=["GET"]),
            Route(base + "/groups", self.create_group, methods=["POST"]),
            Route(base + "/groups/{group_name}", self.get_group, methods=["GET"]),
            Route(base + "/{name}", self.get_property, methods=["GET"]),
        ]

    def _unknown(self, object_type: str) -> Response:
        return error_body(
            400, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {object_type}"
        )

    async def list_properties(self, request: Request) -> Response:
        object_type = request.path_params["object_type"]
        schema = self.portal.schema.get(object_type)
        if schema is None:
            return self._unknown(object_type)
        return JSONResponse({"results": [property_json(p, object_type) for p in schema.values()]})

    async def get_property(self, request: Request) -> Response:
        object_type = request.path_params["object_type"]
        schema = self.portal.schema.get(object_type) or {}
        prop = schema.get(request.path_params["name"])
        if prop is None:
            return error_body(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {request.path_params['name']}"
            )
        return JSONResponse(property_json(prop, object_type))

    async def list_groups(self, request: Request) -> Response:
        object_type = request.path_params["object_type"]
        groups = self.groups.get(object_type)
        if groups is None:
            return self._unknown(object_type)
        return JSONResponse(
            {"results": [_group_json(n, label, o) for n, (label, o) in groups.items()]}
        )

    async def get_group(self, request: Request) -> Response:
        object_type = request.path_params["object_type"]
        name = request.path_params["group_name"]
        found = (self.groups.get(object_type) or {}).get(name)
        if found is None:
            return error_body(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        return JSONResponse(_group_json(name, *found))

    async def create_group(self, request: Request) -> Response:
        object_type = request.path_params["object_type"]
        groups = self.groups.get(object_type)
        if groups is None:
            return self._unknown(object_type)
        body = await _body(request)
        if body is None:
            return error_body(400, "VALIDATION_ERROR", "Invalid input JSON")
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not isinstance(label, str) or not _NAME.match(name):
            return error_body(
                400,
                "VALIDATION_ERROR",
                "name (lowercase letters, digits, _) and label are required",
            )
        if name in groups:
            return error_body(
                409, "OBJECT_ALREADY_EXISTS", f"Property group named '{name}' already exists."
            )
        order = body.get("displayOrder")
        groups[name] = (label, order if isinstance(order, int) else -1)
        return JSONResponse(_group_json(name, *groups[name]), status_code=201)

    async def create_property(self, request: Request) -> Response:
        object_type = request.path_params["object_type"]
        schema = self.portal.schema.get(object_type)
        if schema is None:
            return self._unknown(object_type)
        body = await _body(request)
        if body is None:
            return error_body(400, "VALIDATION_ERROR", "Invalid input JSON")
        problem = self._problem(object_type, schema, body)
        if problem is not None:
            return error_body(400, "VALIDATION_ERROR", problem)
        name = body["name"]
        if name in schema:
            # Creating is not idempotent: a setup step must read first or accept the 409.
            return error_body(
                409,
                "OBJECT_ALREADY_EXISTS",
                f"Property named '{name}' already exists.",
                context={"name": [name]},
            )
        options = tuple(str(o["value"]) for o in body.get("options") or [])
        prop = PropertyDef(
            name,
            body["label"],
            body["type"],
            body["fieldType"],
            options,
            custom=True,
            group=body["groupName"],
            unique=bool(body.get("hasUniqueValue")),
            description=str(body.get("description") or ""),
        )
        schema[name] = prop
        out = property_json(prop, object_type)
        stamp = hubspot_iso(now_ms())
        out["createdAt"] = out["updatedAt"] = stamp
        return JSONResponse(
            out,
            status_code=201,
            headers={
                "Location": f"{request.url.scheme}://{request.url.netloc}{request.url.path}/{name}"
            },
        )

    def _problem(
        self, object_type: str, schema: dict[str, PropertyDef], body: dict[str, Any]
    ) -> str | None:
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            return f"Missing required fields: {', '.join(missing)}"
        name = body["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            return f"Invalid property name {name!r}: use lowercase letters, digits and _"
        if body["type"] not in TYPES:
            return f"Invalid type {body['type']!r}; one of {list(TYPES)}"
        if body["fieldType"] not in FIELD_TYPES:
            return f"Invalid fieldType {body['fieldType']!r}; one of {list(FIELD_TYPES)}"
        if body["groupName"] not in self.groups.get(object_type, {}):
            return f"Property group {body['groupName']!r} does not exist"
        options = body.get("options") or []
        if not isinstance(options, list) or not all(
            isinstance(o, dict) and "value" in o and "label" in o for o in options
        ):
            return "options must be a list of {label, value}"
        if body["type"] == "enumeration" and not options and body["fieldType"] != "booleancheckbox":
            return "An enumeration property needs options"
        if body.get("hasUniqueValue") and name not in schema:
            unique = sum(1 for p in schema.values() if p.unique)
            if unique >= MAX_UNIQUE:
                return f"An object can have at most {MAX_UNIQUE} unique-value properties"
        return None


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
