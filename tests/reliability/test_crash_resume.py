"""A sync killed with SIGKILL at 20 seeded points, restarted each time, ends as a clean run.

The sync to kill is `mqlsync sync hubspot` in a child process, talking to this test's
in-process sandbox over HTTPS and to the session's Prefect test API. The kill comes from
outside, at a deterministic point: the sandbox's request hook (`Sandbox.on_request`, a
test facility) sends SIGKILL when the k-th request of an endpoint arrives ("before": the
process dies with the request in flight; the sandbox may still apply it) or once it has
been served ("after": the write landed and the process dies, as with `lost_write`).

The points are drawn with a seeded generator from the requests of one clean child run,
weighted towards the write phase (property batches, stage moves, task creates), where
claims and two-step moves live; a task create is always killed both before and after.
Two of the points go further: the restart is killed too, at its task lookup (the search
a restart makes before creating the task of a claim it takes over).

After the kill the child is reaped, so that its claims read as "owner gone", and the
sync runs again in this process. The end state must equal a clean run's: the same
contacts at MQL with the same lifecycle stage and lead status everywhere, one task per
MQL, a score for every live contact (in the store and in the CRM), no claim without a
task; and nothing left for a further run: the store's record of what was written is what
the CRM shows, and no write is marked unfinished.

The scoring batch is 20 contacts (six batches of the ~120 HubSpot contacts, run
concurrently), so that a kill lands between one batch's writes and another's.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import (
    SANDBOX_ENV,
    STRICT,
    hubspot_mqls,
    hubspot_tasks_by_contact,
    run_cli,
)

RANDOM_SEED = 20261130
POINTS = 20
BATCH_SIZE = "20"
MQLSYNC = Path(sys.executable).with_name("mqlsync")

TASK_CREATE = "POST /crm/v3/objects/tasks/batch/create"
TASK_SEARCH = "POST /crm/v3/objects/tasks/search"
# Endpoints of the write phase: where claims, stage moves and creates happen.
WRITES = (
    "POST /crm/v3/objects/contacts/batch/update",
    TASK_CREATE,
    TASK_SEARCH,
    "POST /crm/v3/objects/tasks",
    "PATCH /crm/v3/objects/contacts/{id}",
)
WRITE_WEIGHT = 6
# What the sync writes to each contact (mappings/hubspot.yaml `write_back`, as mqlsync_*).
WRITTEN_PROPERTIES = ("score", "fit", "engagement", "grade", "reasons", "model_version")


@dataclass(frozen=True)
class KillAt:
    """SIGKILL the sync when the `occurrence`-th request to `endpoint` arrives or is served."""

    endpoint: str  # the sandbox's endpoint label, e.g. "POST /crm/v3/objects/tasks/search"
    occurrence: int  # 1-based, counted over the child's run
    phase: str  # "before" | "after"

    def __str__(self) -> str:
        return f"{self.phase} {self.endpoint} #{self.occurrence}"


@dataclass
class Point:
    """One case: a kill of the first run, and optionally of the restart too."""

    kills: tuple[KillAt, ...]

    def __str__(self) -> str:
        return ", then in the restart ".join(str(k) for k in self.kills)


@dataclass
class Watcher:
    """The sandbox hook: records the requests and kills the child at the point."""

    point: KillAt | None = None
    pid: int | None = None
    fired: threading.Event = field(default_factory=threading.Event)
    seen: Counter[str] = field(default_factory=Counter)
    order: list[tuple[str, int]] = field(default_factory=list)  # (endpoint, occurrence)
    occurrence_of: dict[int, int] = field(default_factory=dict)  # request number -> k

    def __call__(self, method: str, path: str, number: int, phase: str) -> None:
        from sandbox.state import endpoint_label

        endpoint = endpoint_label(method, path)
        if phase == "before":
            self.seen[endpoint] += 1
            self.occurrence_of[number] = self.seen[endpoint]
            self.order.append((endpoint, self.seen[endpoint]))
        point = self.point
        if (
            point is not None
            and self.pid is not None
            and not self.fired.is_set()
            and (endpoint, self.occurrence_of.get(number), phase)
            == (point.endpoint, point.occurrence, point.phase)
        ):
            os.kill(self.pid, signal.SIGKILL)  # only the child this test started
            self.fired.set()


def child_env() -> dict[str, str]:
    """This process's environment (MQLSYNC_* aimed at the sandbox and store) and the
    session's Prefect API, so that the child starts no ephemeral API of its own."""
    import prefect.settings

    url = prefect.settings.PREFECT_API_URL.value()
    assert url, "no Prefect test API in this session"
    return {**os.environ, "PREFECT_API_URL": str(url)}


