"""A run's progress while it runs: in a Prefect progress artifact, and in the terminal.

A flow starts one `Progress` (`start`): phases "pulling <stream>" (pages and records) and
"scoring" (batches and contacts done of their totals). It feeds its sinks:

- `ArtifactSink`: a Prefect progress artifact keyed `mqlsync-<flow>-<crm>-progress`,
  created once per run and then updated at most once a second; an API that refuses an
  update costs one warning, never the run.
- `TerminalSink` (attached by the command line, `flows.launch`): on a terminal, one line
  rewritten in place ("\\r") with counts and rate, a new line per phase; elsewhere (CI,
  cron, a pipe) plain lines, one per phase and at most one every few seconds.

Rates come from a monotonic clock, which tests replace.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TextIO, cast
from uuid import UUID

Clock = Callable[[], float]

PULL_SHARE = 40.0  # of the percent, for a run that pulls: the streams, each an equal part
BUSY = 99.0  # the percent stays below 100 until the run finishes
STARTING = "starting"  # the phase before the first: a run that has not pulled or scored yet


@dataclass(frozen=True)
class View:
    """What a sink shows: the phase, its counts, the run's percent and whether it ended."""

    flow: str
    crm: str
    phase: str  # "starting", "pulling <stream>", "scoring"
    counts: tuple[str, ...]  # "12 pages", "11,950 records", "820/s"
    percent: float
    ended: str = ""  # "done", or "stopped" (then `why` says why)
    why: str = ""
    pulled: tuple[str, ...] = ()  # each stream pulled: "contacts 3 pages, 300 records"

    @property
    def line(self) -> str:
        """The terminal's line: `pulling activities  12 pages  11,950 records  820/s`."""
        return "  ".join((self.phase, *self.counts))

    @property
    def description(self) -> str:
        """The artifact's description: the run, its state and its phase in words."""
        run = f"{self.flow} {self.crm}"
        phase = ", ".join((self.phase, *self.counts))
        pulled = f" Pulled: {'; '.join(self.pulled)}." if self.pulled else ""
        if self.ended == "done":
            return f"{run}: done. Last phase: {phase}.{pulled}"
        if self.ended == "stopped":
            return f"{run}: stopped during {phase}: {self.why}"
        return f"{run}: {phase}"


class Sink(Protocol):
    def update(self, view: View, now: float) -> None: ...

    def close(self, view: View, now: float) -> None: ...


class Pulled(Protocol):
    """What a pull returns that progress needs (flows.tasks.PullResult)."""

    @property
    def stream(self) -> str: ...

    @property
    def pages(self) -> int: ...

    @property
    def records(self) -> int: ...


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


