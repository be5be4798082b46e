"""The incremental-stream engine's rules, on streams of plain dicts (no CRM needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.paging import Page
from connectors.streams import SourceUnavailable, Stream, at, pull
from connectors.translate import RecordError, parse_datetime

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OVERLAP = 5.0


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _rec(crm_id: str, minutes: float, **extra: Any) -> dict[str, Any]:
    return {"id": crm_id, "time": _at(minutes), **extra}


def _translate(item: Any, crm_id: str) -> str | None:
    if item.get("bad"):
        raise RecordError(f"field x: value {item['bad']!r}: not a number")
    if item.get("skip"):
        return None
    return crm_id


class Source:
    """Serves fixed pages and remembers the window start and end each fetch was given."""

    def __init__(self, pages: list[list[dict[str, Any]]], *, refuse: str | None = None) -> None:
        self.pages = pages
        self.refuse = refuse
        self.starts: list[datetime | None] = []
        self.untils: list[datetime | None] = []

    def __call__(
        self, start: datetime | None, until: datetime | None = None
    ) -> Iterator[Sequence[Any]]:
        self.starts.append(start)
        self.untils.append(until)
        if self.refuse is not None:
            raise SourceUnavailable(self.refuse)
        yield from self.pages


def _stream(source: Source, name: str = "s", **kw: Any) -> Stream[str]:
    return Stream(name, source, _translate, time=at("time"), **kw)


def _drain(pages: Iterator[Page[str]]) -> list[Page[str]]:
    return list(pages)


def _now(minutes: float) -> Any:
    return lambda: T0 + timedelta(minutes=minutes)


def test_overlap_window_and_boundary_de_duplication() -> None:
    # The overlap re-reads "b" in the second stream (and "a" twice in one page).
    first = Source([[_rec("a", 1), _rec("a", 1)], [_rec("b", 2)]])
    second = Source([[_rec("b", 2), _rec("c", 3)]])
    since = T0
    pages = _drain(pull([_stream(first), _stream(second)], since, OVERLAP, now=_now(60)))
    assert [r for p in pages for r in p.records] == ["a", "b", "c"]
    assert first.starts == second.starts == [since - timedelta(minutes=OVERLAP)]


def test_cursor_only_on_the_last_page_and_never_past_the_pull_start() -> None:
    source = Source([[_rec("a", 1)], [_rec("b", 90)], [_rec("c", 30)]])
    pages = _drain(pull([_stream(source)], None, OVERLAP, now=_now(60)))
    assert [p.cursor for p in pages[:-1]] == [None, None]
    # "b" is stamped after the pull began (a clock ahead, or an edit during the pull):
    # the cursor stops at the pull's start, so the next overlap re-reads from there.
    assert pages[-1].cursor == T0 + timedelta(minutes=60)


def test_cursor_is_the_highest_time_read_across_chained_streams() -> None:
    events = Source([[_rec("e1", 10), _rec("e2", 20)]])
    meetings = Source([[_rec("m1", 15)]])
    pages = _drain(pull([_stream(events), _stream(meetings)], None, OVERLAP, now=_now(60)))
    assert [p.cursor for p in pages] == [None, T0 + timedelta(minutes=20)]


def test_cursor_never_moves_backward() -> None:
    since = T0 + timedelta(minutes=100)
    # Only overlap records, all older than the stored cursor.
    source = Source([[_rec("a", 97)]])
    pages = _drain(pull([_stream(source)], since, OVERLAP, now=_now(200)))
    assert pages[-1].cursor == since
    # A pull that begins "before" the stored cursor (a clock set back) keeps it too.
    source = Source([[_rec("a", 101)]])
    pages = _drain(pull([_stream(source)], since, OVERLAP, now=_now(50)))
    assert pages[-1].cursor == since


def test_empty_pull_keeps_the_cursor() -> None:
    since = T0
    pages = _drain(pull([_stream(Source([[]]))], since, OVERLAP, now=_now(60)))
    assert [(p.records, p.cursor) for p in pages] == [([], since)]
    # A stream that serves no page at all still ends the pull with one page.
    pages = _drain(pull([_stream(Source([]))], None, OVERLAP, now=_now(60)))
    assert [(p.records, p.cursor) for p in pages] == [([], None)]


def test_bad_record_is_reported_and_skipped_and_the_rest_arrive() -> None:
    source = Source(
        [
            [
                _rec("a", 1),
                _rec("b", 2, bad="x"),
                {"id": None, "time": _at(3)},
                _rec("c", 4, skip=True),
                {"id": "d", "time": "yesterday"},
                _rec("e", 5),
            ]
        ]
    )
    (page,) = _drain(pull([_stream(source)], None, OVERLAP, now=_now(60)))
    assert page.records == ["a", "e"]
    assert [(i.crm_id, i.message.split(":")[0]) for i in page.errors] == [
        ("b", "field x"),
        ("(no id)", "field crm_id (id)"),
        ("d", "field time"),
    ]
    assert page.skipped == 1  # the mapping said "c" is no record: not an error
    # A skipped record was still read: its time counts for the cursor.
    assert page.cursor == T0 + timedelta(minutes=5)


def test_time_filter_drops_records_before_the_window() -> None:
    since = T0 + timedelta(minutes=60)
    source = Source([[_rec("old", 10), _rec("new", 58)]])
    (page,) = _drain(pull([_stream(source, time_filter=True)], since, OVERLAP, now=_now(90)))
    assert page.records == ["new"] and page.skipped == 0


def test_first_pull_is_bounded_by_the_floor() -> None:
    source = Source([[_rec("a", 1)]])
    floor = T0 - timedelta(days=365)
    _drain(pull([_stream(source)], None, OVERLAP, floor=floor, now=_now(60)))
    assert source.starts == [floor]
    again = Source([[_rec("a", 1)]])
    _drain(pull([_stream(again)], T0, OVERLAP, floor=floor, now=_now(60)))
    assert again.starts == [T0 - timedelta(minutes=OVERLAP)]


def test_a_refused_source_is_one_warning_and_the_rest_runs() -> None:
    refused = Source([], refuse="form submissions need the forms scope")
    also = Source([], refuse="form submissions need the forms scope")
    events = Source([[_rec("a", 10)]])
    pages = _drain(
        pull(
            [_stream(refused), _stream(events), _stream(also)],
            None,
            OVERLAP,
            now=_now(60),
        )
    )
    assert [w for p in pages for w in p.warnings] == ["form submissions need the forms scope"]
    assert [r for p in pages for r in p.records] == ["a"]
    assert pages[-1].cursor == T0 + timedelta(minutes=10)


def test_at_reads_nested_fields() -> None:
    read = at("object", "properties", "hs_lastmodifieddate")
    record = {"object": {"properties": {"hs_lastmodifieddate": "2026-11-01T09:00:00Z"}}}
    assert read(record) == parse_datetime("2026-11-01T09:00:00Z")
    assert read({"object": None}) is None


def test_each_source_keeps_its_own_cursor_and_a_refused_one_its_place() -> None:
    """Sources read from their own stored cursors; one refused keeps its place (so once
    allowed it reads what it missed) while the others and the shared cursor move on."""
    since = {"a": T0 + timedelta(minutes=10), "b": T0 + timedelta(minutes=30)}
    a = Source([[_rec("a1", 40), _rec("a2", 50)]])
    b = Source([], refuse="scope x missing")
    pages = _drain(
        pull([_stream(a, "a"), _stream(b, "b")], T0 + timedelta(minutes=30), OVERLAP,
             now=_now(60), source_since=since)
    )  # fmt: skip
    assert a.starts == [T0 + timedelta(minutes=5)]  # a's own cursor minus the overlap
    assert pages[-1].source_cursors == {"a": T0 + timedelta(minutes=50), "b": since["b"]}
    assert pages[-1].cursor == T0 + timedelta(minutes=50)
    assert [w for p in pages for w in p.warnings] == ["scope x missing"]

    # Granted later: b reads from its own place, not from the shared cursor.
    b_now = Source([[_rec("b1", 35)]])
    again = _drain(
        pull([_stream(b_now, "b")], T0 + timedelta(minutes=50), OVERLAP, now=_now(70),
             source_since=pages[-1].source_cursors)
    )  # fmt: skip
    assert b_now.starts == [T0 + timedelta(minutes=25)]
    assert [r for p in again for r in p.records] == ["b1"]


def test_a_source_refused_from_the_start_takes_its_first_window_as_its_place() -> None:
    """On a portal's first pull, a refused source's place is where it would have begun
    (the floor), so once allowed it reads from there; the other source moves on."""
    floor = T0 - timedelta(days=1)
    refused = Source([], refuse="tier")
    pages = _drain(
        pull([_stream(Source([[_rec("a1", 40)]]), "a"), _stream(refused, "b")],
             None, OVERLAP, floor=floor, now=_now(60))
    )  # fmt: skip
    assert pages[-1].source_cursors == {"a": T0 + timedelta(minutes=40), "b": floor}


def test_a_source_added_later_starts_from_the_floor_not_the_shared_cursor() -> None:
    old, new = Source([[_rec("a1", 40)]]), Source([[_rec("n1", -100)]])
    floor = T0 - timedelta(days=1)
    pages = _drain(
        pull([_stream(old, "a"), _stream(new, "new")], T0 + timedelta(minutes=30), OVERLAP,
             floor=floor, now=_now(60), source_since={"a": T0 + timedelta(minutes=30)})
    )  # fmt: skip
    assert new.starts == [floor]
    assert "n1" in [r for p in pages for r in p.records]


def test_with_no_source_cursors_stored_every_source_starts_from_the_shared_one() -> None:
    a, b = Source([[_rec("a1", 40)]]), Source([[_rec("b1", 41)]])
    _drain(pull([_stream(a, "a"), _stream(b, "b")], T0 + timedelta(minutes=30), OVERLAP,
                now=_now(60), source_since={}))  # fmt: skip
    assert a.starts == b.starts == [T0 + timedelta(minutes=25)]


def test_a_bounded_pull_gives_every_fetch_its_end_and_yields_no_cursor() -> None:
    """A window [since, until) is no resumable read: it did not read what came after its
    end, so none of its pages carries a cursor or a source's cursor to store."""
    until = T0 + timedelta(minutes=60)
    a, b = Source([[_rec("a1", 10)], [_rec("a2", 20)]]), Source([[_rec("b1", 30)]])
    pages = _drain(
        pull([_stream(a, "a"), _stream(b, "b")], T0, OVERLAP, until=until, now=_now(120),
             source_since={"a": T0 - timedelta(days=1)})
    )  # fmt: skip
    assert [r for p in pages for r in p.records] == ["a1", "a2", "b1"]
    assert a.untils == b.untils == [until]
    # Every source from the window's start, whatever its own stored cursor says.
    assert a.starts == b.starts == [T0 - timedelta(minutes=OVERLAP)]
    assert [(p.cursor, p.source_cursors) for p in pages] == [(None, {})] * len(pages)


