"""A HubSpot-like CRM: contacts batch upsert by idProperty, held in memory.

Upserts are idempotent: the same input twice leaves one contact, and `updatedAt` moves only when a
property value actually changed.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.timestamps import iso_z

MAX_BATCH_INPUTS = 100
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
FIRST_CONTACT_ID = 1001


def _now_iso() -> str:
    now = time.time()
    return iso_z(int(now))[:-1] + f".{int(now * 1000) % 1000:03d}Z"


class ContactStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._next_id = FIRST_CONTACT_ID
        self.upserts = 0

    def upsert(self, id_property: str, key: str, properties: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.upserts += 1
            now = _now_iso()
            properties = {**properties, id_property: key}
            contact_id = self._by_key.get((id_property, key))
            if contact_id is None:
                contact_id = str(self._next_id)
                self._next_id += 1
                self._by_key[(id_property, key)] = contact_id
                contact = {"id": contact_id, "properties": properties, "createdAt": now, "updatedAt": now}
                self.contacts[contact_id] = contact
                return {**contact, "properties": dict(properties), "new": True}
            contact = self.contacts[contact_id]
            merged = {**contact["properties"], **properties}
            if merged != contact["properties"]:
                contact["properties"] = merged
                contact["updatedAt"] = now
            return {**contact, "properties": dict(contact["properties"]), "new": False}

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**c, "properties": dict(c["properties"])} for c in self.contacts.values()]


def _validation_error(key: Any, message: str, index: int) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "context": {"id": [str(key)], "inputIndex": [str(index)]},
    }


class InvalidInputError(ValueError):
    """The batch is malformed (not a property value problem): the whole request gets a 400."""


def _check_input(item: Any, index: int) -> tuple[str, str, dict[str, Any]] | str:
    """(idProperty, id, properties), or the message of a property validation error."""
    if not isinstance(item, dict):
        raise InvalidInputError(f"inputs[{index}] must be an object")
    id_property = item.get("idProperty")
    key = item.get("id")
    properties = item.get("properties", {})
    if not isinstance(id_property, str) or not id_property:
        raise InvalidInputError(f"inputs[{index}].idProperty is required")
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"inputs[{index}].id is required and must be a string")
    if not isinstance(properties, dict):
        raise InvalidInputError(f"inputs[{index}].properties must be an object")
    emails = [key] if id_property == "email" else []
    if "email" in properties:
        emails.append(properties["email"])
    for email in emails:
        if not isinstance(email, str) or not EMAIL_PATTERN.match(email):
            detail = (
                f'{{"isValid":false,"message":"Email address {email} is invalid","error":"INVALID_EMAIL"}}'
            )
            return f"Property values were not valid: [{detail}]"
    return id_property, key, {k: v if v is None else str(v) for k, v in properties.items()}


def _bad_request(message: str) -> JSONResponse:
    """HubSpot's error shape for a rejected batch; nothing in it was applied."""
    body = {"status": "error", "category": "VALIDATION_ERROR", "message": message}
    return JSONResponse(body, status_code=400)


def build_router(state: Any) -> APIRouter:
    router = APIRouter()

    @router.post("/crm/v3/objects/contacts/batch/upsert")
    async def batch_upsert(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return _bad_request("Invalid input JSON on line 1")
        inputs = payload.get("inputs") if isinstance(payload, dict) else None
        if not isinstance(inputs, list):
            return _bad_request("inputs must be a list of {idProperty, id, properties}")
        if len(inputs) > MAX_BATCH_INPUTS:
            return _bad_request(
                f"Batch input size {len(inputs)} exceeds the limit of {MAX_BATCH_INPUTS} inputs"
            )
        started = _now_iso()
        try:
            checked_inputs = [_check_input(item, index) for index, item in enumerate(inputs)]
        except InvalidInputError as exc:
            return _bad_request(str(exc))
        results, errors = [], []
        for index, (item, checked) in enumerate(zip(inputs, checked_inputs, strict=True)):
            if isinstance(checked, str):
                errors.append(_validation_error(item["id"], checked, index))
                continue
            results.append(state.contacts.upsert(*checked))
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now_iso(),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return JSONResponse(body, status_code=207)
        return JSONResponse(body)

    return router
