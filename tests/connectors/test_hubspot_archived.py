"""HubSpot's archived contacts: a list with no filter and no sort, read whole at most
once per `archive_scan_hours`, with the cursor at the moment the last whole read began."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.connectors.conftest import make_connector

LIST = "GET /crm/v3/objects/contacts"


def _list_reads(sb: Any) -> int:
    return int(sb.admin.stats()["requests"].get(LIST, 0))


def test_the_archived_list_is_read_whole_once_then_not_again_within_a_day(
    small_sandbox: Any,
) -> None:
    sb = small_sandbox
    connector = make_connector("hubspot", sb)
    expected = set(sb.admin.expected("hubspot")["archived_contacts"])
    assert expected, "the sandbox has no archived contact: the test proves nothing"

    sb.admin.reset()
    before = datetime.now(UTC)
    first = list(connector.pull_deletions(None))
    assert {d.crm_id for page in first for d in page.records} == expected
    cursor = first[-1].cursor
    assert cursor is not None and before <= cursor <= datetime.now(UTC)
    assert _list_reads(sb) >= 1

    sb.admin.reset()
    again = list(connector.pull_deletions(cursor))
    assert [p.records for p in again] == [[]] and again[-1].cursor == cursor
    assert _list_reads(sb) == 0, "read whole again within the day"

    # A day later it is read whole again; archives older than the cursor are not news.
    sb.admin.reset()
    day_old = datetime.now(UTC) - timedelta(hours=25)
    later = list(connector.pull_deletions(day_old))
    assert _list_reads(sb) >= 1
    assert later[-1].cursor is not None and later[-1].cursor > day_old
    assert all(
        d.deleted_at is None or d.deleted_at >= day_old - timedelta(hours=1)
        for page in later
        for d in page.records
    )
