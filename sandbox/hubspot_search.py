"""HubSpot CRM search: filterGroups, sorts and paging rules, independent of the object.

Records are read through a getter `(record, property name) -> value`, where values are
typed: datetimes as epoch ms, numbers as int/float, everything else as str (or None).
Filter values arrive as strings (or numbers) and are coerced with the property's type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sandbox.clock import parse_instant
from sandbox.hubspot_schema import PropertyDef

# HubSpot's search guide ("Limits", last modified March 2026): five filterGroups, six
# filters in a group, 18 in all, one sort, 200 a page, 10,000 results, a 3,000-character
# query. (An August 2024 changelog announced 5/10/25; the guide is the later word.)
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_SORTS = 1
MAX_LIMIT = 200
RESULT_CAP = 10_000
MAX_QUERY_CHARS = 3000

_RANGE = ("GT", "GTE", "LT", "LTE", "EQ", "BETWEEN")

Getter = Callable[[Any, str], Any]
Predicate = Callable[[Any], bool]


class SearchError(ValueError):
    """A request the real search API answers with 400 VALIDATION_ERROR."""


def check_request(body: dict[str, Any]) -> None:
    """Refuse what the search API refuses before it looks at a filter: too many sorts,
    filter groups or filters, a query longer than 3,000 characters."""
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise SearchError("sorts must be a list")
    if len(sorts) > MAX_SORTS:
        raise SearchError(
            f"Only one sorting rule can be applied to any search ({len(sorts)} given)"
        )
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise SearchError("filterGroups must be a list of objects")
    if len(groups) > MAX_GROUPS:
        raise SearchError(
            f"Too many filter groups ({len(groups)}); the limit is {MAX_GROUPS} filterGroups"
        )
    sizes = [len(g.get("filters") or []) for g in groups]
    for index, size in enumerate(sizes):
        if size > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in filterGroups[{index}] ({size}); the limit is "
                f"{MAX_FILTERS_PER_GROUP} filters in each group"
            )
    if sum(sizes) > MAX_FILTERS:
        raise SearchError(
            f"Too many filters ({sum(sizes)}); the limit is {MAX_FILTERS} filters in total"
        )
    query = body.get("query")
    if isinstance(query, str) and len(query) > MAX_QUERY_CHARS:
        raise SearchError(
            f"The query can contain at most {MAX_QUERY_CHARS} characters ({len(query)} given)"
        )


def _sort_key(get: Getter, name: str) -> Callable[[Any], Any]:
    return lambda r: _norm(get(r, name))


def always(record: Any) -> bool:
    """The predicate of a search with nothing left to test (callers may skip the scan)."""
    return True


def is_presorted(sorts: Iterable[Any], name: str) -> bool:
    """True if the sorts ask for ascending `name` alone (the index order)."""
    sorts = list(sorts)
    if len(sorts) != 1:
        return False
    s = sorts[0]
    if isinstance(s, str):
        return s == name
    return bool(s.get("propertyName") == name and s.get("direction", "ASCENDING") == "ASCENDING")


def _coerce(prop: PropertyDef, value: Any) -> Any:
    if value is None:
        raise SearchError(f"Missing value for filter on {prop.name}")
    try:
        if prop.type in ("datetime", "date"):
            return parse_instant(str(value))
        if prop.type == "number":
            number = float(value)
            return int(number) if number.is_integer() else number
    except ValueError as exc:
        raise SearchError(f"{value!r} is not a valid {prop.type} for {prop.name}") from exc
    return str(value).casefold()


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _filter(f: dict[str, Any], schema: dict[str, PropertyDef], get: Getter) -> Predicate:
    name = str(f.get("propertyName") or "")
    op = f.get("operator")
    prop = schema.get(name)
    if prop is None:
        raise SearchError(f"There was a problem with the request: unknown property {name!r}")

    def val(rec: Any) -> Any:
        return _norm(get(rec, name))

    if op == "HAS_PROPERTY":
        return lambda rec: get(rec, name) not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return lambda rec: get(rec, name) in (None, "")
    if op in ("IN", "NOT_IN"):
        values = {_coerce(prop, v) for v in f.get("values") or []}
        if op == "IN":
            return lambda rec: val(rec) in values
        return lambda rec: val(rec) not in values
    if op == "BETWEEN":
        lo, hi = _coerce(prop, f.get("value")), _coerce(prop, f.get("highValue"))
        return lambda rec: (v := val(rec)) is not None and lo <= v <= hi
    if op == "CONTAINS_TOKEN":
        token = str(f.get("value", "")).casefold().strip("*")
        return lambda rec: token in str(get(rec, name) or "").casefold()
    target = _coerce(prop, f.get("value"))
    compare: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda v: v == target,
        "NEQ": lambda v: v != target,
        "LT": lambda v: v is not None and v < target,
        "LTE": lambda v: v is not None and v <= target,
        "GT": lambda v: v is not None and v > target,
        "GTE": lambda v: v is not None and v >= target,
    }
    if op not in compare:
        raise SearchError(f"Unsupported operator {op!r}")
    test = compare[op]
    return lambda rec: test(val(rec))


def compile_groups(
    groups: list[dict[str, Any]],
    schema: dict[str, PropertyDef],
    get: Getter,
    indexed: str | None = None,
) -> Predicate:
    """One predicate for filterGroups: OR between groups, AND within a group."""
    check_request({"filterGroups": groups})
    compiled = [[_filter(f, schema, get) for f in g.get("filters") or []] for g in groups]
    if indexed is not None and len(groups) == 1:
        # The caller scans only the `time_bounds` range of its index, so range filters on
        # the indexed property are already true: skip them (a 10x cheaper scan).
        compiled = [
            [
                p
                for p, f in zip(compiled[0], groups[0].get("filters") or [], strict=True)
                if not (f.get("propertyName") == indexed and _index_bound(f))
            ]
        ]
    compiled = [g for g in compiled if g]
    if not compiled:
        return always
    return lambda rec: any(all(p(rec) for p in g) for g in compiled)


def _instant(value: Any) -> int | None:
    try:
        return parse_instant(str(value))
    except ValueError:
        return None


def _index_bound(f: dict[str, Any]) -> bool:
    """True if `time_bounds` turns this filter into index bounds (so it can be skipped)."""
    op = f.get("operator")
    if op not in _RANGE or _instant(f.get("value")) is None:
        return False
    return op != "BETWEEN" or _instant(f.get("highValue")) is not None


def time_bounds(groups: list[dict[str, Any]], name: str) -> tuple[int, int] | None:
    """Inclusive (lo, hi) bounds on `name` (epoch ms, or the number) that every matching
    record satisfies; ±2**62 on a side no filter bounds, None without groups. Used to
    narrow a scan with an index."""
    if not groups:
        return None
    lows, highs = [], []
    for g in groups:
        lo, hi = -(2**62), 2**62
        for f in g.get("filters") or []:
            if f.get("propertyName") != name:
                continue
            if not _index_bound(f):
                continue  # not a bound (or a bad value, which compile_groups reports)
            op = f.get("operator")
            v = parse_instant(str(f.get("value")))
            if op in ("GT", "GTE"):
                lo = max(lo, v + (op == "GT"))
            elif op in ("LT", "LTE"):
                hi = min(hi, v - (op == "LT"))
            elif op == "EQ":
                lo, hi = max(lo, v), min(hi, v)
            elif op == "BETWEEN":
                lo = max(lo, v)
                hi = min(hi, parse_instant(str(f.get("highValue"))))
        lows.append(lo)
        highs.append(hi)
    return min(lows), max(highs)


def bounded(groups: list[dict[str, Any]], name: str) -> tuple[int, int] | None:
    """`time_bounds`, or None when the filters leave `name` unbounded on both sides."""
    bounds = time_bounds(groups, name)
    if bounds is None or bounds == (-(2**62), 2**62):
        return None
    return bounds


def sort_records(
    records: list[Any], sorts: Iterable[Any], get: Getter, presorted_by: str | None = None
) -> list[Any]:
    """Sort by the request's sorts (objects or "-name" strings), id as the tiebreak.

    With no sorts, records come back by id. `presorted_by` names the property the
    records already ascend by (then with id), which saves the sort on the common path.
    """
    if presorted_by is not None and is_presorted(sorts, presorted_by):
        return records
    keys: list[tuple[str, bool]] = []
    for s in sorts:
        if isinstance(s, str):
            keys.append((s.lstrip("-"), s.startswith("-")))
        else:
            keys.append((s.get("propertyName", ""), s.get("direction") == "DESCENDING"))
    out = sorted(records, key=lambda r: get(r, "hs_object_id"))
    for name, desc in reversed(keys):
        present = [r for r in out if get(r, name) is not None]
        missing = [r for r in out if get(r, name) is None]
        present.sort(key=_sort_key(get, name), reverse=desc)
        out = present + missing  # empty values sort last either way
    return out


def page_window(after: Any, limit: Any) -> tuple[int, int]:
    """(offset, limit) from a search body, enforcing the page size and the result cap."""
    try:
        offset = int(after or 0)
        size = int(limit if limit is not None else 10)
    except (TypeError, ValueError) as exc:
        raise SearchError("after and limit must be integers") from exc
    if size < 0 or size > MAX_LIMIT:
        raise SearchError(f"limit must be between 0 and {MAX_LIMIT}")
    if offset + size > RESULT_CAP:
        raise SearchError(
            f"The search API cannot page beyond {RESULT_CAP} results (after={offset}, limit={size})"
        )
    return offset, size
