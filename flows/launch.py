"""Running a flow from the command line: one exit code and one text that tell the truth.

Without `PREFECT_API_URL` each process starts Prefect's ephemeral API on the shared
`PREFECT_HOME` database; several of them starting together race on its migrations and
time out. Runs here take a file lock for the ephemeral API, so that concurrent commands
on one machine queue (and say so) instead of dying; a Prefect server has no such limit.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def run_flow(flow: Any, echo: Callable[[str], None], **parameters: Any) -> tuple[int, str]:
    """Run `flow` here; its exit code and the text to show (summary, or what is left)."""
    with ephemeral_api_lock(echo):
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
