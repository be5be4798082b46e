"""Outcomes the CRMs date themselves, read by the connectors for backtests: the day
HubSpot stamped a contact SQL, the day a Salesforce lead was converted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.protocol import CrmConnector, Deletion
from scoring.records import Contact
from tests.connectors.conftest import make_connector


def _hidden_sql_dates(sb: Any, crm: str) -> dict[str, datetime]:
    """The admin API's SQL date of each person who became SQL before the data's as_of."""
    as_of = datetime.fromisoformat(sb.admin.info()["as_of"].replace("Z", "+00:00"))
    dates: dict[str, datetime] = {}
    for row in sb.admin.outcomes(crm):
        if row["sql_at"]:
            at = datetime.fromisoformat(
                row["sql_at"].replace("Z", "+00:00").replace("+0000", "+00:00")
            )
            if at < as_of:
                dates[str(row["id"])] = at
    return dates


def _contacts(connector: CrmConnector) -> list[Contact]:
    return [c for page in connector.pull_contacts(None) for c in page.records]


def test_hubspot_contacts_carry_the_day_they_became_sql(small_sandbox: Any) -> None:
    contacts = _contacts(make_connector("hubspot", small_sandbox))
    hidden = _hidden_sql_dates(small_sandbox, "hubspot")
    dated = {c.crm_id: c.accepted_at for c in contacts if c.accepted_at is not None}
    live_past = {
        crm_id: at for crm_id, at in hidden.items() if crm_id in {c.crm_id for c in contacts}
    }
    assert live_past, "the sandbox has people who became SQL before its as_of"
    assert dated == live_past
    # Those never at SQL have no date; the date is not a property rules could read.
    assert all(c.properties.get("accepted_at") is None for c in contacts)


def test_salesforce_conversions_are_dated_and_name_the_contact(small_sandbox: Any) -> None:
    connector = make_connector("salesforce", small_sandbox)
    converted: list[Deletion] = [
        d
        for page in connector.pull_deletions(None)
        for d in page.records
        if d.converted_to is not None
    ]
    assert converted, "the sandbox has leads converted before its as_of"
    hidden = _hidden_sql_dates(small_sandbox, "salesforce")
    for deletion in converted:
        # ConvertedDate is a date: the day of the person's SQL date.
        assert deletion.converted_at is not None
        assert deletion.converted_at.date() == hidden[deletion.crm_id].date()