def test_an_unbounded_pull_gives_every_fetch_no_end() -> None:
    source = Source([[_rec("a", 1)]])
    _drain(pull([_stream(source)], T0, OVERLAP, now=_now(60)))
    assert source.untils == [None]


def test_time_filter_drops_records_at_or_after_the_window_end() -> None:
    # A source that cannot filter by time serves everything: the engine keeps the window.
    until = T0 + timedelta(minutes=60)
    source = Source([[_rec("old", 10), _rec("in", 58), _rec("end", 60), _rec("late", 61)]])
    pages = _drain(
        pull([_stream(source, time_filter=True)], T0 + timedelta(minutes=30), OVERLAP,
             until=until, now=_now(90))
    )  # fmt: skip
    assert [r for p in pages for r in p.records] == ["in"]
    assert sum(p.skipped for p in pages) == 0


def test_a_stream_the_server_bounds_still_drops_what_lies_past_the_end() -> None:
    """SOQL literals have no fractions: the server is asked up to the next whole second,
    and the engine drops what lies at or after the end itself."""
    until = T0 + timedelta(minutes=60)
    source = Source([[_rec("in", 58), _rec("end", 60), _rec("late", 61)]])
    pages = _drain(
        pull([_stream(source)], T0 + timedelta(minutes=30), OVERLAP, until=until, now=_now(90))
    )
    assert [r for p in pages for r in p.records] == ["in"]
