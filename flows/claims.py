"""Who holds a claim: leases, and owners known gone.

A claim (a handoff's, or a contact's write claim) names its owner as "host:pid". A claim
of a process on this machine that has ended, or older than the lease, is work left undone
that any run may take over; any other is in hand.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

# A claim younger than this belongs to a run that may still be creating its task; only an
# older one is taken over and finished (the CRM is asked first).
CLAIM_LEASE = timedelta(minutes=15)


def held_elsewhere(me: str, now: datetime) -> Callable[[str | None, datetime | None], bool]:
    """Whether a claim (owner, since) is another live run's to finish, seen from `me`.

    A claim of nobody, of `me`, of a process known gone, or older than the lease is
    work left undone; any other is in hand, and the run holding it reports on it.
    """

    def held(owner: str | None, since: datetime | None) -> bool:
        return (
            owner is not None
            and owner != me
            and since is not None
            and since >= now - CLAIM_LEASE
            and not owner_gone(owner)
        )

    return held


def owner_gone(owner: str) -> bool:
    """True when a claim's owner ("host:pid") is a process of this machine that has ended.

    An owner on another machine cannot be checked from here: its claims wait for the
    lease. A pid reused by another process reads as alive, so the error is to wait.
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
