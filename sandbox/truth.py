"""Ground truth under /_sandbox: what was generated, served and written. No auth, never limited."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.config import ConfigError
from sandbox.data import Window
from sandbox.dialects import instant_param, resource_data
from sandbox.errors import BadRequestError
from sandbox.state import SandboxState
from sandbox.timestamps import iso_z, parse_instant


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise BadRequestError("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object")
    return body


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    @router.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "config": state.config.to_dict()})

    @router.get("/config")
    async def get_config() -> JSONResponse:
        return JSONResponse(state.config.to_dict())

    @router.post("/config")
    async def set_config(request: Request) -> JSONResponse:
        try:
            config = state.configure(await _json_body(request))
        except ConfigError as exc:
            raise BadRequestError(str(exc)) from None
        return JSONResponse(config.to_dict())

    @router.get("/truth/{resource}")
    async def truth(resource: str, request: Request) -> Response:
        resource_data(state, resource)
        params = request.query_params
        window = Window(
            updated_gte=instant_param(params, "updated_gte"), updated_lt=instant_param(params, "updated_lt")
        )
        records = state.dataset.truth(resource, window)
        body = msgspec.json.encode({"records": records, "count": len(records)})
        return Response(body, media_type="application/json")

    @router.get("/tokens")
    async def tokens() -> JSONResponse:
        return JSONResponse({"issued": list(state.tokens.issued)})

    @router.get("/stats")
    async def stats() -> JSONResponse:
        snapshot = state.stats.snapshot()
        snapshot["crm_contacts"] = len(state.contacts.contacts)
        snapshot["crm_upserts"] = state.contacts.upserts
        return JSONResponse(snapshot)

    @router.post("/reset")
    async def reset(request: Request) -> JSONResponse:
        body = await _json_body(request)
        state.reset(data=bool(body.get("data", False)))
        return JSONResponse({"status": "reset", "data": bool(body.get("data", False))})

    @router.get("/crm/contacts")
    async def crm_contacts() -> JSONResponse:
        contacts = state.contacts.snapshot()
        return JSONResponse({"results": contacts, "count": len(contacts)})

    @router.post("/mutate")
    async def mutate(request: Request) -> JSONResponse:
        body = await _json_body(request)
        count = body.get("count", 1)
        if not isinstance(count, int) or count < 0:
            raise BadRequestError("count must be a non-negative integer")
        try:
            at = parse_instant(body["at"]) if body.get("at") is not None else state.dataset.window_end
        except ValueError as exc:
            raise BadRequestError(f"at: {exc}") from None
        changed = state.dataset.mutate(count, at)
        return JSONResponse({"at": iso_z(at), "count": count, "changed": changed})

    @router.post("/storm")
    async def storm(request: Request) -> JSONResponse:
        body = await _json_body(request)
        seconds = body.get("seconds", 5)
        if not isinstance(seconds, int | float) or seconds < 0:
            raise BadRequestError("seconds must be a non-negative number")
        state.storm(float(seconds))
        return JSONResponse({"storm_s": seconds})

    return router
