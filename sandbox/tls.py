"""The sandbox's key material: a throwaway CA and a certificate for 127.0.0.1/localhost,
and the RSA key pair of the Salesforce JWT bearer flow.

simple-salesforce hard-codes https, so the sandbox must speak TLS; clients trust it by
loading the CA file written here. The JWT key's private half is written next to it, as a
connected app's certificate key would be given to the integration; the server keeps the
public half to check assertions with.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # PEM of the CA: what clients load to trust the server
    cert_file: Path  # PEM with the server's private key and certificate chain
    jwt_key_file: Path  # PEM of the private key that signs JWT bearer assertions
    jwt_public_key: str  # PEM of its public key, which the token endpoint checks with


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
    jwt_key_file, public = make_jwt_key(out)
    return TlsFiles(ca_file, cert_file, jwt_key_file, public)


def make_jwt_key(directory: Path) -> tuple[Path, str]:
    """Write a new RSA private key (PKCS#8 PEM) under `directory`; return its path and
    the public key's PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "salesforce-jwt-key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()
