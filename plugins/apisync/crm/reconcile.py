"""Match a CRM batch-upsert reply to the inputs sent: which were accepted, which rejected and why.

A pure function of the reply (status code and body) and the CRM ids of the inputs, in the order
they were sent: no I/O, no logging, so every shape of reply is a unit test. HubSpot answers a
batch with ``200`` (all applied) or ``207 Multi-Status`` (``results[]`` applied, ``errors[]`` not);
an error names its inputs by ``context.inputIndex``, by ids in its context, or only in its message.
An input the reply neither echoes nor names is rejected as ``UNACCOUNTED`` unless the counts prove
it was applied; a reply of any other status, or not a JSON object, is a :class:`CrmPushError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apisync.errors import CrmPushError
from apisync.redaction import body_excerpt

__all__ = ["UNACCOUNTED", "Accepted", "Reconciliation", "Rejected", "error_inputs", "reconcile"]

UNACCOUNTED = "UNACCOUNTED"  # category of an input the reply says nothing about
MESSAGE_CHARS = 1000
BODY_EXCERPT_CHARS = 300


@dataclass(frozen=True, slots=True)
class Accepted:
    index: int  # position of the input in the batch sent
    new: bool | None  # the CRM's "new" flag: created (True), updated (False), not echoed (None)


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    category: str
    message: str


@dataclass
class Reconciliation:
    """Every input sent is in exactly one of ``accepted`` / ``rejected``, both in input order."""

    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # oddities of the reply, for the caller to log


def reconcile(
    status_code: int,
    body: bytes | str,
    crm_ids: Sequence[str | None],
    *,
    id_property: str,
    endpoint: str,
) -> Reconciliation:
    """Account for every input of a batch from the CRM's reply to it.

    ``crm_ids[i]`` is the id (value of ``id_property``) input ``i`` was sent with; ids compare
    case-insensitively, and inputs sharing one id share its fate. ``endpoint`` only names the call
    in messages. Raises :class:`CrmPushError` for a status other than 200/207 or a body that is not
    a JSON object: nothing in such a reply can be matched, so nothing of the batch is recorded.
    """
    if status_code not in (200, 207):
        raise CrmPushError(
            f"POST {endpoint}: HTTP {status_code} is neither 200 nor 207 Multi-Status; "
            f"body: {body_excerpt(body, BODY_EXCERPT_CHARS)}"
        )
    try:
        reply = json.loads(body)
    except ValueError:
        raise CrmPushError(f"POST {endpoint}: HTTP {status_code} body is not JSON") from None
    if not isinstance(reply, dict):
        raise CrmPushError(f"POST {endpoint}: HTTP {status_code} body is not a JSON object")
    results = reply.get("results") or []
    errors = reply.get("errors") or []
    outcome = Reconciliation()
    if status_code == 200 and errors:
        outcome.notes.append(f"POST {endpoint}: HTTP 200 carrying {len(errors)} errors; treating them as 207")

    by_id: dict[str, list[int]] = {}
    for index, crm_id in enumerate(crm_ids):
        by_id.setdefault((crm_id or "").casefold(), []).append(index)
    errored: dict[int, tuple[str, str]] = {}
    unmatched: list[str] = []
    for error in errors:
        category = str(error.get("category") or "ERROR")
        message = str(error.get("message") or json.dumps(error)[:MESSAGE_CHARS])
        indexes = error_inputs(error, crm_ids, by_id)
        if not indexes:
            unmatched.append(f"{category}: {message}")
            continue
        for index in indexes:
            errored[index] = (category, message)

    applied: dict[int, bool | None] = {}
    for result in results:
        ident = (result.get("properties") or {}).get(id_property)
        candidates = by_id.get(str(ident).casefold(), []) if ident is not None else []
        new = result.get("new")
        for index in candidates:
            if index not in errored:
                applied[index] = new if isinstance(new, bool) else None
    rest = [i for i in range(len(crm_ids)) if i not in errored and i not in applied]
    complete = status_code == 200 and not errors
    if rest and (complete or len(results) == len(crm_ids) - len(errored)):
        applied.update(dict.fromkeys(rest))  # every non-errored input applied; results did not echo ids
        rest = []

    outcome.accepted = [Accepted(index, applied[index]) for index in sorted(applied)]
    outcome.rejected = [Rejected(index, *errored[index]) for index in sorted(errored)]
    if rest:
        message = "not in the CRM response's results or errors" + (
            f"; unmatched errors: {' | '.join(unmatched)[:MESSAGE_CHARS]}" if unmatched else ""
        )
        outcome.rejected += [Rejected(index, UNACCOUNTED, message) for index in rest]
    elif unmatched:
        outcome.notes.append(f"POST {endpoint}: {len(unmatched)} errors matched no input: {unmatched[:5]}")
    return outcome


def error_inputs(
    error: Mapping[str, Any], crm_ids: Sequence[object], by_id: Mapping[str, list[int]]
) -> set[int]:
    """Inputs an error is about: context inputIndex, then context ids, then ids in the message.

    ``crm_ids`` is the batch sent (only its length is used: an index must fall inside it);
    ``by_id`` maps each casefolded id to the positions of the inputs sent with it.
    """
    context = error.get("context") or {}
    found: set[int] = set()
    for value in _as_list(context.get("inputIndex")):
        try:
            index = int(value)
        except (TypeError, ValueError):
            continue
        if 0 <= index < len(crm_ids):
            found.add(index)
    if found:
        return found
    for name in ("id", "ids", "email", "emails"):
        for value in _as_list(context.get(name)):
            found.update(by_id.get(str(value).casefold(), []))
    if found:
        return found
    message = str(error.get("message") or "")
    for ident, indexes in by_id.items():
        if ident and re.search(rf"(?<![\w.@+-]){re.escape(ident)}(?![\w@-])", message, re.IGNORECASE):
            found.update(indexes)
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]
