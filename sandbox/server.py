"""Run the sandbox: in a background thread (tests, benchmarks) or in the foreground
(`serve`, behind `mqlsync sandbox serve` and `python -m sandbox`)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.app import create_app
from sandbox.faults import Faults, parse_spec
from sandbox.latency import latency_from
from sandbox.limits import Limits
from sandbox.population import PopulationSpec
from sandbox.salesforce_schema import DATA_PATH
from sandbox.state import Sandbox, build_sandbox
from sandbox.tls import make_tls


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it, a response's two TLS records (head,
    # body) meet the client's delayed ACK and every request takes ~40 ms more.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _quiet_shutdown(record: logging.LogRecord) -> bool:
    # Stopping with idle keep-alive clients always "exceeds" the short graceful timeout
    # on purpose; that is not an error worth printing into test output.
    return "graceful shutdown exceeded" not in record.getMessage()


class SandboxServer:
    """One sandbox served over HTTPS by uvicorn on its own event loop thread."""

    def __init__(
        self,
        sandbox: Sandbox,
        port: int = 0,
        host: str = "127.0.0.1",
        tls_dir: str | Path | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.tls = make_tls(tls_dir)
        self._sock = _bind(host, port)
        self.host = host
        self.port = self._sock.getsockname()[1]
        sandbox.base_url = f"https://{host}:{self.port}"
        sandbox.ca_file = str(self.tls.ca_file)
        sandbox.jwt_key_file = str(self.tls.jwt_key_file)
        sandbox.credentials.jwt_public_key = self.tls.jwt_public_key
        config = uvicorn.Config(
            create_app(sandbox),
            ssl_certfile=str(self.tls.cert_file),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            # Nothing in flight is worth waiting for; idle keep-alive TLS connections of
            # clients would otherwise hold a SIGTERM-ed server up.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_quiet_shutdown)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self.sandbox.base_url

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.run(sockets=[self._sock])

    def start(self, timeout: float = 10.0) -> None:
        """Serve from a daemon thread; returns once the server accepts connections."""

        def run() -> None:
            asyncio.run(self._server.serve(sockets=[self._sock]))

        self._thread = threading.Thread(target=run, name="sandbox-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        # force_exit: do not wait for idle keep-alive TLS connections of clients that
        # are still alive in the test process; their close handshake never comes.
        self._server.should_exit = True
        self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()


def serve(
    port: int,
    contacts: int,
    seed: int,
    tier: str = "professional",
    faults: str | None = None,
    host: str = "127.0.0.1",
    activities_per_contact: float = 20.0,
    tls_dir: str | None = None,
    profile: str = "configured",
    scopes: Iterable[str] | None = None,
    latency: float | None = None,
    latency_seed: int | None = None,
    **salesforce: Any,
) -> None:
    """Build a sandbox and serve it in the foreground, printing where it listens.

    Prints the HubSpot base URL, the Salesforce instance URL, the CA file path and the
    Salesforce JWT key file (and the fixed credentials), then serves until interrupted.
    `profile` is "configured" or "stock"; `scopes` are all the HubSpot token is granted
    (default: the product's); `salesforce` are build_sandbox's `salesforce_*` options.
    `latency` switches realistic answer times on, every median times it (None or 0:
    off); its draws are seeded with `latency_seed`, by default `seed`.
    """
    rules, seed_faults = parse_spec(faults)
    spec = PopulationSpec(
        contacts=contacts, seed=seed, activities_per_contact=activities_per_contact
    )
    sandbox = build_sandbox(
        spec,
        Limits(hubspot_tier=tier),
        Faults(rules, seed_faults),
        profile=profile,
        scopes=scopes,
        latency=latency_from(latency, seed if latency_seed is None else latency_seed),
        **salesforce,
    )
    server = SandboxServer(sandbox, port=port, host=host, tls_dir=tls_dir)
    creds = sandbox.credentials
    print(f"HubSpot base URL:        {server.base_url}", flush=True)
    print(f"Salesforce instance URL: {server.base_url}  (REST: {server.base_url}{DATA_PATH})")
    print(f"CA file:                 {server.tls.ca_file}")
    print(f"JWT key file:            {server.tls.jwt_key_file}")
    print(f"HubSpot token:           {creds.hubspot_token}")
    print(f"Salesforce session id:   {creds.salesforce_session_id}")
    print(
        f"Salesforce client id/secret: {creds.salesforce_client_id} / "
        f"{creds.salesforce_client_secret}"
    )
    print(f"Salesforce username:     {creds.salesforce_username}  (JWT bearer flow `sub`)")
    print(f"HubSpot portal:          {sandbox.portal_id} ({profile} profile, {tier} tier)")
    print(f"Admin API:               {server.base_url}/_sandbox/info")
    if sandbox.latency.enabled:
        medians = sandbox.latency.describe()["effective_median_ms"]
        print(f"Latency (median ms):     {', '.join(f'{f} {m:g}' for f, m in medians.items())}")
    print(
        f"Generated {len(sandbox.population.people)} people and "
        f"{len(sandbox.population.hubspot) + len(sandbox.population.salesforce)} activities "
        f"in {sandbox.build_seconds:.1f}s",
    )
    sys.stdout.flush()  # a parent process reads these lines to find the server
    server.serve_forever()
