"""A SOQL subset: parse a query into a small tree, then compile its WHERE clause into a
predicate over rows read through a field getter.

Supported: SELECT of fields (including one-level relationship fields such as
Account.Name), FROM one object, WHERE with AND / OR / NOT and parentheses, the operators
= != <> < <= > >= LIKE IN (...) NOT IN (...), literals (strings, numbers, TRUE/FALSE,
NULL, datetimes such as 2026-01-01T00:00:00Z, dates such as 2026-01-01), ORDER BY with
ASC/DESC and NULLS FIRST/LAST, LIMIT and OFFSET. Anything else is MALFORMED_QUERY.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.clock import parse_instant


class SoqlError(ValueError):
    """A query the real API refuses: `code` is MALFORMED_QUERY, INVALID_FIELD, ..."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DateTimeLit:
    ms: int


@dataclass(frozen=True)
class DateLit:
    ms: int


@dataclass
class Cond:
    field: str
    op: str  # = != < <= > >= LIKE IN NOTIN
    value: Any  # a literal, or a list of literals for IN / NOT IN


@dataclass
class BoolOp:
    op: str  # AND | OR | NOT
    items: list[Any]


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Any = None
    order_by: list[tuple[str, bool, bool]] = field(default_factory=list)  # name, desc, nulls_last
    limit: int | None = None
    offset: int = 0


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT:])
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "NULL",
    "TRUE",
    "FALSE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos:].split()[0]}'")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind or "")
        if kind == "dt":
            out.append(("lit", DateTimeLit(parse_instant(value))))
        elif kind == "date":
            ms = int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() * 1000)
            out.append(("lit", DateLit(ms)))
        elif kind == "num":
            out.append(("lit", float(value) if "." in value else int(value)))
        elif kind == "str":
            out.append(
                (
                    "lit",
                    re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), value[1:-1]),
                )
            )
        elif kind == "word" and value.upper() in _KEYWORDS:
            word = value.upper()
            if word in ("TRUE", "FALSE"):
                out.append(("lit", word == "TRUE"))
            elif word == "NULL":
                out.append(("lit", None))
            else:
                out.append(("kw", word))
        elif kind == "word":
            out.append(("name", value))
        else:
            out.append(("sym", "!=" if value == "<>" else value))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, kind: str | None = None, value: Any = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return (kind is None or k == kind) and (value is None or v == value)

    def take(self, kind: str, value: Any = None) -> Any:
        if not self.peek(kind, value):
            got = self.toks[self.i][1] if self.i < len(self.toks) else "end of query"
            want = value or kind
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{got}' (expected {want})")
        self.i += 1
        return self.toks[self.i - 1][1]

    def query(self) -> Query:
        self.take("kw", "SELECT")
        fields = [self.take("name")]
        while self.peek("sym", ","):
            self.take("sym", ",")
            fields.append(self.take("name"))
        self.take("kw", "FROM")
        q = Query(fields=fields, sobject=self.take("name"))
        if self.peek("kw", "WHERE"):
            self.take("kw", "WHERE")
            q.where = self.disjunction()
        if self.peek("kw", "ORDER"):
            self.take("kw", "ORDER")
            self.take("kw", "BY")
            q.order_by.append(self.order_item())
            while self.peek("sym", ","):
                self.take("sym", ",")
                q.order_by.append(self.order_item())
        if self.peek("kw", "LIMIT"):
            self.take("kw", "LIMIT")
            q.limit = self._int()
        if self.peek("kw", "OFFSET"):
            self.take("kw", "OFFSET")
            q.offset = self._int()
        if self.i != len(self.toks):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.toks[self.i][1]}'")
        return q

    def _int(self) -> int:
        value = self.take("lit")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SoqlError("MALFORMED_QUERY", f"expected a non-negative integer, got {value!r}")
        return value

    def order_item(self) -> tuple[str, bool, bool]:
        name = self.take("name")
        desc = False
        if self.peek("kw", "ASC") or self.peek("kw", "DESC"):
            desc = self.take("kw") == "DESC"
        nulls_last = desc  # Salesforce's default: nulls first ascending, last descending
        if self.peek("kw", "NULLS"):
            self.take("kw", "NULLS")
            nulls_last = self.take("kw") == "LAST"
        return name, desc, nulls_last

    def disjunction(self) -> Any:
        items = [self.conjunction()]
        while self.peek("kw", "OR"):
            self.take("kw", "OR")
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def conjunction(self) -> Any:
        items = [self.unary()]
        while self.peek("kw", "AND"):
            self.take("kw", "AND")
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def unary(self) -> Any:
        if self.peek("kw", "NOT"):
            self.take("kw", "NOT")
            return BoolOp("NOT", [self.unary()])
        if self.peek("sym", "("):
            self.take("sym", "(")
            inner = self.disjunction()
            self.take("sym", ")")
            return inner
        return self.condition()

    def condition(self) -> Cond:
        name = self.take("name")
        if self.peek("kw", "NOT"):
            self.take("kw", "NOT")
            self.take("kw", "IN")
            return Cond(name, "NOTIN", self.literal_list())
        if self.peek("kw", "IN"):
            self.take("kw", "IN")
            return Cond(name, "IN", self.literal_list())
        if self.peek("kw", "LIKE"):
            self.take("kw", "LIKE")
            value = self.take("lit")
            if not isinstance(value, str):
                raise SoqlError("MALFORMED_QUERY", "LIKE needs a string literal")
            return Cond(name, "LIKE", value)
        op = self.take("sym")
        if op not in ("=", "!=", "<", "<=", ">", ">="):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}'")
        return Cond(name, op, self.take("lit"))

    def literal_list(self) -> list[Any]:
        self.take("sym", "(")
        values = [self.take("lit")]
        while self.peek("sym", ","):
            self.take("sym", ",")
            values.append(self.take("lit"))
        self.take("sym", ")")
        return values


