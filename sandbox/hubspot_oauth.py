"""HubSpot's OAuth token endpoint: a refresh token and the app's client id and secret buy
a new access token (`POST /oauth/v1/token`, form-encoded, `grant_type=refresh_token`).

Answers as HubSpot documents them: 200 with `access_token`, `refresh_token`,
`expires_in` (1800 s) and `token_type: bearer`; 400 `BAD_REFRESH_TOKEN` or
`BAD_CLIENT_ID` / `BAD_CLIENT_SECRET` otherwise.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.auth import Credentials


class HubSpotOAuthApi:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def routes(self) -> list[Route]:
        return [Route("/oauth/v1/token", self.token, methods=["POST"])]

    async def token(self, request: Request) -> Response:
        # Form-encoded only; parsed by hand (starlette's parser needs python-multipart).
        parsed = parse_qs((await request.body()).decode("utf-8", "replace"))
        form = {k: v[0] for k, v in parsed.items()}
        creds = self.credentials
        problem: tuple[str, str] | None = None
        if form.get("grant_type") != "refresh_token":
            problem = ("BAD_GRANT_TYPE", "grant_type must be refresh_token here")
        elif form.get("client_id") != creds.hubspot_client_id:
            problem = ("BAD_CLIENT_ID", "missing or unknown client id")
        elif form.get("client_secret") != creds.hubspot_client_secret:
            problem = ("BAD_CLIENT_SECRET", "missing or invalid client secret")
        elif form.get("refresh_token") != creds.hubspot_refresh_token:
            problem = ("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        if problem is not None:
            return JSONResponse(
                {"status": problem[0], "message": problem[1], "correlationId": "sandbox"},
                status_code=400,
            )
        return JSONResponse(
            {
                "token_type": "bearer",
                "refresh_token": creds.hubspot_refresh_token,
                "access_token": creds.new_hubspot_access_token(),
                "expires_in": 1800,
            }
        )
