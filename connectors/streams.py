"""Incremental streams, written once: every pull of both CRMs is a declaration over `pull`.

A `Stream` says what differs between sources: how to fetch raw pages of a window (from
its start, and before its end when the pull is bounded), which field is the record's id,
how to read the record's time (its cursor field) and how to translate it. `pull` owns
what must be the same everywhere:

- the window: a stored cursor minus the overlap (or, on a first pull, an optional floor),
  up to an optional end (`until`, exclusive), on each stream's cursor field;
- a bounded pull (a backfill's window) is no resumable read: it skips what came after
  its end, so it yields no cursor and no source cursor, and every source starts from
  `since`;
- de-duplication at the boundary: a record the overlap re-reads is yielded once;
- per-record errors: a bad record is a `RecordIssue`, and the others go on;
- the cursor rule: only the last page of the whole pull carries a cursor (a cursor
  mid-pull would skip what later pages hold when the order is not by time); it is the
  highest record time seen, never past the moment the pull began (a record edited
  during the pull behind the read position is re-read next time), and never behind
  the cursor the pull started from; a pull that reads nothing keeps its cursor;
- sources the account refuses (`SourceUnavailable`): switched off for the pull with one
  warning, while the other streams run and the cursor still moves;
- each stream's own cursor (`Page.source_cursors`), for callers that store one per
  source: a stream refused keeps its place, so once allowed it reads what it missed,
  and a stream added later starts from the floor, not from the others' cursor;
- with `concurrency` above 1, up to that many streams are read at once, each by one
  worker thread sending one request at a time (so at most `concurrency` requests are in
  flight); a stream's pages keep their order, pages of different streams interleave.
  A stream that declares a `split` is read as disjoint parts, that many at once
  (HubSpot's contacts by ranges of ids, a long window of activities by slices of time:
  `by_time`, a source made of forms or events by unit: `by_unit`), each part's pages in
  order; its cursor is its highest record time over all parts, so it moves only once
  every part has finished.
  The cursors keep their meaning: each stream's own cursor comes from its own pages,
  and the pull's cursor is on the last page, after every stream has finished. A stream's
  failure is raised when the caller reaches it; the others then stop at their next page,
  and it is raised once every worker has ended. Each stream then de-duplicates only its
  own records: which of two streams would see an id they share first depends on timing,
  so such an id (none in the sandbox's sources) would be yielded by each rather than by
  whichever came first.
"""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from collections.abc import Mapping as MappingABC
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from connectors.common import window_start
from connectors.paging import Page, RecordIssue, SeenIds
from connectors.translate import RecordError, field_value, issue_id, parse_datetime, record_id

T = TypeVar("T")
U = TypeVar("U")

# fetch(start, until): raw pages from `start` on (None: the beginning), before `until`
# (None: no end).
Fetch = Callable[[datetime | None, datetime | None], Iterable[Sequence[Any]]]
ReadTime = Callable[[Any], datetime | None]
# split(start, until, count): fetches that together read what `fetch` reads over the
# window, each a disjoint part of it (e.g. a range of ids). About `count` where the
# parts are cut to measure (ranges, slices); one per unit where the source is made of
# units it reads one after another (forms, events): the pull still reads `count` at once,
# each worker taking the next part as it finishes one, so a few long units do not hold
# the others back.
Split = Callable[[datetime | None, datetime | None, int], Sequence[Fetch]]


class SourceUnavailable(Exception):
    """A source the account's scopes or tier refuse: the pull goes on without it.

    `warning` is the one line the run logs, naming what the source needs.
    """

    def __init__(self, warning: str) -> None:
        super().__init__(warning)
        self.warning = warning


def _no_time(_: Any) -> datetime | None:
    return None


@dataclass(frozen=True)
class Stream(Generic[T]):
    """One incremental source, declared.

    `fetch(start, until)` yields pages of raw records from `start` on (None: from the
    beginning) and before `until` (None: no end); `translate(record, crm_id)` makes the
    canonical record, None when the mapping says the record is none, or raises
    `RecordError`; `time(record)` reads the record's cursor field (may raise
    `RecordError`). `key` is the id field. With `time_filter` the request cannot filter
    by time, and the engine drops records older than the window start or at or after
    its end (they are not counted as skipped). With `split`, a pull reading streams at
    once reads the stream's parts at once too (see `Split`).
    """

    name: str
    fetch: Fetch
    translate: Callable[[Any, str], T | None]
    time: ReadTime = _no_time
    key: str = "id"
    time_filter: bool = False
    split: Split | None = None


