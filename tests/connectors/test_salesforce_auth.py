"""Salesforce sessions over real HTTPS against the sandbox: the JWT bearer and client
credentials grants, the instance URL of the token answer, renewal after a 401 and
before the session's lifetime ends, and no secret in any error, log record or repr."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr, ValidationError
from simple_salesforce.api import Salesforce

from connectors.config import SalesforceConfig
from connectors.errors import AuthExpired, ConnectorError, FatalError
from connectors.retry import Redactor
from connectors.salesforce_auth import (
    ASSERTION_LIFETIME_S,
    JWT_BEARER,
    NO_RENEWAL,
    JwtBearer,
    SalesforceToken,
    age_at_receipt,
    read_private_key,
)
from connectors.salesforce_session import SalesforceSession
from connectors.throttle import Throttle, TokenBucket
from flows import runtime
from flows.settings import Settings
from tests.connectors.conftest import FAST, TEST_RETRY

TOKEN = "POST /services/oauth2/token"
QUERY = "GET /services/data/v59.0/query"
LEADS = "SELECT Id FROM Lead LIMIT 1"
# The base64 of a JWT header {"alg":"RS256","typ":"JWT"}: every assertion starts so.
JWT_HEADER = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"


class WallClock:
    """Epoch seconds that move only when a test says: `advance(minutes)`."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=30, seed=5) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh(sb: Any) -> None:
    sb.admin.clear_faults()
    sb.admin.reset()


def grant(sb: Any, flow: str) -> dict[str, Any]:
    """Config fields of one grant; neither names the instance URL (the answer does)."""
    if flow == "jwt":
        return {
            # The sandbox accepts the production audience on its own token endpoint.
            "login_url": "https://login.salesforce.com",
            "token_url": f"{sb.base_url}/services/oauth2/token",
            "client_id": sb.salesforce_client_id,
            "username": sb.salesforce_username,
            "jwt_key_file": Path(sb.salesforce_jwt_key_file),
        }
    return {
        "login_url": sb.base_url,
        "client_id": sb.salesforce_client_id,
        "client_secret": sb.salesforce_client_secret,
    }


def session_for(sb: Any, clock: Any = time.time, **fields: Any) -> SalesforceSession:
    config = SalesforceConfig(
        ca_file=sb.ca_file, timeout_s=5.0, throttle=FAST, retry=TEST_RETRY, **fields
    )
    throttle = Throttle({"default": TokenBucket(FAST.rate, FAST.burst)})
    return SalesforceSession(config, throttle, Redactor(), clock=clock)


def client(session: SalesforceSession) -> Salesforce:
    """simple-salesforce over the session, as the connector builds it."""
    return Salesforce(
        instance_url=session.instance_url(),
        session_id=session.token or "pending",
        version="59.0",
        session=session,
    )


def requests_of(sb: Any, label: str) -> int:
    return int(sb.admin.stats()["requests"].get(label, 0))


def secrets_of(sb: Any) -> list[str]:
    key = Path(sb.salesforce_jwt_key_file).read_text()
    body = [line for line in key.splitlines() if line and not line.startswith("-----")]
    return [sb.salesforce_client_secret, sb.salesforce_session_id, JWT_HEADER, *body]


# --- the grants ---------------------------------------------------------------------------


def test_a_jwt_bearer_session_is_obtained_and_used(sb: Any) -> None:
    session = session_for(sb, **grant(sb, "jwt"))
    sf = client(session)
    assert sf.query(LEADS)["totalSize"] == 1
    assert session.token is not None and session.token != sb.salesforce_session_id
    assert requests_of(sb, TOKEN) == 1 and requests_of(sb, QUERY) == 1
    assert type(session.auth_flow.grant).__name__ == "JwtBearer"


@pytest.mark.parametrize("audience", ["https://test.salesforce.com", "base"])
def test_the_jwt_audience_is_the_login_url(sb: Any, audience: str) -> None:
    fields = grant(sb, "jwt")
    if audience == "base":
        # A My Domain-like login URL: token endpoint and audience on the same host.
        fields.pop("token_url")
        fields["login_url"] = sb.base_url
    else:
        fields["login_url"] = audience
    session = session_for(sb, **fields)
    assert client(session).query(LEADS)["totalSize"] == 1
    grant_ = session.auth_flow.grant
    assert isinstance(grant_, JwtBearer)
    claims = jwt.decode(grant_.assertion(), options={"verify_signature": False})
    assert claims["aud"] == (sb.base_url if audience == "base" else audience)


