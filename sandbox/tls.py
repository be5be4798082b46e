"""The sandbox's TLS material: a throwaway CA and a certificate for 127.0.0.1/localhost.

simple-salesforce hard-codes https, so the sandbox must speak TLS; clients trust it by
loading the CA file written here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # PEM of the CA: what clients load to trust the server
    cert_file: Path  # PEM with the server's private key and certificate chain


def make_tls(directory: str | Path | None = None) -> TlsFiles:
    """Generate a CA and a server certificate and write them under `directory`
    (a new temporary directory if None)."""
    out = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="mqlsync-sandbox-"))
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mqlsync sandbox CA")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_file, cert_file = out / "ca.pem", out / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    return TlsFiles(ca_file, cert_file)
