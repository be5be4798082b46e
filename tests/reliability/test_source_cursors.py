"""A HubSpot activity source refused for a while (a scope not granted yet) keeps its own
cursor: once granted, the next sync reads what it missed, while the other sources and
the shared cursor moved on in between."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.reliability.conftest import run_cli

EMAIL_TYPES = ("email_open", "email_click", "email_bounce", "email_unsubscribe")


def _email_activities() -> set[str]:
    from flows import runtime
    from store.tables import ActivityRow

    with runtime.store_engine().connect() as connection:
        return set(
            connection.execute(
                select(ActivityRow.crm_id).where(
                    ActivityRow.crm == "hubspot",
                    ActivityRow.type.in_(EMAIL_TYPES),  # type: ignore[attr-defined]
                )
            ).scalars()
        )


def test_a_source_refused_then_granted_reads_what_it_missed(crm_env: Any) -> None:
    from sandbox.auth import HUBSPOT_PRODUCT_SCOPES

    sb = crm_env
    # The app was installed without `content`: no marketing email events.
    sb.admin.set_hubspot_scopes(sorted(HUBSPOT_PRODUCT_SCOPES - {"content"}))
    first = run_cli("sync", "hubspot")
    assert first.exit_code == 0, first.output
    assert _email_activities() == set()

    second = run_cli("sync", "hubspot")  # the shared cursor moves on, still refused
    assert second.exit_code == 0, second.output

    sb.admin.set_hubspot_scopes(sorted(HUBSPOT_PRODUCT_SCOPES))
    granted = run_cli("sync", "hubspot")
    assert granted.exit_code == 0, granted.output
    read = _email_activities()

    # What a portal that had the scope all along holds, over the same first-pull window.
    from sandbox.testing import running_sandbox
    from tests.connectors.conftest import make_connector
    from tests.reliability.conftest import STRICT

    with running_sandbox(**STRICT) as fresh:
        reference = {
            a.crm_id
            for page in make_connector("hubspot", fresh).pull_activities(None)
            for a in page.records
            if a.type.value in EMAIL_TYPES
        }
    assert reference, "the sandbox has no email events: the test proves nothing"
    assert read == reference
