"""`mqlsync sandbox serve` prints where it listens and serves the real clients."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hubspot import HubSpot

MQLSYNC = Path(sys.executable).parent / "mqlsync"
TOKEN = "pat-sandbox-00000000-0000-0000-0000-000000000000"


def test_serve_prints_urls_and_ca_and_answers_hubspot_calls() -> None:
    proc = subprocess.Popen(
        [str(MQLSYNC), "sandbox", "serve", "--port", "0", "--contacts", "60", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not {"HubSpot base URL", "Salesforce instance URL", "CA file"} <= set(found):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, f"no banner (exit {proc.poll()})"
            label, sep, value = line.partition(":")
            if sep and value.strip():
                found[label.strip()] = value.strip().split()[0]
        assert found["HubSpot base URL"].startswith("https://127.0.0.1:")
        assert Path(found["CA file"]).is_file()
        client = HubSpot(
            access_token=TOKEN, host=found["HubSpot base URL"], ssl_ca_cert=found["CA file"]
        )
        page = client.crm.contacts.basic_api.get_page(limit=10, properties=["email"])
        assert len(page.results) == 10 and page.results[0].properties["email"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
