"""Test databases: a fresh SQLite file, or a fresh schema in the local PostgreSQL.

PostgreSQL runs on 127.0.0.1:5432 (trust auth, user postgres, database test) on the
development and CI machines. With CI=true its tests fail when it is unreachable; elsewhere
they skip and say how to enable them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from store.db import make_engine, migrate

POSTGRES_URL = os.environ.get(
    "MQLSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means "not here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def require_postgres() -> None:
    problem = postgres_available()
    if problem is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({problem})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI requires it")
    pytest.skip(
        message + ". Start PostgreSQL on 127.0.0.1:5432 (trust auth, database test) "
        "or set MQLSYNC_TEST_POSTGRES_URL to run these tests."
    )


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a new, empty schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    require_postgres()
    with postgres_schema() as url:
        yield url


@contextmanager
def migrated_engine(kind: str, tmp_path: Path) -> Iterator[Engine]:
    with database_url(kind, tmp_path) as url:
        engine = make_engine(url)
        migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()
