"""Assembles the sandbox ASGI app: FastAPI routers behind the Guard middleware."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox import crm, dialects, graphql, truth
from sandbox.auth import client_from_token_request, echo_of_request
from sandbox.config import SandboxConfig
from sandbox.errors import SandboxError
from sandbox.guard import Guard
from sandbox.state import SandboxState


def create_app(config: SandboxConfig | None = None) -> Guard:
    """The ASGI app for uvicorn; `.state` is the live SandboxState, `.app` the inner FastAPI app."""
    state = SandboxState(config or SandboxConfig())
    api = FastAPI(title="apisync sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @api.exception_handler(SandboxError)
    async def sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @api.post("/oauth/token")
    async def oauth_token(request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode("latin-1")))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        client_id, error = client_from_token_request(
            form, request.headers.get("authorization", ""), state.config
        )
        if client_id is None:
            body: dict[str, Any] = {"error": error}
            if state.config.auth_error_body == "echo":
                body["request"] = echo_of_request(request.scope, form)
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Basic realm="sandbox"'})
        token: dict[str, Any] = state.tokens.issue(client_id, state.config.token_ttl)
        if form.get("scope"):
            token["scope"] = form["scope"]
        return JSONResponse(token, headers={"Cache-Control": "no-store"})

    api.include_router(truth.build_router(state))
    api.include_router(crm.build_router(state))
    api.include_router(graphql.build_router(state))
    api.include_router(dialects.build_router(state))
    return Guard(api, state)
