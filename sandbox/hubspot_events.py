"""How a generated activity appears in HubSpot: an event of the events API (with its
eventType and properties), or a meeting engagement."""

from __future__ import annotations

from sandbox import catalog
from sandbox.population import KIND

MEETING = KIND["meeting_booked"]

_FORM_IDS = {
    KIND["content_download"]: "content-download",
    KIND["demo_request"]: "demo-request",
    KIND["trial_signup"]: "trial-signup",
    KIND["webinar_registered"]: "webinar-registration",
}
_FORM_TITLES = {
    "contact-us": "Contact us",
    "catalog-request": "Request a catalog",
    "content-download": "Download content",
    "demo-request": "Request a demo",
    "trial-signup": "Start a free trial",
    "webinar-registration": "Webinar registration",
}
_EMAIL_EVENTS = {
    KIND["email_open"]: "e_opened_email",
    KIND["email_click"]: "e_clicked_email",
    KIND["email_reply"]: "e_replied_email",
    KIND["email_unsubscribe"]: "e_unsubscribed_email",
    KIND["email_bounce"]: "e_bounced_email",
}
_CUSTOM_EVENTS = {
    KIND["webinar_attended"]: "pe_webinar_attended",
    KIND["social_engagement"]: "pe_social_engagement",
    KIND["support_complaint"]: "pe_support_complaint",
}

EVENT_TYPES: tuple[str, ...] = (
    "e_visited_page",
    "e_submitted_form",
    *_EMAIL_EVENTS.values(),
    *_CUSTOM_EVENTS.values(),
)


def event_type(kind: int) -> str | None:
    """The eventType of an activity kind, or None for meetings (not an event)."""
    if kind == KIND["page_view"]:
        return "e_visited_page"
    if kind == KIND["form_submission"] or kind in _FORM_IDS:
        return "e_submitted_form"
    return _EMAIL_EVENTS.get(kind) or _CUSTOM_EVENTS.get(kind)


def event_properties(kind: int, detail: int) -> dict[str, str]:
    """The properties an event instance carries."""
    if kind == KIND["page_view"]:
        url, title = catalog.PAGES[detail]
        return {"hs_url": url, "hs_page_title": title}
    if kind == KIND["form_submission"] or kind in _FORM_IDS:
        form_id = catalog.FORMS[detail] if kind == KIND["form_submission"] else _FORM_IDS[kind]
        props = {
            "hs_form_id": form_id,
            "hs_form_title": _FORM_TITLES[form_id],
            "hs_url": f"https://www.example.com/forms/{form_id}",
        }
        if kind == KIND["content_download"]:
            asset, asset_type = catalog.ASSETS[detail]
            props.update(asset=asset, asset_type=asset_type, campaign=asset)
        elif kind == KIND["webinar_registered"]:
            props["campaign"] = catalog.WEBINARS[detail]
        return props
    if kind in _EMAIL_EVENTS:
        subject, campaign = catalog.EMAILS[detail]
        props = {"hs_email_subject": subject, "campaign": campaign}
        if kind == KIND["email_click"]:
            props["hs_url"] = catalog.PAGES[0][0] if detail == 1 else catalog.PAGES[2][0]
        return props
    if kind == KIND["webinar_attended"]:
        return {"campaign": catalog.WEBINARS[detail]}
    if kind == KIND["social_engagement"]:
        return {"hs_title": catalog.SOCIAL[detail]}
    if kind == KIND["support_complaint"]:
        return {"hs_subject": catalog.COMPLAINTS[detail]}
    return {}


def meeting_title(detail: int) -> str:
    return catalog.MEETING_TITLES[detail]


# -- the same activities through the other HubSpot APIs ----------------------------------

FORM_TITLES = _FORM_TITLES


def form_slug(kind: int, detail: int) -> str | None:
    """Which form an activity submitted (its configured-profile id), or None."""
    if kind == KIND["form_submission"]:
        return catalog.FORMS[detail]
    return _FORM_IDS.get(kind)


def custom_event_name(kind: int) -> str | None:
    """The short name of a custom behavioural event (`webinar_attended`), or None."""
    full = _CUSTOM_EVENTS.get(kind)
    return full[3:] if full else None


CUSTOM_EVENT_KINDS: tuple[int, ...] = tuple(_CUSTOM_EVENTS)
