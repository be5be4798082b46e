"""Several `mqlsync sync` started together on one machine with no Prefect server: each
waits its turn on the ephemeral API instead of timing out on it, and all of them succeed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.reliability.conftest import SANDBOX_ENV, hubspot_tasks_by_contact

RUNS = 3


def test_concurrent_syncs_on_the_ephemeral_api_all_finish(crm_env: Any, tmp_path: Path) -> None:
    sb = crm_env
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({name: os.environ[name] for name in SANDBOX_ENV if name in os.environ})
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),  # fresh: the first start runs migrations
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    mqlsync = Path(sys.executable).with_name("mqlsync")
    procs = [
        subprocess.Popen(
            [str(mqlsync), "sync", "hubspot"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(RUNS)
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    codes = [proc.returncode for proc in procs]
    assert codes == [0] * RUNS, "\n----\n".join(outputs)
    assert not any("Timed out while attempting to connect" in out for out in outputs)
    tasks = hubspot_tasks_by_contact(sb)
    assert tasks and set(tasks.values()) == {1}
