"""HubSpot-like contacts batch upsert: limits, 207 partial success, idempotency, own rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests

from sandbox.crm import EMAIL_PATTERN, MAX_BATCH_INPUTS
from sandbox.testing import SandboxHandle

UPSERT = "/crm/v3/objects/contacts/batch/upsert"


@pytest.fixture(scope="module")
def server(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    return module_sandbox(records=400, seed=42)


@pytest.fixture
def sb(server: SandboxHandle) -> Iterator[SandboxHandle]:
    server.configure(crm_rate=None)
    server.reset()
    yield server


def _inputs(customers: list[dict]) -> list[dict]:
    return [
        {
            "idProperty": "email",
            "id": c["email"],
            "properties": {"firstname": c["firstname"], "company": c["company"]},
        }
        for c in customers
    ]


def _upsert(sb: SandboxHandle, http: requests.Session, inputs: list[dict]) -> requests.Response:
    return http.post(sb.url + UPSERT, json={"inputs": inputs}, timeout=10)


def test_more_than_100_inputs_is_400(sb: SandboxHandle, http: requests.Session) -> None:
    customers = sb.truth("customers")
    valid = [c for c in customers if EMAIL_PATTERN.match(c["email"])]
    response = _upsert(sb, http, _inputs(valid[: MAX_BATCH_INPUTS + 1]))
    assert response.status_code == 400
    assert sb.crm_contacts() == []
    response = _upsert(sb, http, _inputs(valid[:MAX_BATCH_INPUTS]))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and len(body["results"]) == MAX_BATCH_INPUTS
    assert all(r["new"] for r in body["results"])
    assert len(sb.crm_contacts()) == MAX_BATCH_INPUTS


def test_invalid_emails_get_207_and_the_good_inputs_are_applied(
    sb: SandboxHandle, http: requests.Session
) -> None:
    customers = sb.truth("customers")
    invalid = [c for c in customers if not EMAIL_PATTERN.match(c["email"])]
    assert invalid, "the generated customers include invalid emails"
    batch = invalid[:3] + [c for c in customers if EMAIL_PATTERN.match(c["email"])][:20]
    response = _upsert(sb, http, _inputs(batch))
    assert response.status_code == 207
    body = response.json()
    assert body["numErrors"] == len(body["errors"]) == 3
    for error, customer in zip(body["errors"], invalid[:3], strict=True):
        assert error["category"] == "VALIDATION_ERROR"
        assert error["context"]["id"] == [customer["email"]]
    assert len(body["results"]) == 20
    held = {c["properties"]["email"] for c in sb.crm_contacts()}
    assert held == {c["email"] for c in batch[3:]}


def test_upsert_is_idempotent(sb: SandboxHandle, http: requests.Session) -> None:
    customers = [c for c in sb.truth("customers") if EMAIL_PATTERN.match(c["email"])][:10]
    first = _upsert(sb, http, _inputs(customers)).json()["results"]
    before = sb.crm_contacts()
    again = _upsert(sb, http, _inputs(customers)).json()["results"]
    assert sb.crm_contacts() == before
    assert [r["id"] for r in again] == [r["id"] for r in first]
    assert not any(r["new"] for r in again)
    time.sleep(0.01)
    changed = _inputs(customers[:1])
    changed[0]["properties"]["firstname"] = "Changed"
    result = _upsert(sb, http, changed).json()["results"][0]
    assert result["properties"]["firstname"] == "Changed" and result["updatedAt"] > result["createdAt"]
    assert len(sb.crm_contacts()) == 10
    assert sb.stats()["crm_upserts"] == 21


def test_crm_needs_credentials(sb: SandboxHandle) -> None:
    response = requests.post(sb.url + UPSERT, json={"inputs": []}, timeout=10)
    assert response.status_code == 401


def test_crm_has_its_own_rate_limit_and_hubspot_headers(sb: SandboxHandle, http: requests.Session) -> None:
    sb.configure(crm_rate=1, crm_burst=2)
    sb.reset()
    one = _inputs([c for c in sb.truth("customers") if EMAIL_PATTERN.match(c["email"])][:1])
    responses = [_upsert(sb, http, one) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    refused = responses[-1]
    assert refused.json()["category"] == "RATE_LIMITS"
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "1"
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["Retry-After"] == "1"
    assert responses[0].headers["X-HubSpot-RateLimit-Remaining"] == "1"
    # The source API is not limited by the CRM limiter.
    assert all(http.get(f"{sb.url}/v1/orders").status_code == 200 for _ in range(5))


@pytest.mark.parametrize(
    "body",
    [{"inputs": "x"}, {"inputs": [1]}, {"inputs": [{"idProperty": "email"}]}, {"inputs": [{"id": "a@b.co"}]}],
    ids=["not-a-list", "not-an-object", "no-id", "no-id-property"],
)
def test_malformed_batches_are_400_and_apply_nothing(
    sb: SandboxHandle, http: requests.Session, body: dict
) -> None:
    good = {"idProperty": "email", "id": "good@example.com", "properties": {}}
    if isinstance(body["inputs"], list):
        body = {"inputs": [good, *body["inputs"]]}
    response = http.post(sb.url + UPSERT, json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert sb.crm_contacts() == []