def parse(text: str) -> Query:
    """Parse a SOQL query, raising SoqlError(MALFORMED_QUERY) on what is not supported."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    return _Parser(text).query()


# -- evaluation ---------------------------------------------------------------------------

Row = Any
FieldGetter = Callable[[Row], Any]
# Resolves a (case-insensitive) field name to (its type, a getter); raises SoqlError.
Resolver = Callable[[str], tuple[str, FieldGetter]]


def _literal_for(ftype: str, fname: str, value: Any) -> Any:
    """The literal as a comparable value of the field's type, or INVALID_FIELD."""
    if value is None:
        return None
    if ftype == "datetime":
        if isinstance(value, DateTimeLit):
            return value.ms
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{fname}' must "
            "be of type dateTime and should not be enclosed in quotes",
        )
    if ftype == "date":
        if isinstance(value, DateLit):
            return value.ms
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{fname}' must "
            "be of type date and should not be enclosed in quotes",
        )
    if ftype in ("int", "double"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{fname}' must "
            "be of type double and should not be enclosed in quotes",
        )
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{fname}' must "
            "be of type boolean and should not be enclosed in quotes",
        )
    if not isinstance(value, str):
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{fname}' must "
            "be of type string and should be enclosed in quotes",
        )
    # Ids compare exactly: their case carries meaning and their order is ASCII order.
    return value if ftype in _EXACT else value.casefold()


_EXACT = ("id", "reference")


def _like(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def compile_where(node: Any, resolve: Resolver) -> Callable[[Row], bool]:
    """A predicate for a WHERE tree. String comparisons ignore case, as SOQL's do."""
    if node is None:
        return lambda row: True
    if isinstance(node, BoolOp):
        preds = [compile_where(item, resolve) for item in node.items]
        if node.op == "AND":
            return lambda row: all(p(row) for p in preds)
        if node.op == "OR":
            return lambda row: any(p(row) for p in preds)
        inner = preds[0]
        return lambda row: not inner(row)
    ftype, get = resolve(node.field)
    fold = ftype not in _EXACT

    def val(row: Row) -> Any:
        v = get(row)
        return v.casefold() if fold and isinstance(v, str) else v

    op = node.op
    if op in ("IN", "NOTIN"):
        values = {_literal_for(ftype, node.field, v) for v in node.value}
        if op == "IN":
            return lambda row: val(row) in values
        return lambda row: val(row) not in values
    if op == "LIKE":
        rx = _like(node.value)
        return lambda row: (v := get(row)) is not None and rx.fullmatch(str(v)) is not None
    target = _literal_for(ftype, node.field, node.value)
    if op == "=":
        return lambda row: val(row) == target
    if op == "!=":
        return lambda row: val(row) != target
    if target is None:
        return lambda row: False
    if op == "<":
        return lambda row: (v := val(row)) is not None and v < target
    if op == "<=":
        return lambda row: (v := val(row)) is not None and v <= target
    if op == ">":
        return lambda row: (v := val(row)) is not None and v > target
    return lambda row: (v := val(row)) is not None and v >= target


def conjuncts(node: Any) -> list[Any]:
    """The terms of the top-level ANDs of a WHERE tree ("(a AND b) AND c" -> a, b, c)."""
    out: list[Any] = []
    stack = [node] if node is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, BoolOp) and item.op == "AND":
            stack.extend(reversed(item.items))
        else:
            out.append(item)
    return out


def key_values(node: Any, fname: str) -> set[Any] | None:
    """The only values `fname` can take in matching rows, from top-level `=` / `IN`
    terms, or None if no such term: lets a table look rows up instead of scanning."""
    values: set[Any] | None = None
    for c in conjuncts(node):
        if isinstance(c, Cond) and c.field.casefold() == fname.casefold() and c.op in ("=", "IN"):
            these = set(c.value) if c.op == "IN" else {c.value}
            values = these if values is None else values & these
    return values


def bounds(node: Any, fname: str) -> tuple[int, int] | None:
    """Inclusive epoch-ms bounds on datetime field `fname` implied by the top-level ANDs
    of a WHERE clause, or None: lets a table narrow its scan with its modstamp index."""
    conds = conjuncts(node)
    lo, hi, found = -(2**62), 2**62, False
    for c in conds:
        if not isinstance(c, Cond) or c.field.casefold() != fname.casefold():
            continue
        if not isinstance(c.value, DateTimeLit):
            continue
        v = c.value.ms
        found = True
        if c.op == ">":
            lo = max(lo, v + 1)
        elif c.op == ">=":
            lo = max(lo, v)
        elif c.op == "<":
            hi = min(hi, v - 1)
        elif c.op == "<=":
            hi = min(hi, v)
        elif c.op == "=":
            lo, hi = max(lo, v), min(hi, v)
    return (lo, hi) if found else None


def _folded(get: FieldGetter) -> FieldGetter:
    return lambda r: v.casefold() if isinstance(v := get(r), str) else v


def sort_rows(
    rows: list[Row], order_by: list[tuple[str, bool, bool]], resolve: Resolver
) -> list[Row]:
    """Sort rows by ORDER BY items (stable sorts, last key first)."""
    out = list(rows)
    for name, desc, nulls_last in reversed(order_by):
        ftype, get = resolve(name)
        present = [r for r in out if get(r) is not None]
        missing = [r for r in out if get(r) is None]
        if ftype in _EXACT:
            present.sort(key=get, reverse=desc)
        else:
            present.sort(key=_folded(get), reverse=desc)
        out = present + missing if nulls_last else missing + present
    return out
