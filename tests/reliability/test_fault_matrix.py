"""The fault matrix: every fault kind the sandbox can inject, on each operation of each
CRM, at two rates; a faulted sync, then a repair run with no faults.

For every combination the repair run must leave the CRM exactly as one clean run leaves a
fresh sandbox of the same seed (the same contacts at MQL, one handoff task per MQL, the
same score fields), and the faulted run must have told the truth: exit 0 only if nothing
is left, else a non-zero exit and a text that says how much is pending; every failure
that outlived its retries is a "failed" audit row and is counted in the summary's
"failed attempts" line. A pull refused for good (a HubSpot private-app token's 401) fails
the run before anything is written, and says so.

The list of combinations is generated from what the sandbox supports (no 429 on
Salesforce, `concurrent`, Salesforce's concurrent-request limit, only there, `partial`
only on batch paths, `lost_write` only on writes), never skipped.
Cost: each faulted+repair pair is two Prefect flow runs (~5-6 s on the 2-core machine),
so the slow kinds get one rate, to keep the file near 7 minutes: `slow` at 10% (every hit
costs a 2 s client timeout, MQLSYNC_TIMEOUT_S from the `fast_retries` fixture), `429` at
30% (with Retry-After every hit waits 1 s), `expired` at 30% (a HubSpot private-app token
is refused at the first hit whatever the rate; a Salesforce hit costs a session refresh),
`concurrent` at 30%.
Every other kind runs at 10% and 30%.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.reliability.conftest import run_cli

SF = "/services/data/v59.0"
SCORE_FIELDS = {
    "hubspot": ("mqlsync_score", "mqlsync_fit", "mqlsync_engagement", "mqlsync_grade"),
    "salesforce": ("MQL_Score__c", "Fit_Score__c", "Engagement_Score__c", "Score_Grade__c"),
}
# The fault rules' targets: each operation's paths (and method where two share a path).
OPERATIONS: dict[str, dict[str, list[dict[str, str]]]] = {
    "hubspot": {
        "pull": [{"path": "/crm/v3/objects/contacts/search"}, {"path": "/events/v3/events"}],
        "update": [{"path": "/crm/v3/objects/contacts/batch/update"}],
        "create": [{"path": "/crm/v3/objects/tasks/batch/create"}],
    },
    "salesforce": {
        # `/query` also prefixes `/queryAll` (deletions) and the `/query/{locator}` pages.
        "pull": [{"path": f"{SF}/query"}],
        "update": [{"path": f"{SF}/composite/sobjects", "method": "PATCH"}],
        "create": [{"path": f"{SF}/composite/sobjects", "method": "POST"}],
    },
}
RATES = (0.1, 0.3)
# The slow kinds: one rate each keeps the file near 7 minutes (see the module docstring).
ONE_RATE = {"slow": (0.1,), "429": (0.3,), "expired": (0.3,), "concurrent": (0.3,)}
SLOW_SECONDS = 2.5  # above MQLSYNC_TIMEOUT_S=2 (the fast_retries fixture)
BATCH_OPS = {"update", "create"}  # batch endpoints on both CRMs
WRITE_OPS = {"update", "create"}
PULL_FAILED = "failed, nothing scored; cursors kept"  # flows/sync.py's message


@dataclass(frozen=True)
class Case:
    crm: str
    kind: str  # a sandbox.faults.KINDS value
    variant: str  # "429-retry-after" / "429-no-retry-after", else the kind
    op: str
    rate: float

    @property
    def id(self) -> str:
        return f"{self.crm}-{self.variant}-{self.op}-{round(self.rate * 100)}%"

    def rules(self) -> list[dict[str, Any]]:
        extra: dict[str, Any] = {"crm": self.crm}
        if self.kind == "slow":
            extra["seconds"] = SLOW_SECONDS
        if self.variant == "429-no-retry-after":
            extra["retry_after"] = None
        return [
            {"kind": self.kind, "rate": self.rate, **target, **extra}
            for target in OPERATIONS[self.crm][self.op]
        ]


def supported(crm: str, kind: str, op: str) -> bool:
    """Combinations the sandbox can inject (see sandbox/faults.py `Faults.pick`)."""
    if kind == "429":
        return crm == "hubspot"
    if kind == "concurrent":
        return crm == "salesforce"  # Salesforce's concurrent-request REQUEST_LIMIT_EXCEEDED
    if kind == "partial":
        return op in BATCH_OPS
    if kind == "lost_write":
        return op in WRITE_OPS
    return True


def matrix() -> list[Case]:
    from sandbox.faults import KINDS

    cases = []
    for crm, ops in OPERATIONS.items():
        for kind in KINDS:
            variants = ["429-retry-after", "429-no-retry-after"] if kind == "429" else [kind]
            for variant in variants:
                for op in ops:
                    if not supported(crm, kind, op):
                        continue
                    for rate in ONE_RATE.get(kind, RATES):
                        cases.append(Case(crm, kind, variant, op, rate))
    return cases


CASES = matrix()


def crm_state(sb: Any, crm: str) -> dict[str, tuple[Any, ...]]:
    """Per contact: its stage (HubSpot lifecyclestage / Salesforce Lead Status) and the
    score fields this service writes, read from the sandbox's in-process state."""
    names = SCORE_FIELDS[crm]
    if crm == "hubspot":
        portal = sb.sandbox.portal
        return {
            str(c.id): tuple(portal.contact_value(c, n) for n in ("lifecyclestage", *names))
            for c in portal.contacts.values()
        }
    org = sb.sandbox.org
    state = {}
    for rec in list(org.people.values()):
        fields = [*names, *(["Status"] if rec.sobject == "Lead" else [])]
        row = org.render(rec.sobject, rec, ["Id", *fields])
        state[str(row["Id"])] = (row.get("Status"), *(row[n] for n in names))
    return state


