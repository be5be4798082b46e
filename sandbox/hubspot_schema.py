"""The HubSpot portal's property definitions (contacts, tasks, meetings) and the
lifecycle stage order, as `GET /crm/v3/properties/{objectType}` reports them."""

from __future__ import annotations

from typing import Any, NamedTuple


class PropertyDef(NamedTuple):
    name: str
    label: str
    type: str  # string | number | datetime | date | enumeration | bool
    field_type: str  # text | number | date | select | textarea | booleancheckbox
    options: tuple[str, ...] = ()
    custom: bool = False
    read_only: bool = False
    # Set by a properties-API create; the built-in definitions keep the defaults.
    group: str = ""
    unique: bool = False
    description: str = ""


LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
LIFECYCLE_RANK = {s: i for i, s in enumerate(LIFECYCLE_STAGES)}
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)

# HubSpot stamps the first time a contact enters each lifecycle stage in one of these
# ("Became a ... Date"): calculated, read-only datetimes.
LIFECYCLE_DATE_PROPERTY = {stage: f"hs_lifecyclestage_{stage}_date" for stage in LIFECYCLE_STAGES}
_LIFECYCLE_DATE_LABELS = {
    "subscriber": "Became a Subscriber Date",
    "lead": "Became a Lead Date",
    "marketingqualifiedlead": "Became a Marketing Qualified Lead Date",
    "salesqualifiedlead": "Became a Sales Qualified Lead Date",
    "opportunity": "Became an Opportunity Date",
    "customer": "Became a Customer Date",
    "evangelist": "Became an Evangelist Date",
    "other": "Became an Other Lifecycle Date",
}
LIFECYCLE_DATE_PROPERTIES = tuple(
    PropertyDef(LIFECYCLE_DATE_PROPERTY[stage], label, "datetime", "date", read_only=True)
    for stage, label in _LIFECYCLE_DATE_LABELS.items()
)

ROLLUP_PROPERTIES = (
    PropertyDef("hs_analytics_num_page_views", "Number of Pageviews", "number", "number",
                read_only=True),
    PropertyDef("hs_analytics_num_visits", "Number of Sessions", "number", "number",
                read_only=True),
    PropertyDef("hs_analytics_last_visit_timestamp", "Time of Last Session", "datetime", "date",
                read_only=True),
    PropertyDef("hs_email_open", "Marketing emails opened", "number", "number", read_only=True),
    PropertyDef("hs_email_click", "Marketing emails clicked", "number", "number",
                read_only=True),
    PropertyDef("hs_email_last_open_date", "Last marketing email open date", "datetime", "date",
                read_only=True),
    PropertyDef("hs_email_last_click_date", "Last marketing email click date", "datetime",
                "date", read_only=True),
)  # fmt: skip

CONTACT_PROPERTIES: dict[str, PropertyDef] = {
    p.name: p
    for p in (
        PropertyDef("email", "Email", "string", "text"),
        PropertyDef("firstname", "First Name", "string", "text"),
        PropertyDef("lastname", "Last Name", "string", "text"),
        PropertyDef("jobtitle", "Job Title", "string", "text"),
        PropertyDef("company", "Company Name", "string", "text"),
        PropertyDef("numemployees", "Number of Employees", "number", "number"),
        PropertyDef("industry", "Industry", "string", "text"),
        PropertyDef("country", "Country/Region", "string", "text"),
        PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", LIFECYCLE_STAGES),
        PropertyDef("hs_lead_status", "Lead Status", "enumeration", "radio", LEAD_STATUSES),
        PropertyDef("hubspot_owner_id", "Contact owner", "enumeration", "select"),
        PropertyDef("createdate", "Create Date", "datetime", "date", read_only=True),
        PropertyDef("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only=True),
        PropertyDef("hs_object_id", "Record ID", "number", "number", read_only=True),
        # Rollups HubSpot keeps on every portal, whatever the tier (calculated, read-only).
        *ROLLUP_PROPERTIES,
        *LIFECYCLE_DATE_PROPERTIES,
        PropertyDef(
            "business_license_number", "Business license number", "string", "text", custom=True
        ),
        PropertyDef("real_estate_license", "Real estate license", "string", "text", custom=True),
        PropertyDef("mqlsync_score", "MQL score", "number", "number", custom=True),
        PropertyDef("mqlsync_fit", "Fit score", "number", "number", custom=True),
        PropertyDef("mqlsync_engagement", "Engagement score", "number", "number", custom=True),
        PropertyDef("mqlsync_grade", "Score grade", "string", "text", custom=True),
        PropertyDef("mqlsync_reasons", "Score reasons", "string", "textarea", custom=True),
        PropertyDef("mqlsync_model_version", "Score model version", "string", "text", custom=True),
    )
}
DEFAULT_CONTACT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)