def by_time(
    fetch: Fetch,
    *,
    shortest: timedelta = timedelta(days=7),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Split:
    """A split of a window into slices of equal length, for a source whose requests
    filter by the stream's cursor field: none shorter than `shortest` (a short window, an
    incremental pull's, is read whole: a slice costs a request even when empty), and none
    for a window with no start (its length is unknown). The last slice keeps the
    window's own end, open or not, so that it reads what arrives during the pull as a
    whole read would."""

    def split(start: datetime | None, until: datetime | None, count: int) -> list[Fetch]:
        if start is None:
            return []
        length = (until or now()) - start
        slices = min(count, int(length / shortest))
        if slices < 2:
            return []
        # On whole milliseconds, as the CRMs keep times: a slice's end is the next one's
        # start, with no record on both sides of it.
        edges = [_whole_ms(start + length * k / slices) for k in range(1, slices)]
        bounds = [start, *edges, until]
        return [_slice(fetch, low, high) for low, high in itertools.pairwise(bounds)]

    return split


def by_unit(units: Callable[[], Iterable[U]], fetch_of: Callable[[U], Fetch]) -> Split:
    """A split of a source made of units read one after another (a form's submissions,
    an event's participations): one part per unit, listed here, before any worker starts.
    Fewer than two units: no split (the whole read lists them itself)."""

    def split(_start: datetime | None, _until: datetime | None, _count: int) -> list[Fetch]:
        listed = list(units())
        return [fetch_of(unit) for unit in listed] if len(listed) > 1 else []

    return split


def _whole_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _slice(fetch: Fetch, low: datetime | None, high: datetime | None) -> Fetch:
    """`fetch` over [low, high), whatever window it is asked for."""
    return lambda _start, _until: fetch(low, high)


def at(*path: str) -> ReadTime:
    """A `time` reader for a field (a path into nested objects), parsed as a timestamp."""
    name = path[-1]

    def read(record: Any) -> datetime | None:
        value: Any = record
        for part in path:
            value = field_value(value, part) if isinstance(value, MappingABC) else None
        return parse_datetime(value, name)

    return read


def pull(
    streams: Sequence[Stream[T]],
    since: datetime | None,
    overlap_minutes: float,
    *,
    floor: datetime | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    source_since: MappingABC[str, datetime] | None = None,
    until: datetime | None = None,
    concurrency: int = 1,
) -> Iterator[Page[T]]:
    """Pages of canonical records from the streams, with one cursor at the end.

    `floor` bounds a first pull (no cursor) so it does not read all history.
    `source_since` holds each stream's own stored cursor by name; when it is empty (none
    stored yet) every stream starts from `since`, and a stream missing from a non-empty
    one is new and starts from the floor. With `until` (exclusive) the pull is a window
    from `since` for every stream, and its pages carry no cursor. `concurrency` is how
    many streams are read at once (1: one after the other, in order).
    """
    if until is not None:
        yield from _pull_window(streams, since, until, overlap_minutes, floor, concurrency)
        return
    began = now()
    high = since
    pending: Page[T] | None = None
    warned: set[str] = set()
    owns: list[datetime | None] = []
    starts: list[datetime | None] = []
    for stream in streams:
        own = (source_since or {}).get(stream.name) if source_since else since
        owns.append(own)
        starts.append(window_start(own, overlap_minutes) or floor)
    own_highs = list(owns)
    refused = [False] * len(streams)
    with closing(_reads(streams, starts, None, concurrency)) as reads:
        for index, page in reads:
            refused[index] = refused[index] or page.refused
            for record_time in page.times:
                if high is None or record_time > high:
                    high = record_time
                own_high = own_highs[index]
                if own_high is None or record_time > own_high:
                    own_highs[index] = record_time
            if pending is not None:
                yield pending
            pending = Page(page.records, None, page.errors, page.skipped,
                           _fresh(page.warnings, warned))  # fmt: skip
    own_cursors: dict[str, datetime] = {}
    for index, stream in enumerate(streams):
        own, start = owns[index], starts[index]
        # A refused stream keeps its place (or takes this window's start as its place).
        mine = (own or start) if refused[index] else _cursor(own, own_highs[index], began)
        if mine is not None:
            own_cursors[stream.name] = mine
    cursor = _cursor(since, high, began)
    if pending is None:
        yield Page([], cursor, source_cursors=own_cursors)
    else:
        yield Page(pending.records, cursor, pending.errors, pending.skipped, pending.warnings,
                   own_cursors)  # fmt: skip


def _pull_window(
    streams: Sequence[Stream[T]],
    since: datetime | None,
    until: datetime,
    overlap_minutes: float,
    floor: datetime | None,
    concurrency: int,
) -> Iterator[Page[T]]:
    """Pages of the records of [since minus the overlap, until), and no cursor.

    A cursor is where the next incremental pull resumes; a window skipped what came after
    its end, so storing any point of it would skip that, or pull a cursor backwards.
    """
    start = window_start(since, overlap_minutes) or floor
    warned: set[str] = set()
    with closing(_reads(streams, [start] * len(streams), until, concurrency)) as reads:
        for _, page in reads:
            yield Page(page.records, None, page.errors, page.skipped,
                       _fresh(page.warnings, warned))  # fmt: skip


def _fresh(warnings: list[str], warned: set[str]) -> list[str]:
    """The warnings not given yet in this pull: the same refusal is not news a second time."""
    new = [w for w in dict.fromkeys(warnings) if w not in warned]
    warned.update(new)
    return new


def _cursor(since: datetime | None, high: datetime | None, began: datetime) -> datetime | None:
    if high is None:
        return since
    capped = min(high, began)
    return capped if since is None or capped > since else since


@dataclass
class _Read(Generic[T]):
    records: list[T]
    errors: list[RecordIssue]
    skipped: int
    warnings: list[str]
    times: list[datetime]
    refused: bool = False


# Pages of streams, each with its stream's index; closed early, it stops its reads.
Reads = Generator[tuple[int, _Read[T]], None, None]


def _stream_pages(
    stream: Stream[T],
    start: datetime | None,
    until: datetime | None,
    seen: SeenIds,
) -> Generator[_Read[T], None, None]:
    pages = iter(stream.fetch(start, until))
    while True:
        try:
            raw = next(pages)
        except StopIteration:
            return
        except SourceUnavailable as exc:
            yield _Read([], [], 0, [exc.warning], [], refused=True)
            return
        yield _read_page(stream, raw, start, until, seen)


def _reads(
    streams: Sequence[Stream[T]],
    starts: Sequence[datetime | None],
    until: datetime | None,
    concurrency: int,
) -> Reads[T]:
    """Each stream's pages with the stream's index: one stream after the other, or, with
    `concurrency` above 1, that many streams or parts of streams at once."""
    if concurrency == 1:
        return _sequential_reads(streams, starts, until)
    parts, owners = _parts(streams, starts, until, concurrency)
    if len(parts) == 1:
        return _sequential_reads(streams, starts, until)
    return _owned_reads(
        _concurrent_reads(parts, [starts[o] for o in owners], until, min(concurrency, len(parts))),
        owners,
    )


def _parts(
    streams: Sequence[Stream[T]],
    starts: Sequence[datetime | None],
    until: datetime | None,
    concurrency: int,
) -> tuple[list[Stream[T]], list[int]]:
    """The streams as parts to read at once, and the index of the stream each part is of.

    A stream that can split is asked for up to `concurrency` parts (its split may make a
    request or two to find their bounds, here, before any worker starts)."""
    parts: list[Stream[T]] = []
    owners: list[int] = []
    for index, stream in enumerate(streams):
        fetches = (
            [stream.fetch]
            if stream.split is None
            else stream.split(starts[index], until, concurrency) or [stream.fetch]
        )
        parts += [replace(stream, fetch=fetch, split=None) for fetch in fetches]
        owners += [index] * len(fetches)
    return parts, owners


def _owned_reads(reads: Reads[T], owners: Sequence[int]) -> Reads[T]:
    """The pages of parts, each with the index of the stream the part is of."""
    with closing(reads):
        for part, page in reads:
            yield owners[part], page


def _sequential_reads(
    streams: Sequence[Stream[T]],
    starts: Sequence[datetime | None],
    until: datetime | None,
) -> Reads[T]:
    # One record id is yielded once per pull, whichever stream reads it.
    seen = SeenIds()
    for index, stream in enumerate(streams):
        for page in _stream_pages(stream, starts[index], until, seen):
            yield index, page


@dataclass(frozen=True)
class _Event(Generic[T]):
    """What a worker hands the pull: a page of stream `index`, its failure, or its end."""

    index: int
    page: _Read[T] | None = None
    error: BaseException | None = None

    @property
    def ended(self) -> bool:
        return self.page is None and self.error is None


_NO_STREAM = -1  # the index of a worker's failure or end: not one stream's page


class _Claims:
    """Hands out stream indexes in order, each once, to whichever worker asks next."""

    def __init__(self, count: int) -> None:
        self._next = 0
        self._count = count
        self._lock = threading.Lock()

    def claim(self) -> int | None:
        with self._lock:
            if self._next >= self._count:
                return None
            self._next += 1
            return self._next - 1


def _concurrent_reads(
    streams: Sequence[Stream[T]],
    starts: Sequence[datetime | None],
    until: datetime | None,
    workers: int,
) -> Reads[T]:
    """Pages of `workers` streams at a time, as they arrive; a failure is raised here once
    every worker has stopped (no thread outlives the pull, whether it ends, fails or is
    closed early by its caller)."""
    # Bounded: workers run at most a few pages ahead of the caller, as a lazy pull would.
    events: queue.Queue[_Event[T]] = queue.Queue(maxsize=2 * workers)
    stop = threading.Event()
    claims = _Claims(len(streams))
    # Each worker runs in a copy of the caller's context, so that what the caller set
    # (a Prefect run's settings, read by the shared rate limit) holds in its threads too.
    threads = [
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(_work, streams, starts, until, claims, events, stop),
            name=f"pull-worker-{n}",
            daemon=True,
        )
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            event = events.get()
            if event.error is not None:
                raise event.error
            if event.page is not None:
                yield event.index, event.page
            else:
                running -= 1
    finally:
        stop.set()
        # Drain, so that no worker stays blocked on a full queue, until each has ended.
        while running:
            if events.get().ended:
                running -= 1
        for thread in threads:
            thread.join()


def _work(
    streams: Sequence[Stream[T]],
    starts: Sequence[datetime | None],
    until: datetime | None,
    claims: _Claims,
    events: queue.Queue[_Event[T]],
    stop: threading.Event,
) -> None:
    """One worker: reads unclaimed streams one by one until none is left or `stop` is set.

    Its last event is always an end (no page, no error), after a failure if there was one.
    """
    try:
        while not stop.is_set():
            index = claims.claim()
            if index is None:
                return
            # Each stream de-duplicates its own records: which of two streams would see a
            # shared id first depends on timing here.
            pages = _stream_pages(streams[index], starts[index], until, SeenIds())
            with closing(pages):
                while not stop.is_set():
                    page = next(pages, None)
                    if page is None:
                        break
                    events.put(_Event(index, page))
    except BaseException as exc:  # handed to the pull's caller, whatever it is
        events.put(_Event(_NO_STREAM, error=exc))
    finally:
        events.put(_Event(_NO_STREAM))


def _outside(when: datetime | None, start: datetime | None, until: datetime | None) -> bool:
    """True for a record time before the window's start or at or after its end."""
    if when is None:
        return False
    return (start is not None and when < start) or (until is not None and when >= until)


def _read_page(
    stream: Stream[T],
    raw: Sequence[Any],
    start: datetime | None,
    until: datetime | None,
    seen: SeenIds,
) -> _Read[T]:
    out: _Read[T] = _Read([], [], 0, [], [])
    for item in raw:
        try:
            crm_id = record_id(item, stream.key)
            if not seen.first_time(crm_id):
                continue
            if stream.time_filter:
                when = stream.time(item)
                if _outside(when, start, until):
                    continue
                record = stream.translate(item, crm_id)
            else:
                # Translated first: its message names the canonical field as well.
                record = stream.translate(item, crm_id)
                when = stream.time(item)
                if _outside(when, None, until):
                    continue  # past a bound the API could only round (SOQL has no fractions)
        except RecordError as exc:
            out.errors.append(RecordIssue(issue_id(item, stream.key), str(exc)))
            continue
        if when is not None:
            out.times.append(when)
        if record is None:
            out.skipped += 1
        else:
            out.records.append(record)
    return out


__all__ = ["Fetch", "SourceUnavailable", "Split", "Stream", "at", "by_time", "by_unit", "pull"]