def run_child(sb: Any, watcher: Watcher, log: Path) -> int:
    """Run `mqlsync sync hubspot` in a child process under `watcher`; its exit code."""
    sb.sandbox.on_request = watcher
    try:
        with open(log, "w") as out:
            child = subprocess.Popen(
                [str(MQLSYNC), "sync", "hubspot"], env=child_env(), stdout=out, stderr=out
            )
            watcher.pid = child.pid
            try:
                # A bound on a hung child, not a time assertion: it exits or is killed.
                return child.wait(timeout=600)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
    finally:
        sb.sandbox.on_request = None


def end_state(sb: Any) -> dict[str, Any]:
    """What a run leaves in the sandbox and the store, in comparable form."""
    from sqlalchemy import select

    from flows import runtime
    from store.tables import HandoffRow, ScoreRow

    portal = sb.sandbox.portal
    live = [portal.contacts[i] for i in portal.live_ids]
    engine = runtime.store_engine()
    with engine.connect() as connection:
        scored = set(
            connection.execute(
                select(ScoreRow.crm_id).where(ScoreRow.crm == "hubspot")  # type: ignore[arg-type]
            ).scalars()
        )
        handoffs = connection.execute(
            select(HandoffRow.contact_id, HandoffRow.task_id).where(
                HandoffRow.crm == "hubspot"  # type: ignore[arg-type]
            )
        ).all()
    return {
        "mqls": hubspot_mqls(sb),
        "tasks": hubspot_tasks_by_contact(sb),
        "stages": {
            str(c.id): (
                portal.contact_value(c, "lifecyclestage"),
                portal.contact_value(c, "hs_lead_status"),
            )
            for c in live
        },
        "live": {str(c.id) for c in live},
        "scored_in_crm": {
            str(c.id) for c in live if portal.contact_value(c, "mqlsync_score") not in (None, "")
        },
        "scored_in_store": scored,
        "handoffs": handoffs,
    }


@dataclass
class Reference:
    state: dict[str, Any]
    requests: list[tuple[str, int]]  # the clean run's requests: (endpoint, occurrence)
    points: list[Point]


def choose_points(requests: list[tuple[str, int]]) -> list[Point]:
    """20 seeded points from a clean run's requests, most of them in the write phase.

    A task create is killed before and after its request; two points kill the restart at
    its task search as well (after a create of the first run, so that it has claims to
    finish). The rest are drawn without repeats, write requests weighted WRITE_WEIGHT:1.
    """
    rng = random.Random(RANDOM_SEED)
    # In a stable order: concurrent batches interleave differently from run to run, but
    # each endpoint's number of requests does not.
    requests = sorted(set(requests))
    creates = [r for r in requests if r[0] == TASK_CREATE]
    assert creates, "the clean run created no task: the points would prove nothing"
    chosen: list[Point] = []
    for phase in ("before", "after"):
        endpoint, k = rng.choice(creates)
        chosen.append(Point((KillAt(endpoint, k, phase),)))
    for phase in ("before", "after"):
        endpoint, k = rng.choice(creates)
        chosen.append(Point((KillAt(endpoint, k, "after"), KillAt(TASK_SEARCH, 1, phase))))
    candidates = [
        KillAt(endpoint, k, phase)
        for endpoint, k in requests
        for phase in ("before", "after")
        if KillAt(endpoint, k, phase) not in {p.kills[0] for p in chosen}
    ]
    weights = [WRITE_WEIGHT if c.endpoint in WRITES else 1 for c in candidates]
    while len(chosen) < POINTS:
        (pick,) = rng.choices(range(len(candidates)), weights)
        chosen.append(Point((candidates.pop(pick),)))
        weights.pop(pick)
    return chosen


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQLSYNC_BATCH_SIZE", BATCH_SIZE)


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, prefect_api: None, pinned_clock: datetime
) -> Iterator[Reference]:
    """One clean child run in a fresh sandbox of the same seed: its end state and requests."""
    from flows import runtime
    from flows.demo import point_settings_at
    from sandbox.testing import running_sandbox

    where = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as env:
        for name in SANDBOX_ENV:
            env.delenv(name, raising=False)
        env.setenv("MQLSYNC_BATCH_SIZE", BATCH_SIZE)
        env.setenv("MQLSYNC_TASK_RETRY_DELAY_S", "0")
        env.setenv("MQLSYNC_BACKOFF_BASE_S", "0.01")
        env.setenv("MQLSYNC_BACKOFF_MAX_S", "0.05")
        env.setenv("MQLSYNC_SETTLE_S", "0")
        env.setenv("MQLSYNC_TIMEOUT_S", "2")
        with running_sandbox(**STRICT) as sb:
            point_settings_at(sb, f"sqlite:///{where / 'store.db'}")
            watcher = Watcher()
            code = run_child(sb, watcher, where / "child.log")
            assert code == 0, (where / "child.log").read_text()[-3000:]
            state = end_state(sb)
        runtime.reset()
    runtime.reset()
    assert state["tasks"], "the clean run handed nobody off: the test would prove nothing"
    points = choose_points(watcher.order)
    print("crash points:", *(f"{i:02d}: {p}" for i, p in enumerate(points)), sep="\n  ")
    yield Reference(state, watcher.order, points)


