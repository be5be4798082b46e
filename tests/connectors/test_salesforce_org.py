"""What an org makes of the Salesforce mapping: optional fields left out, required ones
named, lead statuses taken from the org, the stage's field chosen."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.mapping import default_mapping
from connectors.salesforce_org import (
    Described,
    DescribeFn,
    LeadStatusRow,
    check_fields,
    choose_stage,
    choose_statuses,
    wanted_fields,
)
from scoring.records import Crm, LifecycleStage

MAPPING = default_mapping(Crm.SALESFORCE)
STOCK_STATUSES = [
    LeadStatusRow("Open - Not Contacted", "Open - Not Contacted", default=True),
    LeadStatusRow("Working - Contacted", "Working - Contacted"),
    LeadStatusRow("Closed - Converted", "Closed - Converted", converted=True),
    LeadStatusRow("Closed - Not Converted", "Closed - Not Converted"),
]
CONFIGURED_STATUSES = [
    *STOCK_STATUSES,
    *(LeadStatusRow(v, v) for v in ("Marketing Qualified", "Sales Qualified", "Recycled")),
    LeadStatusRow("Unqualified", "Unqualified"),
]
RELATIONS = {"Account": ("Account",), "Campaign": ("Campaign",)}


def org(*, without: Iterable[str] = (), extra: Iterable[str] = ()) -> DescribeFn:
    """A describe function for an org with every field the mapping names, less `without`."""
    read, written = wanted_fields(MAPPING)
    names: dict[str, set[str]] = {}
    for obj, fields in [*read.items(), *written.items()]:
        for name in fields:
            head, _, rest = name.partition(".")
            target = obj if not rest else head
            names.setdefault(target, set()).add(rest or head)
    for name in extra:
        obj, _, field = name.partition(".")
        names.setdefault(obj, set()).add(field)

    def describe(obj: str) -> Described:
        fields = {f for f in names.get(obj, set()) if f"{obj}.{f}" not in set(without)}
        return Described(
            fields=fields, relationships=RELATIONS, updateable=fields, createable=fields
        )

    return describe


def test_a_complete_org_needs_nothing() -> None:
    plan, problems = check_fields(MAPPING, org(extra={"Lead.Lifecycle_Stage__c"}))
    assert problems == [] and plan.absent == set() and plan.warnings == []


def test_a_missing_optional_field_is_left_out_with_one_warning() -> None:
    plan, problems = check_fields(MAPPING, org(without={"Task.Url__c"}))
    assert problems == []
    assert plan.absent == {("Task", "Url__c")}
    assert plan.warnings == ["Task.Url__c: not in this org (optional): left out of every query"]
    assert "Url__c" not in plan.present("Task", MAPPING.activity_fields("Task"))
    assert "Subject" in plan.present("Task", MAPPING.activity_fields("Task"))


def test_a_missing_written_field_stops_the_run_named() -> None:
    _, problems = check_fields(
        MAPPING,
        org(without={"Lead.MQL_Score__c", "Task.Handoff_Key__c"}),
    )
    assert problems == [
        "Lead.MQL_Score__c: no such field, or not visible to the integration user",
        "Task.Handoff_Key__c: no such field, or not visible to the integration user",
    ]


def test_a_field_the_user_may_not_edit_is_named() -> None:
    describe = org()

    def read_only(obj: str) -> Described:
        d = describe(obj)
        return Described(d.fields, d.relationships, d.updateable - {"Fit_Score__c"}, d.createable)

    _, problems = check_fields(MAPPING, read_only)
    assert problems == [
        "Lead.Fit_Score__c: the integration user may not have it updated: grant edit "
        "access to the field",
        "Contact.Fit_Score__c: the integration user may not have it updated: grant edit "
        "access to the field",
    ]


def test_lead_statuses_come_from_the_org() -> None:
    plan, _ = check_fields(MAPPING, org())
    choose_statuses(plan, STOCK_STATUSES)
    assert plan.status_values == {
        "new": "Open - Not Contacted",
        "working": "Working - Contacted",
        "rejected": "Closed - Not Converted",
        "converted": "Closed - Converted",
    }
    assert "LeadStatus has no 'Unqualified': rejected is 'Closed - Not Converted'" in plan.warnings
    assert any("(recycled)" in w and "never written" in w for w in plan.warnings)


def test_the_stage_goes_to_status_where_the_org_has_every_value() -> None:
    describe = org(extra={"Lead.Lifecycle_Stage__c"})
    plan, _ = check_fields(MAPPING, describe)
    choose_statuses(plan, CONFIGURED_STATUSES)
    assert choose_stage(plan, CONFIGURED_STATUSES, describe) == []
    assert plan.stage_to_status and plan.mapping.stage.field == "Status"


def test_the_stage_goes_to_the_fallback_field_where_statuses_are_missing() -> None:
    describe = org(extra={"Lead.Lifecycle_Stage__c"})
    plan, _ = check_fields(MAPPING, describe)
    assert choose_stage(plan, STOCK_STATUSES, describe) == []
    assert not plan.stage_to_status
    assert plan.mapping.stage.field == "Lifecycle_Stage__c"
    assert plan.mapping.stage.write[LifecycleStage.MQL] == "mql"
    assert plan.original_stage is not None and plan.original_stage.field == "Status"
    assert any("Lead.Lifecycle_Stage__c" in w for w in plan.warnings)


def test_without_statuses_or_fallback_field_the_run_stops_saying_what_to_do() -> None:
    describe = org()
    plan, _ = check_fields(MAPPING, describe)
    problems = choose_stage(plan, STOCK_STATUSES, describe)
    assert problems == [
        "LeadStatus has no 'Marketing Qualified' (mql), 'Sales Qualified' (sql): add them to "
        "Lead Status in Setup, or let the stage go to Lead.Lifecycle_Stage__c (run `mqlsync "
        "crm-setup salesforce`, which creates it)"
    ]