def tasks_by_contact(sb: Any, crm: str) -> Counter[str]:
    if crm == "hubspot":
        return Counter(
            link["id"]
            for task in sb.admin.hubspot_tasks()
            for link in task.get("associations", {}).get("contacts", {}).get("results", [])
        )
    return Counter(str(task["WhoId"]) for task in sb.admin.salesforce_tasks())


def mqls(state: dict[str, tuple[Any, ...]], crm: str) -> set[str]:
    at_mql = "marketingqualifiedlead" if crm == "hubspot" else "Marketing Qualified"
    return {cid for cid, values in state.items() if values[0] == at_mql}


@dataclass
class Reference:
    """What one clean sync leaves in a fresh sandbox of the same seed."""

    state: dict[str, tuple[Any, ...]]
    tasks: Counter[str]
    requests: dict[str, int] = field(default_factory=dict)  # per "METHOD /path"

    @property
    def endpoints(self) -> set[str]:
        return {endpoint for endpoint, n in self.requests.items() if n}


@pytest.fixture(scope="module")
def clean(
    tmp_path_factory: pytest.TempPathFactory, prefect_api: None, pinned_clock: datetime
) -> dict[str, Reference]:
    import os

    from flows import runtime
    from flows.demo import point_settings_at
    from sandbox.testing import running_sandbox
    from tests.reliability.conftest import SANDBOX_ENV, STRICT

    saved = {name: os.environ.get(name) for name in SANDBOX_ENV}
    references = {}
    for crm in OPERATIONS:
        with running_sandbox(**STRICT) as sb:
            point_settings_at(sb, f"sqlite:///{tmp_path_factory.mktemp('clean') / 'store.db'}")
            run = run_cli("sync", crm)
            assert run.exit_code == 0, run.output
            references[crm] = Reference(
                crm_state(sb, crm),
                tasks_by_contact(sb, crm),
                dict(sb.admin.stats()["requests"]),
            )
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    runtime.reset()
    return references


def failed_audit_rows() -> list[Any]:
    from sqlalchemy import select

    from flows import runtime
    from store.tables import AuditRow

    with runtime.store_engine().connect() as connection:
        return list(
            connection.execute(
                select(AuditRow.action, AuditRow.message).where(
                    AuditRow.outcome == "failed"  # type: ignore[arg-type]
                )
            ).all()
        )


def counted_failures(text: str) -> int | None:
    found = re.search(r"failed attempts, every retry counted: (\d+)", text)
    return int(found.group(1)) if found else None


def pending_counts(text: str) -> tuple[int, int]:
    handoffs = re.search(r"(\d+) handoff\(s\) pending", text)
    writes = re.search(r"(\d+) contact\(s\) with writes not done", text)
    return (int(handoffs.group(1)) if handoffs else 0, int(writes.group(1)) if writes else 0)


def assert_like_clean_run(sb: Any, crm: str, reference: Reference) -> None:
    state = crm_state(sb, crm)
    tasks = tasks_by_contact(sb, crm)
    assert mqls(state, crm) == mqls(reference.state, crm)
    assert set(tasks) == set(reference.tasks), "a handoff task is missing or extra"
    assert max(tasks.values()) == 1, f"doubled handoffs: {[c for c, n in tasks.items() if n > 1]}"
    assert state == reference.state


def test_the_clean_runs_use_every_faulted_path_and_hand_mqls_off(
    clean: dict[str, Reference],
) -> None:
    for crm, reference in clean.items():
        assert reference.tasks and mqls(reference.state, crm), f"{crm}: no MQL, proves nothing"
        # Some contacts are at MQL in the seed data already; only promotions hand off.
        assert set(reference.tasks) <= mqls(reference.state, crm)
        for op, targets in OPERATIONS[crm].items():
            for target in targets:
                used = [
                    e
                    for e in reference.endpoints
                    if e.split(" ", 1)[1].startswith(target["path"])
                    and e.split(" ", 1)[0] == target.get("method", e.split(" ", 1)[0])
                ]
                assert used, f"{crm} {op}: a clean run never calls {target}: {reference.endpoints}"


