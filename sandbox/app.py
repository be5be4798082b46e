"""The ASGI application: HubSpot, Salesforce and admin routes behind the gate."""

from __future__ import annotations

from starlette.applications import Starlette

from sandbox.admin_routes import AdminApi
from sandbox.gate import Gate
from sandbox.hubspot_oauth import HubSpotOAuthApi
from sandbox.hubspot_routes import HubSpotApi
from sandbox.salesforce_routes import SalesforceApi
from sandbox.state import Sandbox


def create_app(sandbox: Sandbox) -> Gate:
    """The app for one sandbox; serve it with uvicorn (see sandbox.server)."""
    routes = [
        *HubSpotApi(sandbox.portal).routes(),
        *HubSpotOAuthApi(sandbox.credentials).routes(),
        *SalesforceApi(sandbox.org, sandbox.credentials, sandbox.limiter).routes(),
        *AdminApi(sandbox).routes(),
    ]
    # Paths are matched exactly as the clients send them (both with and without a
    # trailing slash are registered where a client uses one), so no redirects.
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    return Gate(app, sandbox)
