"""The main job on the embedded default: sandbox CRM on loopback, SQLite, ephemeral Prefect.

Starts the sandbox, runs `sync` for HubSpot and for Salesforce, prints the MQLs found, the
tasks created and the API calls used. Then a month passes in the sandbox, in which sales
works the tasks (accepting or rejecting each MQL) and people keep engaging; a second
`sync` reads sales' verdicts, and the demo prints the funnel and the default model judged
on the history next to its calibrated version. It stops everything it started.

Every run decides as of the sandbox's clock (`MQLSYNC_FIXED_NOW`), so the month is
simulated, not waited for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.settings import PROJECT_ROOT
from flows.tables import render_table

ENV_FOR_SANDBOX = (
    "MQLSYNC_HUBSPOT_HOST",
    "MQLSYNC_HUBSPOT_TOKEN",
    "MQLSYNC_SALESFORCE_INSTANCE_URL",
    "MQLSYNC_SALESFORCE_CLIENT_ID",
    "MQLSYNC_SALESFORCE_CLIENT_SECRET",
    "MQLSYNC_SALESFORCE_SESSION_ID",
    "MQLSYNC_CA_FILE",
    "MQLSYNC_DATABASE_URL",
)


def point_settings_at(handle: Any, database_url: str) -> None:
    """Aim the `MQLSYNC_*` settings at a running sandbox and a store."""
    os.environ.update(
        {
            "MQLSYNC_HUBSPOT_HOST": handle.base_url,
            "MQLSYNC_HUBSPOT_TOKEN": handle.hubspot_token,
            "MQLSYNC_SALESFORCE_INSTANCE_URL": handle.base_url,
            "MQLSYNC_SALESFORCE_CLIENT_ID": handle.salesforce_client_id,
            "MQLSYNC_SALESFORCE_CLIENT_SECRET": handle.salesforce_client_secret,
            "MQLSYNC_SALESFORCE_SESSION_ID": handle.salesforce_session_id,
            "MQLSYNC_CA_FILE": handle.ca_file,
            "MQLSYNC_DATABASE_URL": database_url,
        }
    )
    from flows import runtime

    runtime.reset()


def run_demo(contacts: int, seed: int, echo: Callable[[str], None] = print) -> int:
    """Run the demo; returns the number of MQLs found across both CRMs."""
    data_dir = PROJECT_ROOT / "var"
    data_dir.mkdir(exist_ok=True)
    # Prefect keeps its ephemeral API's database here, not in the user's home.
    os.environ.setdefault("PREFECT_HOME", str(data_dir / "prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    store = data_dir / "demo.db"
    for leftover in data_dir.glob("demo.db*"):
        leftover.unlink()

    from sandbox.run import running_sandbox

    echo(f"starting the sandbox CRM with {contacts:,} contacts (seed {seed})...")
    with running_sandbox(contacts=contacts, seed=seed) as handle:
        point_settings_at(handle, f"sqlite:///{store}")
        sync_both(handle, echo)
        stats = handle.admin.stats()
        mqls = print_results(Path(store), handle, stats, echo)
        echo("")
        echo(f"{MONTH_DAYS} days pass in the sandbox: sales works the tasks, people engage...")
        from flows import runtime

        first_sync = runtime.now()
        echo(describe_month(handle.admin.advance(MONTH_DAYS)))
        sync_both(handle, echo)
        from flows.demo_loop import print_funnel, print_model_check

        print_funnel(echo)
        print_model_check(echo, split_at=first_sync)
    echo("sandbox stopped")
    return mqls


MONTH_DAYS = 30


def sync_both(handle: Any, echo: Callable[[str], None]) -> None:
    """Sync HubSpot, then Salesforce, deciding as of the sandbox's clock."""
    as_of = handle.admin.info()["as_of"]
    os.environ["MQLSYNC_FIXED_NOW"] = as_of
    from flows import runtime
    from flows.sync import CrmName, sync

    runtime.reset()
    for crm in CrmName:
        started = time.perf_counter()
        echo(f"sync {crm.value} as of {as_of}...")
        sync(crm=crm)
        echo(f"  done in {time.perf_counter() - started:.1f} s")


def describe_month(step: dict[str, Any]) -> str:
    """What the sandbox's month did, in one paragraph."""
    return (
        f"  now {step['as_of']}: sales worked {step['tasks_worked']} tasks "
        f"({step['accepted']} accepted as SQL, {step['rejected']} rejected); "
        f"{step['accepted_without_task']} more became SQL without a task; "
        f"{step['activities']:,} new activities"
    )


def print_results(
    store: Path, handle: Any, stats: dict[str, Any], echo: Callable[[str], None]
) -> int:
    from flows import runtime
    from store.reports import handed_off

    rows = handed_off(runtime.store_engine())
    table = [
        [r["crm"], r["crm_id"], f"{r['first_name'] or ''} {r['last_name'] or ''}".strip(),
         r["company"] or "", f"{r['total']:g}", r["grade"], r["task_id"] or "(pending)"]
        for r in rows
    ]  # fmt: skip
    echo("")
    echo(f"MQLs found and handed to sales: {len(rows)}")
    echo(render_table(["crm", "id", "name", "company", "score", "grade", "task"], table[:25]))
    if len(table) > 25:
        echo(f"... and {len(table) - 25} more")
    tasks = {
        "hubspot": len(handle.admin.hubspot_tasks()),
        "salesforce": len(handle.admin.salesforce_tasks()),
    }
    echo("")
    echo(f"tasks in the CRMs: HubSpot {tasks['hubspot']}, Salesforce {tasks['salesforce']}")
    requests = stats.get("requests", {})
    by_crm = {"hubspot": 0, "salesforce": 0}
    for endpoint, count in requests.items():
        if "/_sandbox" in endpoint:
            continue
        by_crm["salesforce" if "/services/" in endpoint else "hubspot"] += count
    echo(f"API calls used: HubSpot {by_crm['hubspot']}, Salesforce {by_crm['salesforce']}")
    echo(render_table(["endpoint", "calls"], sorted(
        ([k, str(v)] for k, v in requests.items() if "/_sandbox" not in k),
        key=lambda row: -int(row[1]),
    )))  # fmt: skip
    return len(rows)
