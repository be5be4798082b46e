"""How the sync and the rescore grow with the portal: the `mqlsync` command itself, run
against sandbox portals of several sizes (each served from its own process, so that the
figures are the client's), on a SQLite store.

For each size: a first sync (every contact pulled, scored and written), a second one
(it reads again what the first one's own writes touched), then the two measured runs:
- a sync with nothing new: its requests, which should not grow with the portal;
- a rescore of every stored contact: time per contact, which should stay flat.
Every run's peak resident memory (its process's high-water mark) is printed: with
everything streamed it should not grow with the portal either.

Each command's fixed cost (Prefect's ephemeral API starting, imports) is measured once
on an empty store and taken off before dividing by the contacts.

    .venv/bin/python bench/scaling.py [sizes...] [--seed 3]

Targets (the issue's): per-contact rescore time within 1.3x across sizes; peak memory
within 1.3x from the smallest size to the largest; the no-change sync's requests the same
at every size. Default sizes 10,000, 50,000 and 200,000 people (half are HubSpot's).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.run import SandboxHandle, sandbox_process  # noqa: E402

MQLSYNC = str(Path(sys.executable).parent / "mqlsync")
# Runs `mqlsync ...` and prints its peak resident memory (KiB) last on stderr.
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print('maxrss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@dataclass
class Run:
    code: int
    elapsed: float
    rss_mb: float
    requests: int


def _env(sb: SandboxHandle, store: Path, prefect_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MQLSYNC_HUBSPOT_HOST": sb.base_url,
            "MQLSYNC_HUBSPOT_TOKEN": sb.hubspot_token,
            "MQLSYNC_CA_FILE": sb.ca_file,
            "MQLSYNC_DATABASE_URL": f"sqlite:///{store}",
            # The sandbox's limits are off: the client's own cost is measured, not a
            # throttle's (the rate limits are bench/throughput.py's subject).
            "MQLSYNC_HUBSPOT_RATE_PER_S": "1000",
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    return env


def _run(sb: SandboxHandle, env: dict[str, str], *args: str) -> Run:
    sb.admin.reset()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, MQLSYNC, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    marks = [line for line in done.stderr.splitlines() if line.startswith("maxrss ")]
    rss = int(marks[-1].split()[1])
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-5:])
        print(f"  mqlsync {' '.join(args)} exited {done.returncode}:\n{tail}")
    requests = sum(sb.admin.stats()["requests"].values())
    return Run(done.returncode, elapsed, rss / 1024, requests)


def _stored_contacts(store: Path) -> int:
    with sqlite3.connect(store) as connection:
        return int(connection.execute("SELECT count(*) FROM contacts").fetchone()[0])


def main(sizes: list[int], seed: int) -> None:
    rows = []
    fixed: Run | None = None
    for people in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="mqlsync-scaling-") as tmp,
            sandbox_process(contacts=people, seed=seed, startup_timeout=900.0) as sb,
        ):
            sb.admin.set_limits(enabled=False)
            env = _env(sb, Path(tmp) / "store.db", Path(tmp) / "prefect")
            if fixed is None:
                fixed = _run(sb, env, "rescore", "hubspot")  # an empty store
                print(f"fixed cost of a command: {fixed.elapsed:.1f} s, {fixed.rss_mb:.0f} MB")
            first = _run(sb, env, "sync", "hubspot")
            second = _run(sb, env, "sync", "hubspot")
            unchanged = _run(sb, env, "sync", "hubspot")
            rescore = _run(sb, env, "rescore", "hubspot")
            contacts = _stored_contacts(Path(tmp) / "store.db")
            per_contact_ms = max(0.0, rescore.elapsed - fixed.elapsed) / contacts * 1000
            rows.append((people, contacts, first, second, unchanged, rescore, per_contact_ms))
            print(
                f"{people:,} people ({contacts:,} HubSpot contacts stored): first sync "
                f"{first.elapsed:.1f} s, {first.requests} requests, {first.rss_mb:.0f} MB; "
                f"second {second.elapsed:.1f} s, {second.requests} requests; nothing new "
                f"{unchanged.elapsed:.1f} s, {unchanged.requests} requests, "
                f"{unchanged.rss_mb:.0f} MB; rescore {rescore.elapsed:.1f} s "
                f"({per_contact_ms:.3f} ms a contact), {rescore.rss_mb:.0f} MB",
                flush=True,
            )
    if len(rows) < 2:
        return
    small, large = rows[0], rows[-1]
    print(
        f"from {small[0]:,} to {large[0]:,} people: rescore per contact "
        f"{large[6] / small[6]:.2f}x (target <= 1.3x); peak memory first sync "
        f"{large[2].rss_mb / small[2].rss_mb:.2f}x, nothing new "
        f"{large[4].rss_mb / small[4].rss_mb:.2f}x, rescore "
        f"{large[5].rss_mb / small[5].rss_mb:.2f}x (target <= 1.3x); nothing-new requests "
        f"{[r[4].requests for r in rows]} (target: the same at every size)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 50_000, 200_000])
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    main(args.sizes, args.seed)
