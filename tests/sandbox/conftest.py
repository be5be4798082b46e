"""One sandbox for the whole sandbox test session: starting one costs ~0.3 s, and the
tests that need special limits or faults start their own or reset what they change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.testing import SandboxHandle, running_sandbox

# Big enough that paging takes several pages everywhere, small enough to start quickly.
CONTACTS = 1200
SEED = 11


@pytest.fixture(scope="session")
def sb() -> Iterator[SandboxHandle]:
    # Rate limits are raised here so that paging tests are not throttled; the limit
    # tests set small ones explicitly.
    with running_sandbox(
        contacts=CONTACTS, seed=SEED, hubspot_per_10s=100_000, hubspot_search_per_s=100_000
    ) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _no_faults(sb: SandboxHandle) -> Iterator[None]:
    yield
    sb.admin.clear_faults()
