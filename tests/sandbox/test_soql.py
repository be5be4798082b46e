"""The SOQL subset parser and evaluator, without HTTP."""

from __future__ import annotations

import pytest

from sandbox import soql

ROWS = [
    {
        "Id": "00Q5g0000000001",
        "Status": "Working - Contacted",
        "Score": 10.0,
        "When": 1000,
        "Done": True,
        "Name": "Ada",
    },
    {
        "Id": "00Q5g0000000002",
        "Status": "Recycled",
        "Score": None,
        "When": 2000,
        "Done": False,
        "Name": "ben",
    },
    {
        "Id": "00Q5g000000000a",
        "Status": "Unqualified",
        "Score": 30.0,
        "When": 3000,
        "Done": False,
        "Name": None,
    },
]
TYPES = {
    "Id": "id",
    "Status": "picklist",
    "Score": "double",
    "When": "datetime",
    "Done": "boolean",
    "Name": "string",
}


def _resolve(name: str):
    canonical = next((k for k in TYPES if k.lower() == name.lower()), None)
    if canonical is None:
        raise soql.SoqlError("INVALID_FIELD", name)
    return TYPES[canonical], lambda row: row[canonical]


def _ids(where: str) -> list[str]:
    q = soql.parse(f"SELECT Id FROM Lead WHERE {where}")
    pred = soql.compile_where(q.where, _resolve)
    return [r["Id"][-1] for r in ROWS if pred(r)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Status = 'recycled'", ["2"]),  # string comparison ignores case
        ("Status != 'Recycled'", ["1", "a"]),
        ("Status <> 'Recycled'", ["1", "a"]),
        ("Score > 5", ["1", "a"]),
        ("Score = null", ["2"]),
        ("Score != NULL", ["1", "a"]),
        ("When >= 1970-01-01T00:00:02Z", ["2", "a"]),
        ("When < 1970-01-01T00:00:02.000+00:00 OR Done = true", ["1"]),
        ("Status IN ('Recycled', 'Unqualified') AND NOT Score > 20", ["2"]),
        ("Status NOT IN ('Recycled')", ["1", "a"]),
        ("(Status = 'Recycled' OR Status = 'Unqualified') AND Done = false", ["2", "a"]),
        ("Name LIKE 'a%'", ["1"]),
        ("Name LIKE '_en'", ["2"]),
        ("Id > '00Q5g0000000002'", ["a"]),  # ids compare exactly, in ASCII order
        ("Id IN ('00Q5g000000000A')", []),
    ],
)
def test_where(where: str, expected: list[str]) -> None:
    assert _ids(where) == expected


def test_parse_order_limit_offset_and_relationships() -> None:
    q = soql.parse(
        "select Id, Account.Name from Contact where SystemModstamp > "
        "2026-01-01T00:00:00Z order by SystemModstamp desc nulls first, Id "
        "limit 50 offset 10"
    )
    assert q.fields == ["Id", "Account.Name"] and q.sobject == "Contact"
    assert q.order_by == [("SystemModstamp", True, False), ("Id", False, False)]
    assert (q.limit, q.offset) == (50, 10)


def test_sort_puts_nulls_where_asked() -> None:
    rows = soql.sort_rows(ROWS, [("Score", False, False)], _resolve)
    assert [r["Id"][-1] for r in rows] == ["2", "1", "a"]
    rows = soql.sort_rows(ROWS, [("Score", True, True)], _resolve)
    assert [r["Id"][-1] for r in rows] == ["a", "1", "2"]


def test_bounds_come_from_top_level_ands_only() -> None:
    q = soql.parse(
        "SELECT Id FROM Task WHERE (SystemModstamp >= 1970-01-01T00:00:01Z AND "
        "Type = 'x') AND SystemModstamp < 1970-01-01T00:00:05Z"
    )
    assert soql.bounds(q.where, "SystemModstamp") == (1000, 4999)
    q = soql.parse("SELECT Id FROM Task WHERE SystemModstamp > 1970-01-01T00:00:01Z OR Type = 'x'")
    assert soql.bounds(q.where, "SystemModstamp") is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "MALFORMED_QUERY"),
        ("SELECT FROM Lead", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Status = ", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead LIMIT -1", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Status == 'x'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead GROUP BY Status", "MALFORMED_QUERY"),
    ],
)
def test_malformed(text: str, code: str) -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse(text)
    assert err.value.code == code


@pytest.mark.parametrize(
    "where",
    [
        "When > '2026-01-01T00:00:00Z'",  # quoted datetime
        "Score > '5'",
        "Done = 'true'",
        "Status = 5",
    ],
)
def test_literal_of_the_wrong_type_is_invalid_field(where: str) -> None:
    q = soql.parse(f"SELECT Id FROM Lead WHERE {where}")
    with pytest.raises(soql.SoqlError) as err:
        soql.compile_where(q.where, _resolve)
    assert err.value.code == "INVALID_FIELD"