def test_the_assertion_carries_the_claims_salesforce_checks(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "server.key"
    path.write_bytes(pem)
    config = SalesforceConfig(
        client_id="3MVG9-consumer-key",
        username="integration@example.com",
        jwt_key_file=path,
        login_url="https://test.salesforce.com/",
    )
    redact = Redactor()
    grant_ = JwtBearer(
        "3MVG9-consumer-key",
        "integration@example.com",
        config.effective_login_url,
        read_private_key(config, redact),
        redact,
    )
    form = grant_.form()
    assert form["grant_type"] == JWT_BEARER
    assert jwt.get_unverified_header(form["assertion"])["alg"] == "RS256"
    claims = jwt.decode(
        form["assertion"],
        key.public_key(),
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
    )
    assert claims["iss"] == "3MVG9-consumer-key"
    assert claims["sub"] == "integration@example.com"
    assert 0 < claims["exp"] - time.time() <= 180  # Salesforce: at most 3 minutes ahead
    assert ASSERTION_LIFETIME_S <= 180
    # The assertion and every line of the key are redacted from then on.
    body = pem.decode().splitlines()[1]
    assert redact(f"x {form['assertion']} {body}") == "x *** ***"
    assert config.token_endpoint == "https://test.salesforce.com/services/oauth2/token"


def test_a_key_that_is_not_rsa_is_refused_naming_the_file_not_the_key(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = SalesforceConfig(client_id="cid", username="u@example.com", jwt_key_file=path)
    with pytest.raises(FatalError, match="not an RSA key") as info:
        read_private_key(config)
    assert str(path) in str(info.value)
    garbage = SalesforceConfig(
        client_id="cid", username="u@example.com", jwt_private_key=SecretStr("not a key at all")
    )
    with pytest.raises(FatalError, match="not an unencrypted PEM private key") as info:
        read_private_key(garbage)
    assert "not a key at all" not in str(info.value)


# --- the instance URL -------------------------------------------------------------------


@pytest.mark.parametrize("flow", ["jwt", "client_credentials"])
def test_the_instance_url_comes_from_the_token_answer(sb: Any, flow: str) -> None:
    fields = grant(sb, flow)
    # Sessions are requested where the login URL says; the API host is the answer's.
    fields["token_url"] = f"{sb.base_url}/services/oauth2/token"
    fields["login_url"] = "https://test.salesforce.com"
    session = session_for(sb, **fields)
    assert session.token is None
    assert session.instance_url() == sb.base_url
    assert requests_of(sb, TOKEN) == 1
    assert client(session).query(LEADS)["totalSize"] == 1
    assert requests_of(sb, TOKEN) == 1


def test_a_config_with_instance_url_and_client_credentials_keeps_its_token_url(sb: Any) -> None:
    session = session_for(
        sb,
        instance_url=sb.base_url + "/",
        client_id=sb.salesforce_client_id,
        client_secret=sb.salesforce_client_secret,
    )
    assert session.token_url == f"{sb.base_url}/services/oauth2/token"
    assert client(session).query(LEADS)["totalSize"] == 1
    assert session.instance_url() == sb.base_url


def test_without_login_or_instance_url_sessions_come_from_login_salesforce_com() -> None:
    config = SalesforceConfig(client_id="cid", client_secret="secret")
    assert config.token_endpoint == "https://login.salesforce.com/services/oauth2/token"


# --- renewal ------------------------------------------------------------------------------


@pytest.mark.parametrize("flow", ["jwt", "client_credentials"])
def test_a_session_expired_mid_run_is_renewed_and_the_request_succeeds(sb: Any, flow: str) -> None:
    session = session_for(sb, **grant(sb, flow))
    sf = client(session)
    assert sf.query(LEADS)["totalSize"] == 1
    first = session.token
    sb.admin.expire_sessions()  # an admin revokes every session (or the timeout hit)
    assert sf.query(LEADS)["totalSize"] == 1
    assert session.token not in (None, first)
    assert requests_of(sb, TOKEN) == 2  # the first session, then one renewal
    assert requests_of(sb, QUERY) == 3  # ok, 401 INVALID_SESSION_ID, ok


@pytest.mark.parametrize("flow", ["jwt", "client_credentials"])
def test_a_session_is_renewed_before_its_lifetime_ends(sb: Any, flow: str) -> None:
    clock = WallClock()
    session = session_for(sb, clock, session_minutes=110, **grant(sb, flow))
    sf = client(session)
    sf.query(LEADS)
    first = session.token
    clock.advance(100)
    sf.query(LEADS)
    assert session.token == first and requests_of(sb, TOKEN) == 1
    clock.advance(10)  # 110 minutes after `issued_at`: renewed before the request
    sf.query(LEADS)
    assert session.token != first and requests_of(sb, TOKEN) == 2
    assert requests_of(sb, QUERY) == 3  # no request was refused on the way
    clock.advance(109)
    sf.query(LEADS)
    assert requests_of(sb, TOKEN) == 2


def test_a_session_is_as_old_as_its_issued_at_says_unless_that_is_implausible() -> None:
    now = 1_800_000_000.0
    wall = lambda: now  # noqa: E731
    assert age_at_receipt(now - 60, 6600, wall) == 60
    assert age_at_receipt(None, 6600, wall) == 0
    assert age_at_receipt(now + 5, 6600, wall) == 0  # the server's clock runs ahead
    # Salesforce may answer a still-valid earlier session with its first `issued_at`.
    assert age_at_receipt(now - 3 * 3600, 6600, wall) == 0
    token = SalesforceToken("secret-token", None, received_at=500.0, age_at_receipt=60)
    assert token.born == 440.0
    assert "secret-token" not in repr(token)


def test_a_static_session_that_dies_stops_with_the_existing_message(sb: Any) -> None:
    static = sb.new_salesforce_session()  # a session id minted elsewhere
    session = session_for(sb, instance_url=sb.base_url, session_id=static)
    sf = client(session)
    assert sf.query(LEADS)["totalSize"] == 1
    assert not session.can_refresh()
    sb.admin.expire_sessions()
    with pytest.raises(AuthExpired) as info:
        sf.query(LEADS)
    assert "INVALID_SESSION_ID" in str(info.value)
    assert static not in str(info.value)
    with pytest.raises(AuthExpired, match=NO_RENEWAL):
        session.refresh()
    assert requests_of(sb, TOKEN) == 1  # the one minted above: none by the session


def test_a_static_session_is_renewed_by_the_configured_grant(sb: Any) -> None:
    fields = grant(sb, "jwt")
    static = sb.new_salesforce_session()
    session = session_for(sb, instance_url=sb.base_url, session_id=static, **fields)
    sf = client(session)
    assert session.token == static
    sf.query(LEADS)
    assert requests_of(sb, TOKEN) == 1  # the one minted above
    sb.admin.expire_sessions()
    assert sf.query(LEADS)["totalSize"] == 1
    assert requests_of(sb, TOKEN) == 2 and session.token != static


# --- refusals and secrets -----------------------------------------------------------------


def test_a_refused_client_secret_is_one_fatal_line_without_the_secret(sb: Any) -> None:
    session = session_for(
        sb, login_url=sb.base_url, client_id=sb.salesforce_client_id, client_secret="wrong-1234"
    )
    with pytest.raises(FatalError) as info:
        session.instance_url()
    text = str(info.value)
    assert "refused the client credentials grant" in text and "invalid_client" in text
    assert "wrong-1234" not in text
    assert requests_of(sb, TOKEN) == 1  # a refusal is not retried


def test_a_refused_jwt_is_one_fatal_line_without_the_assertion(sb: Any) -> None:
    fields = {**grant(sb, "jwt"), "username": "nobody@example.invalid"}
    session = session_for(sb, **fields)
    with pytest.raises(FatalError) as info:
        session.instance_url()
    text = str(info.value)
    assert "refused the JWT bearer grant" in text and "invalid_grant" in text
    assert "pre-authorised" in text
    for secret in secrets_of(sb):
        assert secret not in text


def test_no_secret_in_errors_logs_or_reprs(sb: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    errors: list[str] = []
    for flow in ("jwt", "client_credentials"):
        session = session_for(sb, **grant(sb, flow))
        sf = client(session)
        sf.query(LEADS)
        seen.append(str(session.token))
        sb.admin.expire_sessions()
        sb.admin.set_faults([{"kind": "500", "count": 1, "path": "/services/data"}])
        sf.query(LEADS)
        seen.append(str(session.token))
        errors += [repr(session), repr(session.auth_flow), repr(session.auth_flow.grant)]
        errors.append(repr(session._config))
        sb.admin.expire_sessions()
        sb.admin.set_faults([{"kind": "expired", "count": 20, "path": "/services/data"}])
        with pytest.raises(ConnectorError) as info:
            sf.query(LEADS)
        errors.append(str(info.value))
        sb.admin.clear_faults()
        seen.append(str(session.token))
    static_id = sb.new_salesforce_session()
    seen.append(static_id)
    static = session_for(sb, instance_url=sb.base_url, session_id=static_id)
    sb.admin.expire_sessions()
    with pytest.raises(AuthExpired) as info:
        client(static).query(LEADS)
    errors.append(str(info.value))
    assert any("renewing" in r.getMessage() or "session" in r.getMessage() for r in caplog.records)
    text = caplog.text + "\n".join(errors)
    for secret in [*secrets_of(sb), *seen]:
        assert secret not in text, secret[:6]


# --- settings -----------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MQLSYNC_"):
            monkeypatch.delenv(name)


def test_settings_refuse_incomplete_jwt_combinations(clean_env: None, tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot-a-key-body\n-----END PRIVATE KEY-----\n")
    base = {
        "salesforce_instance_url": "https://acme.my.salesforce.com",
        "salesforce_session_id": "00Dstatic!session",
    }

    def problem(**values: Any) -> str:
        with pytest.raises(runtime.ConfigurationError) as info:
            runtime._salesforce(Settings(**{**base, **values}))
        return str(info.value)

    text = problem(salesforce_jwt_key_file=key, salesforce_client_id="cid")
    assert "MQLSYNC_SALESFORCE_USERNAME" in text and "CLIENT_ID" not in text
    text = problem(salesforce_jwt_key_file=key, salesforce_jwt_key_block="sf-key")
    assert "MQLSYNC_SALESFORCE_JWT_KEY_FILE" in text and "JWT_KEY_BLOCK" in text
    text = problem(salesforce_jwt_key_file=tmp_path / "absent.key")
    assert "no such file" in text
    text = problem(salesforce_username="u@example.com", salesforce_client_id="cid")
    assert "MQLSYNC_SALESFORCE_JWT_KEY_FILE" in text
    text = problem(salesforce_instance_url=None)
    assert "MQLSYNC_SALESFORCE_INSTANCE_URL" in text
    text = problem(
        salesforce_jwt_key_file=key,
        salesforce_client_id="cid",
        salesforce_username="u@example.com",
    )
    assert "not an unencrypted PEM private key" in text and "JWT_KEY_FILE" in text
    assert "not-a-key-body" not in text


def test_settings_defaults() -> None:
    fields = Settings.model_fields
    assert fields["salesforce_session_minutes"].default == 110.0
    assert fields["salesforce_daily_budget_share"].default == 0.5
    assert fields["salesforce_login_url"].default is None


def test_the_config_names_what_a_grant_lacks() -> None:
    with pytest.raises(ValidationError, match="username to act as"):
        SalesforceConfig(client_id="cid", jwt_private_key="pem")
    with pytest.raises(ValidationError, match="instance URL it belongs to"):
        SalesforceConfig(session_id="00Dx!y", client_id="cid", client_secret="s")
    with pytest.raises(ValidationError, match="needs a JWT key"):
        SalesforceConfig(client_id="cid")
    with pytest.raises(ValidationError, match="not an https URL"):
        SalesforceConfig(client_id="cid", client_secret="s", login_url="http://example.com")
