"""Check recorded HubSpot exchanges against HubSpot's own OpenAPI documents.

The documents live beside the project (`../shared/specs/hubspot/`); each operation is
found by method and path template, then its query parameters, request body and answer
body are validated with jsonschema. OpenAPI 3.0 schemas are JSON Schema with a few
words of their own (`nullable`, `discriminator`, `example`), translated here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "hubspot"


@dataclass
class Exchange:
    """One request the product sent and the answer it got."""

    method: str
    url: str
    status: int
    request_body: Any = None
    response_body: Any = None


@dataclass
class Operation:
    document: str
    template: str
    method: str
    spec: dict[str, Any]
    path_parameters: list[dict[str, Any]] = field(default_factory=list)


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema words → JSON Schema (draft 4, whose numeric rules 3.0 uses)."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: _openapi_to_jsonschema(value)
        for key, value in node.items()
        if key not in ("nullable", "discriminator", "example", "xml", "externalDocs")
    }
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "$ref" in out:
            out = {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
    return out


@cache
def _document(name: str) -> dict[str, Any]:
    return json.loads((SPECS / name).read_text())


@cache
def _registry(name: str) -> Registry:
    converted = _openapi_to_jsonschema(_document(name))
    return Registry().with_resource(f"urn:{name}", Resource(converted, DRAFT4))


@cache
def _operations() -> list[Operation]:
    found = []
    for path in sorted(SPECS.glob("*.json")):
        for template, ops in _document(path.name).get("paths", {}).items():
            shared = ops.get("parameters", [])
            for method, spec in ops.items():
                if method == "parameters":
                    continue
                found.append(Operation(path.name, template, method.upper(), spec, shared))
    return found


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template.rstrip("/"))
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}/?$")


def find_operation(method: str, path: str) -> Operation | None:
    """The documented operation for a request; literal segments win over templates."""
    matches = [
        op for op in _operations() if op.method == method and _pattern(op.template).match(path)
    ]
    matches.sort(key=lambda op: op.template.count("{"))
    return matches[0] if matches else None


def _validate(document: str, schema: dict[str, Any], value: Any, where: str) -> list[str]:
    wrapped = {"$ref": "#/x", "x": _openapi_to_jsonschema(schema)}
    root = _openapi_to_jsonschema(_document(document))
    validator = Draft4Validator({**root, **wrapped}, registry=_registry(document))
    return [
        f"{where}: {_where(error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(value)
    ]


def _where(path: Iterable[Any]) -> str:
    """A value's place, list positions as `*`: one line per kind of problem, not per item."""
    return "/".join("*" if isinstance(p, int) else str(p) for p in path) or "(root)"


def _resolve(document: str, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = _document(document)
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def problems_of(exchange: Exchange) -> list[str]:
    """Every way an exchange differs from its documented operation (empty: it conforms)."""
    split = urlsplit(exchange.url)
    op = find_operation(exchange.method, split.path)
    label = f"{exchange.method} {split.path}"
    if op is None:
        return [f"{label}: no documented operation"]
    found: list[str] = []
    params = [
        _resolve(op.document, p) for p in [*op.path_parameters, *op.spec.get("parameters", [])]
    ]
    query = parse_qs(split.query, keep_blank_values=True)
    known = {p["name"] for p in params if p.get("in") == "query"}
    for name in query:
        if name not in known:
            found.append(f"{label}: query parameter {name!r} is not documented")
    for p in params:
        if p.get("in") != "query":
            continue
        if p.get("required") and p["name"] not in query:
            found.append(f"{label}: required query parameter {p['name']!r} missing")
    body_spec = op.spec.get("requestBody")
    if body_spec is not None:
        body_spec = _resolve(op.document, body_spec)
        schema = ((body_spec.get("content") or {}).get("application/json") or {}).get("schema")
        if exchange.request_body is None and body_spec.get("required"):
            found.append(f"{label}: request body required")
        elif schema is not None and exchange.request_body is not None:
            found += _validate(op.document, schema, exchange.request_body, f"{label} request")
    elif exchange.request_body not in (None, b"", {}):
        found.append(f"{label}: a request body where none is documented")
    responses = op.spec.get("responses", {})
    answer = responses.get(str(exchange.status)) or (
        responses.get("default") if exchange.status >= 400 else None
    )
    if answer is None:
        found.append(f"{label}: status {exchange.status} is not documented")
        return found
    answer = _resolve(op.document, answer)
    schema = ((answer.get("content") or {}).get("application/json") or {}).get("schema")
    if schema is not None and exchange.response_body is not None:
        found += _validate(op.document, schema, exchange.response_body, f"{label} answer")
    return found


def check_all(exchanges: Iterable[Exchange], allowed: dict[str, str]) -> list[str]:
    """Problems of all exchanges (each kind once), less those a known looseness allows."""
    left: dict[str, None] = {}
    for exchange in exchanges:
        for problem in problems_of(exchange):
            if not any(re.search(pattern, problem) for pattern in allowed):
                left[problem] = None
    return list(left)
