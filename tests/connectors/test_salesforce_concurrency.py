"""Salesforce objects queried at once (`SalesforceConfig.concurrency`): the same records
and cursors as one after the other, real overlap at the sandbox, and a failing object
raised with no thread left behind. Over real HTTPS against the sandbox."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from connectors.config import SalesforceConfig
from connectors.errors import RetriableError
from connectors.paging import Page
from connectors.salesforce import SalesforceConnector
from tests.connectors.conftest import FAST, TEST_RETRY

SEED = 11
PEOPLE = 400
PRODUCTION = SalesforceConfig.model_fields["throttle"].default


def _connector(handle: Any, concurrency: int, **overrides: Any) -> SalesforceConnector:
    return SalesforceConnector(
        SalesforceConfig(
            instance_url=handle.base_url,
            session_id=handle.salesforce_session_id,
            client_id=handle.salesforce_client_id,
            client_secret=handle.salesforce_client_secret,
            ca_file=handle.ca_file,
            timeout_s=5.0,
            throttle=overrides.get("throttle", FAST),
            retry=TEST_RETRY,
            concurrency=concurrency,
        )
    )


@dataclass
class Pulled:
    records: Counter[str] = field(default_factory=Counter)
    cursors: list[datetime | None] = field(default_factory=list)
    source_cursors: dict[str, datetime] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)


def _read(pages: Iterator[Page[Any]]) -> Pulled:
    out = Pulled()
    for page in pages:
        # Each record whole, as text (activities hold dicts, so they do not hash).
        out.records.update(
            r.model_dump_json() if isinstance(r, BaseModel) else repr(r) for r in page.records
        )
        out.cursors.append(page.cursor)
        out.issues += [f"{e.crm_id}: {e.message}" for e in page.errors]
        if page.source_cursors:
            out.source_cursors = dict(page.source_cursors)
    return out


def _pulls(connector: SalesforceConnector) -> dict[str, Pulled]:
    return {
        "contacts": _read(connector.pull_contacts(None)),
        "activities": _read(connector.pull_activities(None)),
        "deletions": _read(connector.pull_deletions(None)),
    }


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pull-worker")]


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    from sandbox.testing import running_sandbox

    with running_sandbox(contacts=PEOPLE, seed=SEED) as handle:
        yield handle


def test_objects_at_once_pull_the_same_records_and_cursors_as_one_at_a_time(sb: Any) -> None:
    one, many = _pulls(_connector(sb, 1)), _pulls(_connector(sb, 3))
    for name in ("contacts", "activities", "deletions"):
        assert one[name].records, name
        assert one[name].issues == many[name].issues == [], name
        assert many[name].records == one[name].records, name
        # The pull's cursor on its last page only, the same as one at a time.
        assert many[name].cursors[:-1] == [None] * (len(many[name].cursors) - 1), name
        assert many[name].cursors[-1] == one[name].cursors[-1], name
    assert many["activities"].source_cursors == one["activities"].source_cursors
    assert len(one["activities"].source_cursors) >= 2
    assert workers() == []


def test_a_failing_object_raises_as_it_does_one_at_a_time_and_leaves_no_thread(
    sb: Any,
) -> None:
    # Every query fails with 500 until the retries give up: with three at once, each
    # worker meets it, one failure is raised and the others stop.
    sb.admin.set_faults([{"kind": "500", "rate": 1.0, "path": "/services/data/v59.0/query"}])
    try:
        failures: list[str] = []
        for concurrency in (1, 3):
            with pytest.raises(RetriableError) as raised:
                _read(_connector(sb, concurrency).pull_activities(None))
            # The same failure but for the error id each 500 carries.
            failures.append(str(raised.value).split(" support: ")[0])
            assert workers() == []
        assert failures[0] == failures[1]
        assert "500" in failures[0] and "/query" in failures[0]
    finally:
        sb.admin.clear_faults()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_queries_overlap_at_the_sandbox_only_when_objects_run_at_once(concurrency: int) -> None:
    from sandbox.testing import running_sandbox

    # The production throttle, and answers slow enough (Salesforce's median 80 ms at
    # scale 0.2) that queries sent at once meet at the sandbox however busy the machine.
    with running_sandbox(contacts=200, seed=SEED, latency=0.2) as handle:
        connector = _connector(handle, concurrency, throttle=PRODUCTION)
        connector.check_mapping()  # describes first: the pull's own requests alone
        handle.admin.reset()
        pulled = _read(connector.pull_activities(None))
        peak = handle.admin.latency()["peak_waiting"]
    assert pulled.records and pulled.issues == []
    if concurrency == 1:
        assert peak == 1
    else:
        assert 2 <= peak <= concurrency
