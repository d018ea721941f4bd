"""Injected faults arrive at roughly the configured shares and in the promised form."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import requests

from sandbox.testing import SandboxHandle
from tests.sandbox.pagers import PAGE, PAGERS, page_graphql, page_offset

NO_FAULTS = {
    "fault_5xx": 0.0,
    "fault_timeout": 0.0,
    "fault_disconnect": 0.0,
    "fault_malformed": 0.0,
    "fault_repeat": 0.0,
    "latency_ms": 0,
}


@pytest.fixture(scope="module")
def server(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    return module_sandbox(records=200, seed=3)


@pytest.fixture
def sb(server: SandboxHandle) -> Iterator[SandboxHandle]:
    server.configure(**NO_FAULTS)
    server.reset()
    yield server
    server.configure(**NO_FAULTS)


def test_5xx_share(sb: SandboxHandle, http: requests.Session) -> None:
    sb.configure(fault_5xx=0.3)
    responses = [http.get(f"{sb.url}/api/orders", params={"limit": 1}, timeout=10) for _ in range(300)]
    statuses = Counter(r.status_code for r in responses)
    failed = statuses[500] + statuses[502] + statuses[503]
    # Binomial(300, 0.3): mean 90, sd 7.9; the band is ±5 sd.
    assert 50 <= failed <= 130, statuses
    assert statuses[200] == 300 - failed
    assert {500, 502, 503} <= set(statuses)
    with_retry_after = [r for r in responses if r.status_code == 503 and "Retry-After" in r.headers]
    assert 0 < len(with_retry_after) < statuses[503]
    assert sb.stats()["faults"]["5xx"] == failed


def test_malformed_bodies_are_truncated_json_with_200(sb: SandboxHandle, http: requests.Session) -> None:
    sb.configure(fault_malformed=0.5)
    broken = 0
    for _ in range(80):
        response = http.get(f"{sb.url}/v1/orders", params={"limit": 5}, timeout=10)
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        try:
            json.loads(response.content)
        except ValueError:
            broken += 1
    assert 20 <= broken <= 60
    assert sb.stats()["faults"]["malformed"] == broken


def test_disconnect_drops_the_connection(sb: SandboxHandle, http: requests.Session) -> None:
    sb.configure(fault_disconnect=1.0)
    with pytest.raises(requests.ConnectionError):
        http.get(f"{sb.url}/v1/orders", timeout=10)
    assert sb.stats()["faults"]["disconnect"] == 1


def test_timeout_hangs(sb: SandboxHandle, http: requests.Session) -> None:
    sb.configure(fault_timeout=1.0, timeout_hang_s=3)
    with pytest.raises(requests.ReadTimeout):
        http.get(f"{sb.url}/v1/orders", timeout=0.5)
    assert sb.stats()["faults"]["timeout"] == 1


def test_latency_is_added(sb: SandboxHandle, http: requests.Session) -> None:
    sb.configure(latency_ms=150)
    start = time.monotonic()
    assert http.get(f"{sb.url}/v1/orders", timeout=10).status_code == 200
    assert time.monotonic() - start >= 0.15


def _two_pages(sb: SandboxHandle, http: requests.Session, dialect: str) -> tuple[list, list]:
    if dialect == "stripe":
        first = http.get(f"{sb.url}/v1/customers", params={"limit": PAGE}).json()["data"]
        second = http.get(f"{sb.url}/v1/customers", params={"limit": PAGE, "starting_after": first[-1]["id"]})
        return first, second.json()["data"]
    if dialect == "github":
        first = http.get(f"{sb.url}/repos/o/r/customers", params={"per_page": PAGE})
        return first.json(), http.get(first.links["next"]["url"]).json()
    if dialect == "hubspot":
        body = http.get(f"{sb.url}/crm/v3/objects/customers", params={"limit": PAGE}).json()
        after = body["paging"]["next"]["after"]
        second = http.get(f"{sb.url}/crm/v3/objects/customers", params={"limit": PAGE, "after": after})
        return body["results"], second.json()["results"]
    if dialect == "offset":
        pages = [http.get(f"{sb.url}/api/customers", params={"limit": PAGE, "offset": o}) for o in (0, PAGE)]
        return pages[0].json()["items"], pages[1].json()["items"]
    if dialect == "page_number":
        body = http.get(f"{sb.url}/api/v2/customers", params={"page_size": PAGE}).json()
        return body["results"], http.get(body["next"]).json()["results"]
    query = "query($a: String) { customers(first: %d, after: $a) { edges { node { id } } pageInfo { endCursor } } }"  # noqa: E501
    pages = []
    after = None
    for _ in range(2):
        body = http.post(f"{sb.url}/graphql", json={"query": query % PAGE, "variables": {"a": after}}).json()
        pages.append([edge["node"] for edge in body["data"]["customers"]["edges"]])
        after = body["data"]["customers"]["pageInfo"]["endCursor"]
    return pages[0], pages[1]


@pytest.mark.parametrize("dialect", ["stripe", "github", "hubspot", "offset", "page_number", "graphql"])
def test_repeat_puts_the_boundary_record_on_top_of_the_next_page(
    sb: SandboxHandle, http: requests.Session, dialect: str
) -> None:
    sb.configure(fault_repeat=1.0)
    first, second = _two_pages(sb, http, dialect)
    assert len(first) == len(second) == PAGE, "pages never exceed the requested size"
    assert second[0]["id"] == first[-1]["id"]
    assert len({r["id"] for r in first + second}) == 2 * PAGE - 1
    assert sb.stats()["faults"]["repeat"] == 1


@pytest.mark.parametrize("dialect", [*sorted(PAGERS), "offset_by_limit", "graphql"])
def test_repeat_never_loses_a_record(sb: SandboxHandle, http: requests.Session, dialect: str) -> None:
    sb.configure(fault_repeat=0.5)
    if dialect == "graphql":
        got = page_graphql(sb, http, "customers", None)
    elif dialect == "offset_by_limit":
        got = page_offset(sb, http, "customers", None, by_limit=True)
    else:
        got = PAGERS[dialect](sb, http, "customers", None)
    truth = sb.truth("customers")
    repeats = sb.stats()["faults"]["repeat"]
    assert repeats > 0
    assert len(got) == len(truth) + repeats
    assert {r["id"] for r in got} == {r["id"] for r in truth}


def test_faults_are_reproducible_per_seed(sb: SandboxHandle, http: requests.Session) -> None:
    """The fault RNG restarts from the seed on reset, as it does in a fresh server run."""

    def statuses() -> list[int]:
        return [http.get(f"{sb.url}/api/orders", params={"limit": 1}).status_code for _ in range(40)]

    sb.configure(fault_5xx=0.5)
    sb.reset()
    first = statuses()
    sb.reset()
    assert statuses() == first
    assert len(set(first)) > 1
