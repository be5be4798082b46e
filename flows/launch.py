"""Running a flow from the command line: one exit code and one text that tell the truth.

Without `PREFECT_API_URL` each process starts Prefect's ephemeral API on the shared
`PREFECT_HOME` database; several of them starting together race on its migrations and
time out. Runs here take a file lock for the ephemeral API, so that concurrent commands
on one machine queue (and say so) instead of dying; a Prefect server has no such limit.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from flows.progress import TerminalSink

# Prefect gives its ephemeral API 20 s to start; the first start on a fresh PREFECT_HOME
# migrates its database, which on a busy 2-core machine takes longer. Set before Prefect
# is imported (the CLI imports this module first); an explicit setting wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

EXIT_OK = 0
EXIT_INCOMPLETE = 1  # the run failed or left work pending; the text says what


def ephemeral_api() -> bool:
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


@contextmanager
def ephemeral_api_lock(echo: Callable[[str], None]) -> Iterator[None]:
    """Hold the machine's lock on the ephemeral Prefect API while this run uses it."""
    if not ephemeral_api():
        yield
        return
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value())
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "mqlsync-ephemeral-api.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo(
                "another mqlsync run is using Prefect's ephemeral API on this machine; "
                "waiting for it (to run several at once, start a server with "
                "`prefect server start` and set PREFECT_API_URL)"
            )
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


class _MakingRoom(logging.Handler):
    """A log handler that prints through `inner` with the progress line out of its way."""

    def __init__(self, inner: logging.Handler, sink: TerminalSink) -> None:
        super().__init__(inner.level)
        self.inner, self.sink = inner, sink

    def handle(self, record: logging.LogRecord) -> bool:
        # Held through the write: a log line from a task's thread never lands on the bar.
        with self.sink.making_room():
            return bool(self.inner.handle(record))


def _on_a_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def terminal_progress(stream: TextIO | None = None) -> Iterator[TerminalSink]:
    """The run's progress on `stream` (stderr: stdout keeps the run's text, for pipes).

    On a terminal, one line rewritten in place, which the log lines of Prefect's console
    handler (on the root logger) move out of their way while they print; elsewhere,
    plain lines.
    """
    from flows import progress

    sink = progress.TerminalSink(stream or sys.stderr)
    root = logging.getLogger()
    if sink.tty:
        root.handlers = [_MakingRoom(h, sink) if _on_a_terminal(h) else h for h in root.handlers]
    try:
        with progress.terminal(sink):
            yield sink
    finally:
        if sink.tty:
            root.handlers = [
                h.inner if isinstance(h, _MakingRoom) and h.sink is sink else h
                for h in root.handlers
            ]


def run_flow(flow: Any, echo: Callable[[str], None], **parameters: Any) -> tuple[int, str]:
    """Run `flow` here, its progress on stderr; its exit code and the text to show."""
    with ephemeral_api_lock(echo), terminal_progress():
        try:
            state = flow(**parameters, return_state=True)
        except RuntimeError as exc:
            if "ephemeral Prefect API server" not in str(exc):
                raise
            # Its database is migrated by now: a second start is quicker.
            echo("Prefect's ephemeral API did not start in time; trying once more")
            state = flow(**parameters, return_state=True)
    if state.is_completed():
        return EXIT_OK, str(state.result())
    return EXIT_INCOMPLETE, state.message or f"the run ended {state.name}"
