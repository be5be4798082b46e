"""Every exchange of a full HubSpot sync, held against HubSpot's own OpenAPI documents.

The sandbox records each request the product sends and the answer it gets; each is
matched to its documented operation (`../shared/specs/hubspot/`) and validated: query
parameters, request body, status and answer body. The documents' known looseness, and
the older APIs they do not describe, are listed below with the reason for each.
"""

from __future__ import annotations

from typing import Any

from tests.openapi_check import Exchange, check_all, find_operation
from tests.reliability.conftest import run_cli

# Differences that are the documents', not the product's: pattern → why it is allowed.
KNOWN_LOOSENESS = {
    # The marketing email events and form submissions APIs are older (v1) APIs that the
    # collection does not describe (see ../shared/specs/README.md); checked by hand
    # against their reference pages in tests/sandbox/test_hubspot_sources.py.
    r"^GET /email/public/v1/events: no documented operation": "legacy API, not in the docs",
    r"^GET /form-integrations/v1/submissions/forms/[^:]+: no documented operation": (
        "legacy API, not in the docs"
    ),
    # Private-app token introspection is an OAuth endpoint outside the collection.
    r"^POST /oauth/v2/private-apps/get/access-token-info: no documented operation": (
        "OAuth API, not in the docs"
    ),
    r"^GET /account-info/v3/details: no documented operation": "account-info, not in the docs",
    # The search request schema marks `after` required and types `sorts` items as strings,
    # while HubSpot's search guide sends no `after` on a first page and sorts as
    # {"propertyName", "direction"} objects (developers.hubspot.com/docs/api/crm/search).
    r"/search request: \(root\): 'after' is a required property": "first page has no cursor",
    r"/search request: sorts/\*: \{'propertyName'": "sort objects, as the search guide",
    # A requested property with no value comes back as null on the real API; the
    # documents type every property value as a string.
    r"answer: results/\*/properties/[a-z_]+: None is not of type 'string'": "unset is null",
}


def _exchanges(sb: Any) -> list[Exchange]:
    return [
        Exchange(
            e.method,
            f"{sb.base_url}{e.path}" + (f"?{e.query}" if e.query else ""),
            e.status,
            e.request_body,
            e.response_body,
        )
        for e in sb.sandbox.exchanges
    ]


def test_a_full_sync_speaks_hubspot_as_documented(crm_env: Any) -> None:
    sb = crm_env
    sb.sandbox.exchanges = []
    first = run_cli("sync", "hubspot")
    assert first.exit_code == 0, first.output
    again = run_cli("sync", "hubspot")  # incremental: cursors, lookups, nothing new
    assert again.exit_code == 0, again.output
    exchanges = _exchanges(sb)
    paths = {e.url.split("?")[0].removeprefix(sb.base_url).rstrip("/") for e in exchanges}
    # The run used the endpoints a sync needs: proof that there was something to check.
    needed = [
        "/crm/v3/objects/contacts/search", "/crm/v3/objects/contacts/batch/update",
        "/crm/v3/objects/contacts/batch/read", "/crm/v3/objects/tasks/batch/create",
        "/crm/v3/properties/contacts", "/crm/v3/objects/meetings/search",
        "/crm/v3/objects/calls/search", "/crm/v4/associations/meetings/contacts/batch/read",
        "/events/v3/events", "/events/v3/event-definitions", "/email/public/v1/events",
        "/marketing/v3/forms", "/marketing/marketing-events/v3",
    ]  # fmt: skip
    for path in needed:
        assert path in paths, (path, sorted(paths))
    assert any(p.startswith("/form-integrations/v1/submissions/forms/") for p in paths)
    assert any(p.startswith("/marketing/v3/marketing-events/participations/") for p in paths)
    problems = check_all(exchanges, KNOWN_LOOSENESS)
    assert problems == [], "\n".join(sorted(problems))


def test_the_checker_finds_what_the_documents_forbid() -> None:
    """The check can fail: a wrong body, an undocumented parameter, an unknown path."""
    search = "https://x/crm/v3/objects/contacts/search"
    assert find_operation("POST", "/crm/v3/objects/contacts/search") is not None
    bad_body = Exchange("POST", search, 200, {"filterGroups": "all"}, {"results": []})
    assert any("request" in p for p in check_all([bad_body], {}))
    bad_answer = Exchange("POST", search, 200, {"filterGroups": []}, {"results": "x"})
    assert any("answer" in p for p in check_all([bad_answer], {}))
    extra = Exchange("GET", "https://x/crm/v3/objects/contacts?color=red", 200, None, None)
    assert any("'color'" in p for p in check_all([extra], {}))
    nowhere = Exchange("GET", "https://x/crm/v3/nothing", 200, None, None)
    assert check_all([nowhere], {}) == ["GET /crm/v3/nothing: no documented operation"]
