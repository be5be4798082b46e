"""A sandbox and a store for tests that run flows and read back what runs leave."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def sandbox_on_its_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, contacts: int, seed: int
) -> Iterator[Any]:
    """A sandbox CRM and an empty store, runs deciding as of the sandbox's own clock, with
    short backoffs (the tests judge outcomes, not waits)."""
    from flows import runtime
    from flows.demo import ENV_FOR_SANDBOX, point_settings_at
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=contacts, seed=seed, hubspot_search_per_s=50) as sb:
        for name in (*ENV_FOR_SANDBOX, "MQLSYNC_FIXED_NOW"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("MQLSYNC_FIXED_NOW", sb.admin.info()["as_of"])
        monkeypatch.setenv("MQLSYNC_TASK_RETRY_DELAY_S", "0")
        monkeypatch.setenv("MQLSYNC_BACKOFF_BASE_S", "0.01")
        monkeypatch.setenv("MQLSYNC_BACKOFF_MAX_S", "0.05")
        point_settings_at(sb, f"sqlite:///{tmp_path / 'runs.db'}")
        yield sb
    runtime.reset()
