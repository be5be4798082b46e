"""A real Prefect server and process workers as subprocesses, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from tests.databases import POSTGRES_URL, postgres_available

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_database(tmp: Path) -> Iterator[str]:
    """PostgreSQL (a fresh database) when it is here, as in CI; else a SQLite file."""
    if postgres_available() is not None:
        yield f"sqlite+aiosqlite:///{tmp / 'prefect.db'}"
        return
    name = f"prefect_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    try:
        base = POSTGRES_URL.replace("postgresql+psycopg", "postgresql+asyncpg").rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


class Cluster:
    """Where the server listens, the environment its clients need, and the workers' logs."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.api_url = env["PREFECT_API_URL"]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.worker_logs: dict[str, Path] = {}

    def run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str) -> None:
        self.worker_logs[name] = self.tmp / f"{name}.log"
        self.start(
            name, str(BIN / "prefect"), "worker", "start", "--pool", "mqlsync-process",
            "--name", name, "--limit", "3",
        )  # fmt: skip

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def prefect_cluster(tmp: Path, extra_env: dict[str, str]) -> Iterator[Cluster]:
    port = free_port()
    with prefect_database(tmp) as database_url:
        env = {
            **os.environ,
            **extra_env,
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PWD": str(ROOT),
        }
        cluster = Cluster(tmp, env)
        cluster.start(
            "server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
            "--port", str(port),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if requests.get(f"{cluster.api_url}/health", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    log = (tmp / "server.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"prefect server did not start:\n{log}")
                time.sleep(0.5)
            yield cluster
        finally:
            cluster.stop()