def test_the_matrix_covers_every_fault_kind() -> None:
    from sandbox.faults import KINDS

    kinds = Counter(c.variant for c in CASES)
    by_crm = Counter(c.crm for c in CASES)
    ops = Counter(f"{c.crm}:{c.op}" for c in CASES)
    rates = Counter(f"{round(c.rate * 100)}%" for c in CASES)
    summary = (
        f"{len(CASES)} faulted+repair pairs; by CRM {dict(by_crm)}; by kind {dict(kinds)}; "
        f"by operation {dict(ops)}; by rate {dict(rates)}"
    )
    assert {c.kind for c in CASES} == set(KINDS), summary
    assert {c.kind for c in CASES if c.crm == "salesforce"} == set(KINDS) - {"429"}, summary
    assert {c.kind for c in CASES if c.crm == "hubspot"} == set(KINDS) - {"concurrent"}, summary
    assert len({c.id for c in CASES}) == len(CASES), summary
    assert len(CASES) == 85, summary


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_faulted_sync_tells_the_truth_and_a_repair_run_ends_like_a_clean_one(
    crm_env: Any, clean: dict[str, Reference], case: Case
) -> None:
    sb = crm_env
    reference = clean[case.crm]
    before = (crm_state(sb, case.crm), tasks_by_contact(sb, case.crm))
    sb.admin.set_faults(case.rules(), seed=11)
    faulted = run_cli("sync", case.crm)
    sb.admin.clear_faults()
    assert "Traceback" not in faulted.output, faulted.output

    if PULL_FAILED in faulted.output:
        # Only a refusal for good may end a pull: a private-app token's 401 (it has no
        # renewal); every other fault is retried until the pull succeeds. It ends the run
        # before anything is scored: nothing written, nothing pending, no cursor moved, and
        # the run fails saying so.
        assert case.crm == "hubspot" and case.kind == "expired", faulted.output
        assert faulted.exit_code != 0, faulted.output
        assert failed_audit_rows() == [], faulted.output
        assert (crm_state(sb, case.crm), tasks_by_contact(sb, case.crm)) == before
    else:
        assert_told_the_truth(sb, case, reference, faulted)

    repair = run_cli("sync", case.crm)
    assert repair.exit_code == 0, repair.output
    assert_like_clean_run(sb, case.crm, reference)


def assert_told_the_truth(sb: Any, case: Case, reference: Reference, faulted: Any) -> None:
    # Every failure that outlived its retries is a failed audit row, counted in the text.
    failures = failed_audit_rows()
    counted = counted_failures(faulted.output)
    assert counted == len(failures), (faulted.output, failures)

    state = crm_state(sb, case.crm)
    tasks = tasks_by_contact(sb, case.crm)
    assert not tasks or max(tasks.values()) == 1, "a faulted run doubled a handoff"
    finished = state == reference.state and tasks == reference.tasks
    handoffs, writes = pending_counts(faulted.output)
    if faulted.exit_code == 0:
        assert finished, f"exit 0 but the CRM is not as a clean run leaves it: {faulted.output}"
        assert failures == [], faulted.output
    else:
        assert handoffs + writes > 0, faulted.output
        assert "next run" in faulted.output, faulted.output
        # MQLs already moved in the CRM but without their task are pending handoffs.
        without_task = mqls(state, case.crm) - set(tasks)
        assert handoffs >= len(without_task), faulted.output
    if not finished:
        assert faulted.exit_code != 0, faulted.output


def test_a_stage_move_accepted_but_not_read_back_keeps_its_handoff(
    crm_env: Any, clean: dict[str, Reference]
) -> None:
    """HubSpot accepts the MQL moves, then every read-back of them fails: the moves may
    have landed, so their handoffs must stay claimed (not released, which would leave a
    contact at MQL that no later run hands off); the repair run finishes them."""
    from sandbox.faults import FaultRule

    sb = crm_env
    armed: list[bool] = []

    def after_first_write(method: str, path: str, n: int, phase: str) -> None:
        if not armed and phase == "after" and path.endswith("/contacts/batch/update"):
            armed.append(True)
            sb.sandbox.faults.set([FaultRule(
                "500", count=10_000, crm="hubspot", path="/crm/v3/objects/contacts/batch/read"
            )])  # fmt: skip

    sb.sandbox.on_request = after_first_write
    try:
        faulted = run_cli("sync", "hubspot")
    finally:
        sb.sandbox.on_request = None
        sb.admin.clear_faults()
    assert armed, "no contact write happened: nothing was tested"
    assert faulted.exit_code != 0, faulted.output
    assert "not confirmed" in faulted.output or "handoff(s) pending" in faulted.output
    assert tasks_by_contact(sb, "hubspot") != clean["hubspot"].tasks, "nothing was cut off"

    repair = run_cli("sync", "hubspot")
    assert repair.exit_code == 0, repair.output
    assert_like_clean_run(sb, "hubspot", clean["hubspot"])
