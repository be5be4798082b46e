"""Fatal means fatal: bad credentials, plain-http endpoints and broken files stop a run at
once with one line saying what to do, before (or at) its first CRM request; OAuth tokens
are renewed on a 401 instead."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from flows import runtime
from scoring.records import Crm
from tests.reliability.conftest import run_cli


def crm_requests(sb: Any) -> dict[str, int]:
    requests: dict[str, int] = sb.admin.stats()["requests"]
    return {k: v for k, v in requests.items() if "/_sandbox" not in k}


def test_a_wrong_hubspot_token_fails_at_once_saying_what_to_set(
    crm_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = crm_env
    monkeypatch.setenv("MQLSYNC_HUBSPOT_TOKEN", "pat-na1-wrong-token-0000")
    sb.admin.reset()
    run = run_cli("sync", "hubspot")
    assert run.exit_code == 1
    assert "rejected the credentials" in run.output and "MQLSYNC_HUBSPOT_TOKEN" in run.output
    assert "Traceback" not in run.output and "pat-na1-wrong-token-0000" not in run.output
    # One schema request proved the token wrong; nothing was retried, nothing pulled.
    assert sum(crm_requests(sb).values()) == 1, crm_requests(sb)


def test_an_oauth_token_is_renewed_on_a_401(crm_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = crm_env
    monkeypatch.delenv("MQLSYNC_HUBSPOT_TOKEN")
    monkeypatch.setenv("MQLSYNC_HUBSPOT_CLIENT_ID", sb.hubspot_client_id)
    monkeypatch.setenv("MQLSYNC_HUBSPOT_CLIENT_SECRET", sb.hubspot_client_secret)
    monkeypatch.setenv("MQLSYNC_HUBSPOT_REFRESH_TOKEN", sb.hubspot_refresh_token)
    # One request at a time, so each 401 comes with a token of its own (requests in flight
    # together that meet one expiry share its renewal: tests/connectors/test_parallel_writes.py).
    monkeypatch.setenv("MQLSYNC_HUBSPOT_CONCURRENCY", "1")
    sb.admin.set_faults([{"kind": "expired", "count": 2, "path": "/crm/v3/objects/contacts"}])
    sb.admin.reset()
    run = run_cli("sync", "hubspot")
    assert run.exit_code == 0, run.output
    requests = crm_requests(sb)
    assert requests["POST /oauth/v1/token"] == 3  # the first token, then one per 401
    assert sb.hubspot_refresh_token not in run.output


def test_a_bad_refresh_token_is_one_line(crm_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = crm_env
    monkeypatch.delenv("MQLSYNC_HUBSPOT_TOKEN")
    monkeypatch.setenv("MQLSYNC_HUBSPOT_CLIENT_ID", sb.hubspot_client_id)
    monkeypatch.setenv("MQLSYNC_HUBSPOT_CLIENT_SECRET", sb.hubspot_client_secret)
    monkeypatch.setenv("MQLSYNC_HUBSPOT_REFRESH_TOKEN", "revoked-refresh-token-1234")
    run = run_cli("sync", "hubspot")
    assert run.exit_code == 1
    assert "BAD_REFRESH_TOKEN" in run.output and "revoked-refresh-token-1234" not in run.output


def test_an_expired_salesforce_session_without_client_credentials_names_the_remedy(
    crm_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = crm_env
    monkeypatch.delenv("MQLSYNC_SALESFORCE_CLIENT_ID")
    monkeypatch.delenv("MQLSYNC_SALESFORCE_CLIENT_SECRET")
    sb.admin.expire_sessions()
    run = run_cli("sync", "salesforce")
    assert run.exit_code == 1
    assert "MQLSYNC_SALESFORCE_CLIENT_ID" in run.output, run.output
    assert sb.salesforce_session_id not in run.output


class PlainListener:
    """A plain-http listener on loopback that records whatever a client sends it."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.received = b""
        self.closed = threading.Event()
        # accept() is not woken by close() from another thread: poll a short timeout.
        self.server.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.server.accept()
                break
            except TimeoutError:
                continue
            except OSError:
                return
        else:
            return
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                self.received = conn.recv(65536)

    def close(self) -> None:
        self.closed.set()
        self.thread.join()
        self.server.close()


@pytest.mark.parametrize("host", ["http://crm.example.com", "http://127.0.0.1:{port}"])
def test_a_token_is_never_sent_over_plain_http(
    crm_env: Any, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    listener = PlainListener()
    try:
        monkeypatch.setenv("MQLSYNC_HUBSPOT_HOST", host.format(port=listener.port))
        runtime.reset()
        with pytest.raises(runtime.ConfigurationError, match="https"):
            runtime.connector_for(Crm.HUBSPOT)
        run = run_cli("sync", "hubspot")
        assert run.exit_code == 1 and "https" in run.output
    finally:
        listener.close()
    assert listener.received == b""


def test_plain_http_to_loopback_only_when_allowed(
    crm_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = PlainListener()
    monkeypatch.setenv("MQLSYNC_HUBSPOT_HOST", f"http://127.0.0.1:{listener.port}")
    monkeypatch.setenv("MQLSYNC_ALLOW_HTTP_LOOPBACK", "true")
    monkeypatch.setenv("MQLSYNC_TIMEOUT_S", "0.5")
    runtime.reset()
    connector = runtime.connector_for(Crm.HUBSPOT)
    with pytest.raises(Exception):  # noqa: B017 - the listener never answers
        connector.check_mapping()
    listener.close()
    assert listener.received.startswith(b"GET /crm/v3/properties/")


DEFAULT_MODEL = Path("scoring/models/default.yaml").read_text()


@pytest.mark.parametrize(
    "setting, text, expected",
    [
        ("MQLSYNC_MODEL_PATH", DEFAULT_MODEL.replace("field: company_size", "field: company_sise"),
         "did you mean"),
        ("MQLSYNC_MODEL_PATH", DEFAULT_MODEL.replace("points: 20", "points: .nan", 1), ":14:"),
        ("MQLSYNC_MODEL_PATH", DEFAULT_MODEL + "\n!!python/object:os.system {}\n", "bad.yaml:"),
        ("MQLSYNC_HUBSPOT_MAPPING", (Path("mappings/salesforce.yaml")).read_text(), "salesforce"),
    ],
)  # fmt: skip
def test_broken_configuration_stops_before_any_crm_request(
    crm_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str, text: str,
    expected: str,
) -> None:  # fmt: skip
    sb = crm_env
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    monkeypatch.setenv(setting, str(bad))
    sb.admin.reset()
    run = run_cli("sync", "hubspot")
    assert run.exit_code == 1
    assert str(bad) in run.output and expected in run.output, run.output
    assert "Traceback" not in run.output
    assert crm_requests(sb) == {}


def test_a_mapping_naming_a_property_the_portal_lacks_stops_before_the_pull(
    crm_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sb = crm_env
    mapping = tmp_path / "hubspot.yaml"
    text = Path("mappings/hubspot.yaml").read_text()
    assert "mqlsync_score" in text
    mapping.write_text(text.replace("mqlsync_score", "mqlsync_score_v2"))
    monkeypatch.setenv("MQLSYNC_HUBSPOT_MAPPING", str(mapping))
    sb.admin.reset()
    run = run_cli("sync", "hubspot")
    assert run.exit_code == 1
    assert str(mapping) in run.output and "mqlsync_score_v2" in run.output, run.output
    # Only the schema was read: no pull, no write.
    assert set(crm_requests(sb)) <= {
        "GET /crm/v3/properties/contacts",
        "GET /crm/v3/properties/tasks",
    }, crm_requests(sb)
