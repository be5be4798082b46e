"""Salesforce objects the org serves: field types, which fields are updateable, the
LeadStatus picklist, and how generated activities become Tasks, Events and
CampaignMembers."""

from __future__ import annotations

from sandbox import catalog
from sandbox.population import KIND

API_VERSION = "59.0"
DATA_PATH = f"/services/data/v{API_VERSION}"

_WRITE_BACK = {
    "MQL_Score__c": "double",
    "Fit_Score__c": "double",
    "Engagement_Score__c": "double",
    "Score_Grade__c": "string",
    "Score_Reasons__c": "string",
    "Score_Model_Version__c": "string",
}
_AUDIT = {
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
    "IsDeleted": "boolean",
}

# field name -> type (id, reference, string, picklist, int, double, boolean, date, datetime)
FIELDS: dict[str, dict[str, str]] = {
    "Lead": {
        "Id": "id",
        "Email": "string",
        "FirstName": "string",
        "LastName": "string",
        "Title": "string",
        "Company": "string",
        "NumberOfEmployees": "int",
        "Industry": "picklist",
        "Country": "string",
        "Status": "picklist",
        "OwnerId": "reference",
        "IsConverted": "boolean",
        "Business_License__c": "string",
        "Real_Estate_License__c": "string",
        **_AUDIT,
        **_WRITE_BACK,
    },
    "Contact": {
        "Id": "id",
        "Email": "string",
        "FirstName": "string",
        "LastName": "string",
        "Title": "string",
        "AccountId": "reference",
        "MailingCountry": "string",
        "OwnerId": "reference",
        "Business_License__c": "string",
        "Real_Estate_License__c": "string",
        **_AUDIT,
        **_WRITE_BACK,
    },
    "Account": {
        "Id": "id",
        "Name": "string",
        "NumberOfEmployees": "int",
        "Industry": "picklist",
        "BillingCountry": "string",
        **_AUDIT,
    },
    "User": {
        "Id": "id",
        "Name": "string",
        "FirstName": "string",
        "LastName": "string",
        "Email": "string",
        "IsActive": "boolean",
        "SystemModstamp": "datetime",
    },
    "LeadStatus": {
        "Id": "id",
        "MasterLabel": "string",
        "ApiName": "string",
        "SortOrder": "int",
        "IsConverted": "boolean",
        "IsDefault": "boolean",
        "SystemModstamp": "datetime",
    },
    "Campaign": {"Id": "id", "Name": "string", "Type": "picklist", "IsActive": "boolean", **_AUDIT},
    "CampaignMember": {
        "Id": "id",
        "CampaignId": "reference",
        "LeadId": "reference",
        "ContactId": "reference",
        "Status": "picklist",
        "HasResponded": "boolean",
        "FirstRespondedDate": "date",
        **_AUDIT,
    },
    "Task": {
        "Id": "id",
        "WhoId": "reference",
        "OwnerId": "reference",
        "Subject": "string",
        "Type": "picklist",
        "TaskSubtype": "picklist",
        "ActivityDate": "date",
        "Status": "picklist",
        "Priority": "picklist",
        "Description": "string",
        "Url__c": "string",
        "Asset__c": "string",
        "Asset_Type__c": "string",
        "Form__c": "string",
        "Campaign__c": "string",
        "Handoff_Key__c": "string",
        **_AUDIT,
    },
    "Event": {
        "Id": "id",
        "WhoId": "reference",
        "OwnerId": "reference",
        "Subject": "string",
        "Type": "picklist",
        "ActivityDateTime": "datetime",
        "StartDateTime": "datetime",
        **_AUDIT,
    },
}
# Relationship name -> (target object, foreign-key field), per object.
RELATIONSHIPS: dict[str, dict[str, tuple[str, str]]] = {
    "Contact": {"Account": ("Account", "AccountId"), "Owner": ("User", "OwnerId")},
    "Lead": {"Owner": ("User", "OwnerId")},
    "CampaignMember": {"Campaign": ("Campaign", "CampaignId")},
}
# What describe says of each reference field: (relationshipName, referenceTo), as the real
# API does; a polymorphic field (WhoId, OwnerId) names every object it may point to.
REFERENCES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("Lead", "OwnerId"): ("Owner", ("Group", "User")),
    ("Contact", "AccountId"): ("Account", ("Account",)),
    ("Contact", "OwnerId"): ("Owner", ("User",)),
    ("CampaignMember", "CampaignId"): ("Campaign", ("Campaign",)),
    ("CampaignMember", "LeadId"): ("Lead", ("Lead",)),
    ("CampaignMember", "ContactId"): ("Contact", ("Contact",)),
    ("Task", "WhoId"): ("Who", ("Contact", "Lead")),
    ("Task", "OwnerId"): ("Owner", ("Group", "User")),
    ("Event", "WhoId"): ("Who", ("Contact", "Lead")),
    ("Event", "OwnerId"): ("Owner", ("Group", "User")),
}
NOT_UPDATEABLE = {
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
    "IsConverted",
}

