"""Fixtures shared across the suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.databases import migrated_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store on SQLite and on PostgreSQL."""
    with migrated_engine(request.param, tmp_path) as db:
        yield db


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One Prefect test API for the whole session: it takes seconds to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
