"""No credential leaks out of a faulted or crashed run: not into the command's text, the
logs (ours, the client libraries' and Prefect's, at DEBUG), the audit, score and handoff
rows, the run's Prefect artifacts, or the messages of the exceptions and failed states
the run produced."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.reliability.conftest import run_cli

EVERYWHERE = {"hubspot": ["/crm/", "/events/", "/oauth/"], "salesforce": ["/services/"]}


def faults(crm: str, expired: float, reset: float) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "rate": rate, "path": path, "crm": crm}
        for kind, rate in (("expired", expired), ("reset", reset))
        for path in EVERYWHERE[crm]
    ]


SCENARIOS = {
    # Expired tokens renewed through OAuth (the refresh token and client secret in use),
    # connections dropped everywhere: a run that limps along and leaves work pending.
    "hubspot-oauth-faulted": ("hubspot", True, faults("hubspot", 0.2, 0.1)),
    # A private-app token refused on the first pull: the run crashes at once.
    "hubspot-token-crashed": ("hubspot", False, faults("hubspot", 1.0, 0.0)),
    # Sessions that really expire, renewed with the client secret, and resets.
    "salesforce-faulted": ("salesforce", False, faults("salesforce", 0.2, 0.1)),
    # Every session refused and every connection dropped: the run stops.
    "salesforce-crashed": ("salesforce", False, faults("salesforce", 0.5, 0.5)),
}


def secrets_of(sb: Any) -> dict[str, str]:
    values = {
        "hubspot token": sb.hubspot_token,
        "salesforce session id": sb.salesforce_session_id,
        "salesforce client secret": sb.salesforce_client_secret,
        "hubspot refresh token": sb.hubspot_refresh_token,
        "hubspot client secret": sb.hubspot_client_secret,
    }
    # Sessions and access tokens minted during the run and still alive are secrets too.
    credentials = sb.sandbox.credentials
    for name in ("sessions", "hubspot_oauth_tokens"):
        for n, value in enumerate(sorted(getattr(credentials, name, ()) or ())):
            values[f"{name}[{n}]"] = value
    return {name: value for name, value in values.items() if value}


def store_text() -> str:
    from sqlalchemy import select

    from flows import runtime
    from store.tables import AuditRow, HandoffRow, ScoreHistoryRow, ScoreRow

    with runtime.store_engine().connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in (AuditRow, ScoreRow, ScoreHistoryRow, HandoffRow)
            for row in connection.execute(select(table)).all()
        )


def prefect_text(crm: str) -> str:
    """The Prefect API's view of the runs: logs, state messages, artifacts."""
    from prefect import get_client
    from prefect.artifacts import Artifact

    parts: list[str] = []
    with get_client(sync_client=True) as client:
        parts += [log.message for log in client.read_logs()]
        for run in client.read_flow_runs():
            parts.append(repr(run.state.message if run.state else None))
            parts.append(repr(run.parameters))
        for task_run in client.read_task_runs():
            parts.append(repr(task_run.state.message if task_run.state else None))
    for suffix in ("summary", "mqls", "failures"):
        artifact = Artifact.get(f"mqlsync-sync-{crm}-{suffix}")
        if artifact is not None:
            parts.append(repr(artifact.data))
            parts.append(repr(artifact.description))
    return "\n".join(parts)


def exception_text(crm: str) -> str:
    """The exceptions the run's failed task runs raised, rebuilt from their stored results."""
    from prefect import get_client

    parts: list[str] = []
    with get_client(sync_client=True) as client:
        for task_run in client.read_task_runs():
            state = task_run.state
            if state is None or not state.is_failed():
                continue
            try:
                error = state.result(raise_on_failure=False)
            except Exception as exc:  # a result that cannot be read back says so
                error = exc
            parts.append(repr(error))
            parts.append(str(error))
    return "\n".join(parts)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_credential_appears_anywhere_a_faulted_run_writes(
    crm_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    scenario: str,
) -> None:
    sb = crm_env
    crm, oauth, rules = SCENARIOS[scenario]
    if oauth:
        monkeypatch.delenv("MQLSYNC_HUBSPOT_TOKEN")
        monkeypatch.setenv("MQLSYNC_HUBSPOT_CLIENT_ID", sb.hubspot_client_id)
        monkeypatch.setenv("MQLSYNC_HUBSPOT_CLIENT_SECRET", sb.hubspot_client_secret)
        monkeypatch.setenv("MQLSYNC_HUBSPOT_REFRESH_TOKEN", sb.hubspot_refresh_token)
    caplog.set_level(logging.DEBUG)
    # Prefect's loggers do not propagate to the root: listen to them directly too.
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addHandler(caplog.handler)
    try:
        sb.admin.set_faults(rules, seed=5)
        runs = [run_cli("sync", crm)]
        sb.admin.clear_faults()
        runs.append(run_cli("sync", crm))  # the repair run after the crash
        secrets = secrets_of(sb)
    finally:
        for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).removeHandler(caplog.handler)
    assert runs[0].exit_code != 0 or scenario.endswith("faulted"), runs[0].output
    captured = capfd.readouterr()
    places = {
        "the CLI text": "\n".join(run.output for run in runs),
        "the logs": "\n".join(
            f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
        )
        + caplog.text,
        "stdout/stderr": captured.out + captured.err,
        "the store's rows": store_text(),
        "Prefect's logs, states and artifacts": prefect_text(crm),
        "the exceptions": exception_text(crm),
    }
    assert places["the logs"], "nothing was logged: the test would prove nothing"
    leaks = [
        f"{secret} in {place}"
        for place, text in places.items()
        for secret, value in secrets.items()
        if value in text
    ]
    assert not leaks, leaks