def assert_like_clean_run(sb: Any, clean: dict[str, Any], point: Point) -> None:
    now = end_state(sb)
    where = f"killed {point}"
    assert now["mqls"] == clean["mqls"], where
    assert set(now["tasks"]) == set(clean["tasks"]), f"{where}: MQLs without a task or extra"
    doubled = {c: n for c, n in now["tasks"].items() if n > 1}
    assert not doubled, f"{where}: contacts with more than one handoff task: {doubled}"
    changed = {
        c: (clean["stages"][c], stage)
        for c, stage in now["stages"].items()
        if stage != clean["stages"].get(c)
    }
    assert not changed, f"{where}: (lifecycle stage, lead status) clean vs now: {changed}"
    assert now["live"] - now["scored_in_store"] == set(), f"{where}: contacts without a score"
    assert now["scored_in_crm"] == clean["scored_in_crm"], f"{where}: scores not written"
    stuck = [contact for contact, task in now["handoffs"] if task is None]
    assert not stuck, f"{where}: claims without a task: {stuck}"
    assert sorted(c for c, _ in now["handoffs"]) == sorted(now["tasks"]), where


@pytest.mark.parametrize("index", range(POINTS), ids=lambda i: f"point-{i:02d}")
def test_a_sync_killed_and_restarted_ends_as_a_clean_run(
    crm_env: Any, small_batches: None, reference: Reference, index: int, tmp_path: Path
) -> None:
    sb = crm_env
    point = reference.points[index]
    for attempt, kill in enumerate(point.kills):
        watcher = Watcher(point=kill)
        log = tmp_path / f"child-{attempt}.log"
        code = run_child(sb, watcher, log)
        assert watcher.fired.is_set(), (
            f"the run never reached {kill} (exit {code}); it made {dict(watcher.seen)}\n"
            + log.read_text()[-3000:]
        )
        assert code == -signal.SIGKILL, f"killed {point}: exit {code}"

    resumed = run_cli("sync", "hubspot")
    assert resumed.exit_code == 0, f"killed {point}; the restart says:\n{resumed.output}"
    assert_like_clean_run(sb, reference.state, point)

    # Nothing left over for the next run: the store's record of what the CRM shows is
    # what it shows (the next run diffs against it), and no write is marked unfinished.
    assert_store_matches_crm(sb, point)


def assert_store_matches_crm(sb: Any, point: Point) -> None:
    from sqlalchemy import select

    from flows import runtime
    from flows.claims import owner_gone
    from store.tables import ScoreRow

    portal = sb.sandbox.portal
    with runtime.store_engine().connect() as connection:
        rows = connection.execute(
            select(
                ScoreRow.crm_id, ScoreRow.written, ScoreRow.needs_write, ScoreRow.stage_intent,
                ScoreRow.writing_by,
            ).where(ScoreRow.crm == "hubspot")  # type: ignore[arg-type]
        ).all()  # fmt: skip
    # A write claim may outlive its killed owner (between recording its writes and
    # releasing them): harmless only because a gone owner's claim is free to take.
    unfinished = [
        (crm_id, needs_write, intent, writer)
        for crm_id, _, needs_write, intent, writer in rows
        if needs_write or intent is not None or (writer is not None and not owner_gone(writer))
    ]
    assert not unfinished, f"killed {point}: (id, needs write, stage intent, writer): {unfinished}"
    differs = {}
    for crm_id, written, *_ in rows:
        contact = portal.contacts[int(crm_id)]
        if contact.archived:
            continue
        shown = {key: portal.contact_value(contact, f"mqlsync_{key}") for key in WRITTEN_PROPERTIES}
        recorded = {key: written.get(key) for key in WRITTEN_PROPERTIES}
        recorded = {key: None if value == "" else value for key, value in recorded.items()}
        if shown != recorded:
            differs[crm_id] = (recorded, shown)
    assert not differs, f"killed {point}: written state (store, CRM) differs: {differs}"