class Progress:
    """One run's phases and counts; every change goes to the sinks, which throttle."""

    def __init__(
        self,
        flow: str,
        crm: str,
        streams: Sequence[str] = (),
        *,
        sinks: Sequence[Sink] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self.flow, self.crm = flow, crm
        self.run_id: str | None = None  # the flow run it belongs to, when started in one
        self._streams = tuple(streams)
        self._sinks = list(sinks)
        self._clock = clock
        self._lock = threading.Lock()
        self._phase = STARTING
        self._since = clock()  # when the phase started
        self._moved = self._since  # when its counts last changed: the rate is up to then
        self._stream: str | None = None
        self._counts: dict[str, tuple[int, int]] = {}  # stream -> (pages, records)
        self._times: dict[str, tuple[float, float]] = {}  # stream -> (since, moved)
        self._streams_done: set[str] = set()
        self._batches = [0, 0]  # done, total
        self._contacts = [0, 0]
        self._ended = ""
        self._why = ""

    # --- what the run reports -------------------------------------------------------------

    def begin(self) -> None:
        """Show the run as started (the artifact is created at 0%)."""
        with self._lock:
            self._emit()

    def pulling(self, stream: str) -> None:
        """A stream's pull starts (again, after a failed attempt): its counts from zero."""
        with self._lock:
            self._start_stream(stream)
            self._emit()

    def page(self, stream: str, pages: int, records: int) -> None:
        """The stream's totals so far, after a page: absolute, so a retried pull restarts."""
        with self._lock:
            self._show_stream(stream)
            self._set_counts(stream, pages, records)
            self._emit()

    def pulled(self, result: Pulled) -> None:
        """A stream's pull finished: its totals as the task returned them (from any worker)."""
        with self._lock:
            self._show_stream(result.stream)
            self._set_counts(result.stream, result.pages, result.records)
            self._streams_done.add(result.stream)
            self._emit()

    def scoring(self, batches: int, contacts: int) -> None:
        with self._lock:
            self._phase, self._stream = "scoring", None
            self._since = self._moved = self._clock()
            self._batches = [0, batches]
            self._contacts = [0, contacts]
            self._emit()

    def batch_done(self, contacts: int) -> None:
        """One batch finished (scored and written, or failed all its attempts)."""
        with self._lock:
            self._batches[0] += 1
            self._contacts[0] += contacts
            self._moved = self._clock()
            self._emit()

    @property
    def ended(self) -> bool:
        return bool(self._ended)

    def finish(self) -> None:
        """The run went through every phase: 100%, the last phase named."""
        self._end("done", "")

    def stop(self, why: str) -> None:
        """The run stops before its end: the percent stays where it got to."""
        self._end("stopped", why)

    # --- inside ---------------------------------------------------------------------------

    def _start_stream(self, stream: str) -> None:
        self._phase, self._stream = f"pulling {stream}", stream
        self._since = self._moved = self._clock()
        self._times[stream] = (self._since, self._moved)
        self._counts[stream] = (0, 0)
        self._streams_done.discard(stream)

    def _show_stream(self, stream: str) -> None:
        """Make `stream` the one shown: streams pulled at once take turns, each with its
        own start and rate; one not started (or finished before) starts afresh."""
        if stream == self._stream:
            return
        if stream in self._times and stream not in self._streams_done:
            self._phase, self._stream = f"pulling {stream}", stream
            self._since, self._moved = self._times[stream]
        else:
            self._start_stream(stream)

    def _set_counts(self, stream: str, pages: int, records: int) -> None:
        if self._counts.get(stream) != (pages, records):
            self._counts[stream] = (pages, records)
            self._moved = self._clock()
            self._times[stream] = (self._since, self._moved)

    def _end(self, how: str, why: str) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended, self._why = how, why
            now = self._clock()
            view = self._view()
            for sink in self._sinks:
                sink.close(view, now)
        if _current.get() is self:
            _current.set(None)

    def _emit(self) -> None:
        if self._ended or not self._sinks:
            return
        now = self._clock()
        view = self._view()
        for sink in self._sinks:
            sink.update(view, now)

    def _view(self) -> View:
        elapsed = self._moved - self._since
        counts: list[str] = []
        done = 0
        if self._stream is not None:
            pages, done = self._counts[self._stream]
            counts = [_count(pages, "page", "pages"), _count(done, "record", "records")]
        elif self._phase == "scoring":
            (batches, of_batches), (done, of_contacts) = self._batches, self._contacts
            counts = [f"{batches:,}/{of_batches:,} batches", f"{done:,}/{of_contacts:,} contacts"]
        if done and elapsed > 0:
            counts.append(f"{done / elapsed:,.0f}/s")
        pulled = tuple(
            f"{s} {_count(p, 'page', 'pages')}, {_count(r, 'record', 'records')}"
            for s, (p, r) in self._counts.items()
            if s in self._streams_done
        )
        return View(
            self.flow, self.crm, self._phase, tuple(counts), self._percent(),
            self._ended, self._why, pulled,
        )  # fmt: skip

    def _percent(self) -> float:
        if self._ended == "done":
            return 100.0
        share = PULL_SHARE if self._streams else 0.0
        pulled = (
            len(self._streams_done.intersection(self._streams)) / len(self._streams)
            if self._streams
            else 0.0
        )
        done, total = self._contacts
        scored = (done / total if total else 1.0) if self._phase == "scoring" else 0.0
        return round(min(BUSY, share * pulled + (100.0 - share) * scored), 1)


# --- the Prefect artifact -------------------------------------------------------------------


class ArtifactApi(Protocol):
    def create(self, key: str, progress: float, description: str) -> UUID: ...

    def update(self, artifact_id: UUID, progress: float, description: str) -> None: ...


class PrefectArtifacts:
    """Prefect's progress artifact functions, for the run this process is in."""

    def create(self, key: str, progress: float, description: str) -> UUID:
        from prefect.artifacts import create_progress_artifact

        # Called from a sync flow, it returns the id, not a coroutine.
        created = create_progress_artifact(progress=progress, key=key, description=description)
        return cast(UUID, created)

    def update(self, artifact_id: UUID, progress: float, description: str) -> None:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(artifact_id, progress=progress, description=description)


def _warn(message: str) -> None:
    """To the run's log when there is a run, else to this module's logger."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().warning(message)
    except MissingContextError:
        logging.getLogger(__name__).warning(message)


class ArtifactSink:
    """Keeps one progress artifact up to date: created at once, then at most one update
    every `min_interval_s` (and the last one at the end), never failing the run."""

    def __init__(
        self, key: str, *, api: ArtifactApi | None = None, min_interval_s: float = 1.0
    ) -> None:
        self.key = key
        self._api = api or PrefectArtifacts()
        self._min_interval_s = min_interval_s
        self._id: UUID | None = None
        self._gave_up = False  # the artifact could not be created: nothing to update
        self._warned = False
        self._sent: tuple[float, str] | None = None
        self._sent_at = 0.0

    def update(self, view: View, now: float) -> None:
        if self._id is None:
            self._create(view, now)
        elif now - self._sent_at >= self._min_interval_s:
            self._send(view, now)

    def close(self, view: View, now: float) -> None:
        if self._id is None:
            self._create(view, now)
        self._send(view, now)

    def _create(self, view: View, now: float) -> None:
        if self._gave_up:
            return
        try:
            self._id = self._api.create(self.key, view.percent, view.description)
        except Exception as exc:
            self._gave_up = True
            self._warn_once(f"no progress artifact for this run ({self.key}): {exc}")
            return
        self._sent, self._sent_at = (view.percent, view.description), now

    def _send(self, view: View, now: float) -> None:
        if self._id is None or self._sent == (view.percent, view.description):
            return
        try:
            self._api.update(self._id, view.percent, view.description)
        except Exception as exc:
            self._warn_once(f"progress artifact {self.key} not updated (the run goes on): {exc}")
        else:
            self._sent = (view.percent, view.description)
        self._sent_at = now

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            _warn(message)


# --- the terminal ---------------------------------------------------------------------------


class TerminalSink:
    """Progress on a terminal: a line rewritten in place ("\\r"), one line per phase; or,
    when the stream is not a terminal, plain lines: the end of each phase, and within a
    long phase at most one every `every_s` seconds."""

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        redraw_s: float = 0.1,
        every_s: float = 5.0,
        width: int | None = None,
    ) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._redraw_s = redraw_s
        self._every_s = every_s
        self._width = width
        self._lock = threading.RLock()
        self._last: View | None = None  # the last view seen
        self._shown = ""  # the line last written (plain) or on screen (tty)
        self._shown_at: float | None = None
        self._on_screen = 0  # tty: characters of the open line

    def update(self, view: View, now: float) -> None:
        if view.phase == STARTING:
            return  # nothing to show yet
        with self._lock:
            last, self._last = self._last, view
            if last is not None and last.phase != view.phase:
                self._end_phase(last)  # with its final counts, on a line of its own
                self._shown_at = None
            if self.tty:
                if not self._on_screen or self._due(now, self._redraw_s):
                    self._draw(view.line)
                    self._shown_at = now
            elif self._shown_at is None:
                self._shown_at = now  # a phase's first line: after `every_s`, or at its end
            elif self._due(now, self._every_s) and view.line != self._shown:
                self._print(view.line)
                self._shown_at = now

    def close(self, view: View, now: float) -> None:
        """The run's last view, its line ended: the sink is ready for another run."""
        with self._lock:
            last, self._last = self._last, None
            if last is not None and last.phase != view.phase:
                self._end_phase(last)
            self._end_phase(view)
            self._shown_at, self._shown = None, ""

    @contextmanager
    def making_room(self) -> Iterator[None]:
        """Wipe the open line and keep it off while another writer (a log line) prints on
        the same terminal; the next update draws it again."""
        with self._lock:
            if self.tty and self._on_screen:
                self.stream.write("\r" + " " * self._on_screen + "\r")
                self.stream.flush()
                self._on_screen = 0
            yield

    def end_line(self) -> None:
        """End an open line for good (the run is over, whatever happened)."""
        with self._lock:
            if self.tty and self._on_screen:
                self.stream.write("\n")
                self.stream.flush()
                self._on_screen = 0
            self._last, self._shown_at, self._shown = None, None, ""

    def _due(self, now: float, interval: float) -> bool:
        return self._shown_at is None or now - self._shown_at >= interval

    def _end_phase(self, view: View) -> None:
        if view.phase == STARTING:
            return  # no phase yet: nothing to keep
        if self.tty:
            self._draw(view.line)
            self.stream.write("\n")
            self.stream.flush()
            self._on_screen = 0
        elif view.line != self._shown:
            self._print(view.line)

    def _draw(self, line: str) -> None:
        width = self._width or shutil.get_terminal_size().columns
        line = line[: max(width - 1, 10)]
        self.stream.write("\r" + line.ljust(self._on_screen))
        self.stream.flush()
        self._on_screen = len(line)

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self._shown = line


# --- the run's progress, where the flow and its in-process tasks find it --------------------

_current: ContextVar[Progress | None] = ContextVar("mqlsync_progress", default=None)
_terminal: ContextVar[TerminalSink | None] = ContextVar("mqlsync_terminal", default=None)


@contextmanager
def terminal(sink: TerminalSink) -> Iterator[TerminalSink]:
    """Runs started inside also report to `sink` (the command line's terminal)."""
    token = _terminal.set(sink)
    try:
        yield sink
    finally:
        _terminal.reset(token)
        sink.end_line()


def start(flow: str, crm: str, streams: Sequence[str] = ()) -> Progress:
    """A flow's progress: its artifact, and the terminal if the command line attached one."""
    sinks: list[Sink] = [ArtifactSink(f"mqlsync-{flow}-{crm}-progress")]
    shown = _terminal.get()
    if shown is not None:
        sinks.append(shown)
    run = Progress(flow, crm, streams, sinks=sinks)
    run.run_id = _flow_run_id()
    _current.set(run)
    run.begin()
    return run


def current() -> Progress:
    """The progress of this flow run, when it runs in this process; else (a task on another
    worker, a run that ended) one that reports nowhere: the flow reports what tasks return."""
    run = _current.get()
    if run is None or run.ended or run.run_id != _flow_run_id():
        return Progress("", "")
    return run


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    found = flow_run.get_id()
    return str(found) if found else None
