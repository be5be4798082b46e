"""A sync step run in a separate process against the sandbox, optionally dying mid-way.

Used by the exactly-once tests: two of these at once, or one killed with `os._exit`
between claiming a handoff and creating its task (or between creating and recording).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.config import HubSpotConfig
from connectors.hubspot import HubSpotConnector
from connectors.mapping import default_mapping
from flows import pipeline, recovery
from scoring.model import parse_model
from scoring.records import Crm
from scoring.writes import HandoffTask, WriteOutcome
from store.db import make_engine

MODEL = Path(__file__).resolve().parents[2] / "scoring" / "models" / "default.yaml"


class DiesAroundCreate:
    """Delegates to a real connector; ends the process just before or after a task create."""

    def __init__(self, inner: HubSpotConnector, when: str) -> None:
        self._inner = inner
        self._when = when
        self.crm = inner.crm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_tasks(self, tasks: Sequence[HandoffTask]) -> list[WriteOutcome]:
        if self._when == "before_create":
            os._exit(9)
        outcomes = self._inner.create_tasks(tasks)
        os._exit(9)
        return outcomes  # never reached: the process is gone


def connector(base_url: str, token: str, ca_file: str) -> HubSpotConnector:
    config = HubSpotConfig(access_token=SecretStr(token), host=base_url, ca_file=Path(ca_file))
    return HubSpotConnector(config, default_mapping(Crm.HUBSPOT))


def run_sync_step(
    store_url: str,
    base_url: str,
    token: str,
    ca_file: str,
    contact_ids: list[str],
    worker: str,
    die: str | None = None,
    finish_interrupted: bool = False,
) -> None:
    """Score, plan and apply for these contacts, as one worker would."""
    engine = make_engine(store_url)
    model = parse_model(MODEL.read_text(), str(MODEL))
    crm: Any = connector(base_url, token, ca_file)
    if die is not None:
        crm = DiesAroundCreate(crm, die)
    now = datetime.now(UTC)
    mapping = default_mapping(Crm.HUBSPOT)
    if finish_interrupted:
        recovery.finish_interrupted_handoffs(engine, crm, now, worker, worker, lease=_no_lease())
    decided = pipeline.score_and_plan(
        engine, model, Crm.HUBSPOT, contact_ids, mapping.lead_status.key_for, now, worker
    )
    pipeline.apply_plans(engine, crm, decided, now, worker, worker)
    engine.dispose()


def _no_lease() -> Any:
    from datetime import timedelta

    return timedelta(0)
