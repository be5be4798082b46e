"""The ASGI application: HubSpot, Salesforce and admin routes behind the gate."""

from __future__ import annotations

from starlette.applications import Starlette

from sandbox.admin_routes import AdminApi
from sandbox.gate import Gate
from sandbox.hubspot_access import AccountApi, HubSpotAccess
from sandbox.hubspot_engagements import EngagementsApi
from sandbox.hubspot_marketing import MarketingApi
from sandbox.hubspot_oauth import HubSpotOAuthApi
from sandbox.hubspot_properties import PropertiesApi
from sandbox.hubspot_routes import HubSpotApi
from sandbox.recorder import Recorder
from sandbox.salesforce_bulk import BulkQueryApi
from sandbox.salesforce_routes import SalesforceApi
from sandbox.salesforce_tooling import ToolingApi
from sandbox.state import Sandbox


def create_app(sandbox: Sandbox) -> Gate:
    """The app for one sandbox; serve it with uvicorn (see sandbox.server)."""
    routes = [
        # Starlette matches in order: these come before HubSpotApi's routes, which they
        # extend (engagement associations before the generic one) or replace (the
        # properties API; the events API under the stock profile's names).
        *AccountApi(sandbox).routes(),
        *MarketingApi(sandbox).routes(),
        *EngagementsApi(sandbox.portal).routes(),
        *PropertiesApi(sandbox.portal).routes(),
        *HubSpotApi(sandbox.portal).routes(),
        *HubSpotOAuthApi(sandbox.credentials).routes(),
        *SalesforceApi(sandbox.org, sandbox.credentials, sandbox.limiter).routes(),
        *ToolingApi(sandbox.org).routes(),
        *BulkQueryApi(sandbox.org).routes(),
        *AdminApi(sandbox).routes(),
    ]
    # Paths are matched exactly as the clients send them (both with and without a
    # trailing slash are registered where a client uses one), so no redirects.
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    return Gate(HubSpotAccess(Recorder(app, sandbox), sandbox), sandbox)