# What every CRM object but a contact (whose names differ) carries, read-only; a read
# that names no properties returns these.
OBJECT_METADATA = (
    PropertyDef("hs_createdate", "Create date", "datetime", "date", read_only=True),
    PropertyDef("hs_lastmodifieddate", "Last modified date", "datetime", "date", read_only=True),
    PropertyDef("hs_object_id", "Record ID", "number", "number", read_only=True),
)
DEFAULT_PROPERTIES = tuple(p.name for p in OBJECT_METADATA)

TASK_PROPERTIES: dict[str, PropertyDef] = {
    p.name: p
    for p in (
        PropertyDef("hs_task_subject", "Task Title", "string", "text"),
        PropertyDef("hs_task_body", "Notes", "string", "textarea"),
        PropertyDef("hs_timestamp", "Due date", "datetime", "date"),
        PropertyDef(
            "hs_task_priority",
            "Priority",
            "enumeration",
            "select",
            ("HIGH", "MEDIUM", "LOW", "NONE"),
        ),
        PropertyDef(
            "hs_task_status",
            "Task Status",
            "enumeration",
            "select",
            ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
        ),
        PropertyDef(
            "hs_task_type",
            "Task Type",
            "enumeration",
            "select",
            ("TODO", "CALL", "EMAIL", "LINKED_IN", "MEETING"),
        ),
        PropertyDef("hubspot_owner_id", "Assigned to", "enumeration", "select"),
        PropertyDef("mqlsync_handoff_key", "Handoff key", "string", "text", custom=True),
        *OBJECT_METADATA,
    )
}

MEETING_PROPERTIES: dict[str, PropertyDef] = {
    p.name: p
    for p in (
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date"),
        PropertyDef("hs_meeting_title", "Meeting name", "string", "text"),
        PropertyDef("hs_meeting_start_time", "Start time", "datetime", "date"),
        *OBJECT_METADATA,
    )
}

SCHEMAS = {"contacts": CONTACT_PROPERTIES, "tasks": TASK_PROPERTIES, "meetings": MEETING_PROPERTIES}


def default_group(object_type: str) -> str:
    """The group the built-in definitions of an object type are reported in."""
    return "contactinformation" if object_type == "contacts" else "taskinformation"


def property_json(p: PropertyDef, object_type: str) -> dict[str, Any]:
    """A property definition in the shape of the properties API."""
    stamp = "2020-01-01T00:00:00Z"
    return {
        "name": p.name,
        "label": p.label,
        "type": p.type,
        "fieldType": p.field_type,
        "description": p.description,
        "groupName": p.group or default_group(object_type),
        "options": [
            {"label": o.replace("_", " ").title(), "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(p.options)
        ],
        "createdAt": stamp,
        "updatedAt": stamp,
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": p.unique or p.name == "hs_object_id",
        "hidden": False,
        "hubspotDefined": not p.custom,
        "modificationMetadata": {
            "archivable": p.custom,
            "readOnlyDefinition": not p.custom,
            "readOnlyValue": p.read_only,
        },
        "formField": not p.read_only,
        "archived": False,
    }
