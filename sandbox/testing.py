"""The sandbox as the tests use it.

The entry point lives in `sandbox.run` (start a sandbox, reach it through a
`SandboxHandle` and its admin API); it is re-exported here so that the tests'
`from sandbox.testing import running_sandbox, SandboxHandle, ...` keeps working. Code
outside the tests imports `sandbox.run`. Test-only helpers belong in this module.
"""

from __future__ import annotations

from sandbox.run import (
    AdminClient,
    SandboxHandle,
    running_sandbox,
    sandbox_process,
    trusting_session,
)

__all__ = [
    "AdminClient",
    "SandboxHandle",
    "running_sandbox",
    "sandbox_process",
    "trusting_session",
]
