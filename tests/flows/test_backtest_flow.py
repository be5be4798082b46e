"""The `backtest` flow: the store's history judged from Prefect, its artifacts, its refusals,
its run form and its deployment."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows import runtime
from flows.backtest_flow import backtest_flow
from flows.settings import PROJECT_ROOT
from flows.sync import CrmName
from tests.flows.history_store import AS_OF, build_history_store

PNG_MAGIC = b"\x89PNG"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty store's URL, the settings pointed at it; the clock pinned 90 days after
    AS_OF, so that the flow's default cut is AS_OF."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MQLSYNC_DATABASE_URL", url)
    monkeypatch.setenv("MQLSYNC_FIXED_NOW", (AS_OF + timedelta(days=90)).isoformat())
    runtime.reset()
    yield url
    runtime.reset()


def artifact(key: str) -> Any:
    """The artifact's data, as Prefect stores it (a table as JSON text)."""
    from prefect.artifacts import Artifact

    found: Any = Artifact.get(key)  # called from sync code: the artifact, not a coroutine
    assert found is not None, f"no artifact {key}"
    return found.data


def test_the_models_are_judged_and_published(prefect_api: None, store: str) -> None:
    build_history_store(store, accepted=20)
    state = backtest_flow(
        crm=CrmName.salesforce,
        models=["scoring/models/default.yaml", str(PROJECT_ROOT / "scoring/models/example.yaml")],
        return_state=True,
    )
    assert state.is_completed(), state.message
    text = state.result()
    assert "40 contacts at 2026-06-01, horizon 90 days: 40 judged, 20 converted" in text

    table = json.loads(artifact("mqlsync-backtest-salesforce"))
    figures = {row["figure"]: row for row in table}
    labels = [name for name in table[0] if name != "figure"]
    assert len(labels) == 2
    # The converters are exactly those who asked for a demo: every model ranks them first.
    default = next(name for name in labels if name.startswith("default"))
    assert figures["AUC total"][default] == "1.000"
    for figure in (
        "AUC fit", "AUC engagement", "baseline AUC (count of activities)", "MQL rate",
        "MQL -> SQL conversion", "recall", "median lead time (days)",
        "recommended threshold", "  at it: conversion", "  at it: recall",
    ):  # fmt: skip
        assert set(figures[figure]) == {"figure", *labels}, figure
    assert figures["baseline AUC (count of activities)"][default] == "1.000"

    markdown = artifact("mqlsync-backtest-salesforce-report")
    assert isinstance(markdown, str)
    assert markdown.startswith("# Backtest") and "## Summary" in markdown
    images = markdown.split("](data:image/png;base64,")[1:]
    assert len(images) == 2, "the lift and threshold charts, inline"
    for image in images:
        png = base64.b64decode(image[: image.index(")")])
        assert png.startswith(PNG_MAGIC) and len(png) < 200_000
    assert "](lift.png)" not in markdown and "](threshold.png)" not in markdown


def test_a_history_without_acceptances_fails_saying_why(prefect_api: None, store: str) -> None:
    build_history_store(store, accepted=0)
    state = backtest_flow(crm=CrmName.salesforce, return_state=True)
    assert state.is_failed()
    assert state.message is not None
    assert "no converters among 40 contacts" in state.message
    assert "2026-06-01" in state.message and "Traceback" not in state.message


def test_an_empty_store_fails_saying_why(prefect_api: None, store: str) -> None:
    state = backtest_flow(crm=CrmName.hubspot, as_of=AS_OF, return_state=True)
    assert state.is_failed()
    assert state.message is not None and "no contacts" in state.message


def test_an_unreadable_model_fails_saying_why(prefect_api: None, store: str) -> None:
    state = backtest_flow(crm=CrmName.hubspot, models=["no/such/model.yaml"], return_state=True)
    assert state.is_failed()
    assert state.message is not None and "cannot read the model" in state.message


def test_every_parameter_has_a_title_and_a_description_for_the_run_form() -> None:
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(backtest_flow).model_dump_for_openapi()
    properties = schema["properties"]
    assert list(properties) == ["crm", "models", "as_of", "horizon_days", "band_low", "band_high"]
    for name, prop in properties.items():
        assert prop.get("title") and prop["title"] != name, name
        assert len(prop.get("description", "")) > 20, name
    assert schema["required"] == ["crm"]
    assert schema["definitions"]["CrmName"]["enum"] == ["hubspot", "salesforce"]
    assert "UTC" in properties["as_of"]["title"] + properties["as_of"]["description"]
    assert properties["horizon_days"]["default"] == 90


def test_the_deployment_runs_this_flow_with_valid_parameters() -> None:
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    [entry] = [d for d in config["deployments"] if d["name"].startswith("backtest")]
    assert not entry.get("schedules")
    loaded: Any = load_flow_from_entrypoint(str(PROJECT_ROOT / entry["entrypoint"]))
    assert loaded.name == "backtest"
    parameters = {"crm": "hubspot", **(entry.get("parameters") or {})}
    assert loaded.validate_parameters(parameters)["horizon_days"] == 90