LEAD_STATUSES: tuple[tuple[str, bool, bool], ...] = (  # label, IsConverted, IsDefault
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Marketing Qualified", False, False),
    ("Sales Qualified", False, False),
    ("Recycled", False, False),
    ("Unqualified", False, False),
    ("Closed - Converted", True, False),
)
PICKLISTS = {("Lead", "Status"): {s for s, _, _ in LEAD_STATUSES}}

# Generated activities: kind -> Task Type (the kinds not here are members or events).
TASK_TYPES = {
    KIND["page_view"]: "Web Visit",
    KIND["form_submission"]: "Form Fill",
    KIND["content_download"]: "Content Download",
    KIND["demo_request"]: "Demo Request",
    KIND["trial_signup"]: "Trial Signup",
    KIND["email_open"]: "Email Open",
    KIND["email_click"]: "Email Click",
    KIND["email_reply"]: "Email Reply",
    KIND["email_unsubscribe"]: "Unsubscribe",
    KIND["email_bounce"]: "Email Bounce",
    KIND["social_engagement"]: "Social",
    KIND["support_complaint"]: "Complaint",
}
MEMBER_STATUS = {KIND["webinar_registered"]: "Registered", KIND["webinar_attended"]: "Attended"}
EVENT_KIND = KIND["meeting_booked"]
_EMAIL_KINDS = {
    KIND[k]
    for k in ("email_open", "email_click", "email_reply", "email_unsubscribe", "email_bounce")
}


def task_fields(kind: int, detail: int) -> dict[str, str | None]:
    """Subject, subtype and custom fields of a generated activity Task."""
    out: dict[str, str | None] = {"TaskSubtype": "Email" if kind in _EMAIL_KINDS else "Task"}
    if kind == KIND["page_view"]:
        url, title = catalog.PAGES[detail]
        out.update(Subject=f"Visited {title}", Url__c=url)
    elif kind == KIND["form_submission"]:
        form = catalog.FORMS[detail]
        out.update(Subject=f"Submitted form {form}", Form__c=form)
    elif kind == KIND["content_download"]:
        asset, asset_type = catalog.ASSETS[detail]
        out.update(
            Subject=f"Downloaded {asset}",
            Asset__c=asset,
            Asset_Type__c=asset_type,
            Campaign__c=asset,
            Form__c="content-download",
        )
    elif kind == KIND["demo_request"]:
        out.update(
            Subject="Requested a demo",
            Form__c="demo-request",
            Url__c="https://www.example.com/demo",
        )
    elif kind == KIND["trial_signup"]:
        out.update(
            Subject="Started a trial",
            Form__c="trial-signup",
            Url__c="https://www.example.com/trial",
        )
    elif kind in _EMAIL_KINDS:
        subject, campaign = catalog.EMAILS[detail]
        out.update(Subject=f"{TASK_TYPES[kind]}: {subject}", Campaign__c=campaign)
        if kind == KIND["email_click"]:
            out["Url__c"] = catalog.PAGES[0][0] if detail == 1 else catalog.PAGES[2][0]
    elif kind == KIND["social_engagement"]:
        out["Subject"] = catalog.SOCIAL[detail]
    elif kind == KIND["support_complaint"]:
        out["Subject"] = catalog.COMPLAINTS[detail]
    return out


def lead_status(stage: str, hubspot_status: str) -> str:
    """The Lead.Status a generated person starts with (from the shared journey model)."""
    if stage == "marketingqualifiedlead":
        return "Marketing Qualified"
    if stage == "salesqualifiedlead":
        return "Sales Qualified"
    if stage == "customer":
        return "Closed - Converted"
    return {
        "NEW": "Open - Not Contacted",
        "UNQUALIFIED": "Unqualified",
        "BAD_TIMING": "Recycled",
    }.get(hubspot_status, "Working - Contacted")
