"""A collections answer that does not list one result per record (cut short by a proxy,
say): no record is taken for written on a guess. Updates are sent again; creates are
looked up before anything is sent again, so no task is lost and none doubled.

Over real HTTPS: a loopback proxy in front of the sandbox cuts the first collections
answer of each kind by one result; everything else passes through unchanged."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from connectors.config import SalesforceConfig
from connectors.salesforce import SalesforceConnector
from scoring.records import Crm
from scoring.writes import HandoffTask, OutcomeStatus, Priority, PropertyUpdate
from tests.connectors.conftest import FAST, TEST_RETRY

COLLECTIONS = "/services/data/v59.0/composite/sobjects"


class CuttingProxy:
    """Forwards every request to the sandbox; the first collections answer of each
    method loses its last result."""

    def __init__(self, handle: Any) -> None:
        from sandbox.run import trusting_session

        self.upstream = handle.base_url
        self.http = trusting_session(handle.ca_file)
        self.cut: set[str] = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "accept")
                }
                answer = proxy.http.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers
                )
                content = answer.content
                if self.path.startswith(COLLECTIONS) and self.command not in proxy.cut:
                    proxy.cut.add(self.command)
                    content = json.dumps(answer.json()[:-1]).encode()
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Sforce-Limit-Info"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # The Salesforce client speaks https only: the proxy serves the sandbox's own
        # certificate (for 127.0.0.1, signed by the CA the connector trusts).
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(Path(handle.ca_file).parent / "server.pem")
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=60, seed=4) as handle:
        yield handle


def _connector(handle: Any, proxy: CuttingProxy) -> SalesforceConnector:
    return SalesforceConnector(
        SalesforceConfig(
            instance_url=proxy.url,
            session_id=handle.salesforce_session_id,
            ca_file=handle.ca_file,
            timeout_s=10.0,
            throttle=FAST,
            retry=TEST_RETRY,
            settle_s=0.0,
        )
    )


def test_a_short_update_answer_sends_every_record_again(sb: Any) -> None:
    with CuttingProxy(sb) as proxy:
        connector = _connector(sb, proxy)
        ids = [c.crm_id for page in connector.pull_contacts(None) for c in page.records][:5]
        updates = [
            PropertyUpdate(crm=Crm.SALESFORCE, crm_id=i, values={"score": 40 + n})
            for n, i in enumerate(ids)
        ]
        outcomes = connector.update_properties(updates)
        assert proxy.cut == {"PATCH"}, "the first answer was cut"
    assert [o.status for o in outcomes] == [OutcomeStatus.OK] * len(ids)
    assert [o.attempts for o in outcomes] == [2] * len(ids)
    for n, crm_id in enumerate(ids):
        written = sb.admin.salesforce_record(crm_id)["fields"].get("MQL_Score__c")
        assert str(written) in (str(40 + n), f"{40 + n}.0"), crm_id


def test_a_short_create_answer_creates_each_task_once(sb: Any) -> None:
    with CuttingProxy(sb) as proxy:
        connector = _connector(sb, proxy)
        ids = [c.crm_id for page in connector.pull_contacts(None) for c in page.records][:3]
        due = datetime.now(UTC) + timedelta(days=1)
        tasks = [
            HandoffTask(
                crm=Crm.SALESFORCE,
                key=f"short-{n}",
                contact_id=crm_id,
                owner_id=None,
                subject="Follow up",
                body="MQL",
                due_at=due,
                priority=Priority.HIGH,
            )
            for n, crm_id in enumerate(ids)
        ]
        outcomes = connector.create_tasks(tasks)
        assert proxy.cut == {"POST"}, "the first answer was cut"
        found = connector.find_tasks([t.key for t in tasks])
    assert [o.status for o in outcomes] == [OutcomeStatus.OK] * len(tasks)
    assert sorted(found) == sorted(t.key for t in tasks)
    assert {o.crm_object_id for o in outcomes} == set(found.values())
