"""Salesforce objects the org serves: field types, which fields are updateable, the
LeadStatus picklist of each profile, the org's options, and how generated activities
become Tasks, Events and CampaignMembers."""

from __future__ import annotations

from dataclasses import dataclass, field

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
# Custom fields of activities live on Activity: Task and Event both have them.
_ACTIVITY_CUSTOM = {
    "Url__c": "string",
    "Asset__c": "string",
    "Asset_Type__c": "string",
    "Form__c": "string",
    "Campaign__c": "string",
    "Handoff_Key__c": "string",
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
        "LeadSource": "picklist",
        "OwnerId": "reference",
        "IsConverted": "boolean",
        "ConvertedContactId": "reference",
        "ConvertedAccountId": "reference",
        "ConvertedDate": "date",
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
        "LeadSource": "picklist",
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
        "Username": "string",
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
        **_ACTIVITY_CUSTOM,
        **_AUDIT,
    },
    "Event": {
        "Id": "id",
        "WhoId": "reference",
        "OwnerId": "reference",
        "Subject": "string",
        "Type": "picklist",
        "IsAllDayEvent": "boolean",
        "ActivityDateTime": "datetime",
        "ActivityDate": "date",
        "StartDateTime": "datetime",
        "DurationInMinutes": "int",
        **_ACTIVITY_CUSTOM,
        **_AUDIT,
    },
    # Setup objects: how field-level access is granted (see salesforce_access).
    "PermissionSet": {
        "Id": "id",
        "Name": "string",
        "Label": "string",
        "Description": "string",
        "IsOwnedByProfile": "boolean",
        "CreatedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "FieldPermissions": {
        "Id": "id",
        "ParentId": "reference",
        "SobjectType": "picklist",
        "Field": "picklist",
        "PermissionsRead": "boolean",
        "PermissionsEdit": "boolean",
        "SystemModstamp": "datetime",
    },
    "PermissionSetAssignment": {
        "Id": "id",
        "AssigneeId": "reference",
        "PermissionSetId": "reference",
        "SystemModstamp": "datetime",
    },
}
# Objects whose fields an admin customizes: a stock org has no `__c` field on them.
CUSTOMIZABLE = ("Lead", "Contact", "Task", "Event", "CampaignMember", "Campaign")
# Setup objects the API creates (single records, as a setup command does).
SETUP_OBJECTS = ("PermissionSet", "FieldPermissions", "PermissionSetAssignment")
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
    ("Lead", "ConvertedContactId"): ("ConvertedContact", ("Contact",)),
    ("Lead", "ConvertedAccountId"): ("ConvertedAccount", ("Account",)),
    ("FieldPermissions", "ParentId"): ("Parent", ("PermissionSet",)),
    ("PermissionSetAssignment", "AssigneeId"): ("Assignee", ("User",)),
    ("PermissionSetAssignment", "PermissionSetId"): ("PermissionSet", ("PermissionSet",)),
}
NOT_UPDATEABLE = {
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
    "IsConverted",
    # Set by lead conversion only.
    "ConvertedContactId",
    "ConvertedAccountId",
    "ConvertedDate",
}

LeadStatusRow = tuple[str, bool, bool]  # label, IsConverted, IsDefault
# The product's development org: the stock values plus the ones the product writes.
LEAD_STATUSES: tuple[LeadStatusRow, ...] = (
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Marketing Qualified", False, False),
    ("Sales Qualified", False, False),
    ("Recycled", False, False),
    ("Unqualified", False, False),
    ("Closed - Converted", True, False),
)
# A new org's Lead Status picklist, as Salesforce ships it.
STOCK_LEAD_STATUSES: tuple[LeadStatusRow, ...] = (
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Closed - Converted", True, False),
    ("Closed - Not Converted", False, False),
)
PICKLISTS = {("Lead", "Status"): {s for s, _, _ in LEAD_STATUSES}}
# The Lead Source picklist (Lead and Contact) as a new org has it; it is not restricted.
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


@dataclass(frozen=True)
class OrgOptions:
    """How the org is set up: the profile, the integration user's permissions, and the
    shares of converted leads and all-day events in the generated data."""

    profile: str = "configured"  # "configured" | "stock"
    # False: the user lacks "Customize Application" (Tooling API creates are refused).
    can_customize: bool = True
    # "Object.Field" names the integration user cannot see (field-level security).
    hidden_fields: frozenset[str] = field(default_factory=frozenset)
    # Of the live leads whose person became SQL before as_of, the share converted (on
    # their SQL day), picked by seed: all of them unless a test asks otherwise.
    converted_share: float = 1.0
    all_day_share: float = 0.2  # of events, picked by seed

    def __post_init__(self) -> None:
        if self.profile not in ("configured", "stock"):
            raise ValueError("profile must be 'configured' or 'stock'")
        for name in ("converted_share", "all_day_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        fields = org_fields(self.profile)
        for name in self.hidden_fields:
            obj, dot, fname = name.partition(".")
            if not dot or fname not in fields.get(obj, {}):
                raise ValueError(f"hidden field {name!r}: expected Object.Field of the org")


def lead_statuses(profile: str) -> tuple[LeadStatusRow, ...]:
    return STOCK_LEAD_STATUSES if profile == "stock" else LEAD_STATUSES


def org_fields(profile: str) -> dict[str, dict[str, str]]:
    """The fields each object has in a new org of `profile` (a copy the org may extend):
    a stock org has none of the product's custom fields."""
    fields = {obj: dict(names) for obj, names in FIELDS.items()}
    if profile == "stock":
        for obj in CUSTOMIZABLE:
            fields[obj] = {n: t for n, t in fields[obj].items() if not n.endswith("__c")}
    return fields


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


# The configured org's open statuses as a stock org has them.
_STOCK_STATUS = {
    "Marketing Qualified": "Working - Contacted",
    "Sales Qualified": "Working - Contacted",
    "Recycled": "Closed - Not Converted",
    "Unqualified": "Closed - Not Converted",
}


def lead_status(stage: str, hubspot_status: str, profile: str = "configured") -> str:
    """The Lead.Status a generated, unconverted lead has (from the shared journey model).

    Only conversion sets a converted status, so a customer whose lead was not converted
    is still being worked. A stock org knows only the stock values: recycled and
    disqualified leads are "Closed - Not Converted", qualified ones are being worked.
    """
    if stage == "marketingqualifiedlead":
        status = "Marketing Qualified"
    elif stage in ("salesqualifiedlead", "customer"):
        status = "Sales Qualified"
    else:
        status = {
            "NEW": "Open - Not Contacted",
            "UNQUALIFIED": "Unqualified",
            "BAD_TIMING": "Recycled",
        }.get(hubspot_status, "Working - Contacted")
    return _STOCK_STATUS.get(status, status) if profile == "stock" else status
