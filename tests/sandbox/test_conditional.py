"""The sandbox's list pages answer conditional GETs: ETag and Last-Modified on every page, 304 to a
matching If-None-Match / If-Modified-Since, a 200 again once the data changed; 304s are counted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from sandbox.testing import SandboxHandle

LIST_PAGES = {
    "stripe": "/v1/orders?limit=20",
    "github": "/repos/acme/widgets/issues?per_page=20&page=2",
    "hubspot": "/crm/v3/objects/customers?limit=20",
    "offset": "/api/orders?limit=20&offset=20",
    "page_number": "/api/v2/customers?page_size=20&page=2",
}


@pytest.fixture
def sb(module_sandbox: Callable[..., SandboxHandle]) -> SandboxHandle:
    box = module_sandbox(records=200)
    box.reset(data=True)
    return box


@pytest.mark.parametrize("dialect", sorted(LIST_PAGES))
def test_a_page_is_not_sent_again_while_it_is_unchanged(
    sb: SandboxHandle, http: requests.Session, dialect: str
) -> None:
    url = sb.url + LIST_PAGES[dialect]
    first = http.get(url)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.status_code == 200 and etag.startswith('"') and first.content

    by_etag = http.get(url, headers={"If-None-Match": etag})
    by_date = http.get(url, headers={"If-Modified-Since": last_modified})
    for answer in (by_etag, by_date):
        assert answer.status_code == 304 and answer.content == b""
        assert answer.headers["ETag"] == etag and answer.headers["Last-Modified"] == last_modified
    assert by_etag.headers.get("Link") == first.headers.get("Link")  # GitHub's pagination, repeated
    # A list of tags, a weak one among them, matches too; another tag does not.
    assert http.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
    both = {"If-None-Match": '"other"', "If-Modified-Since": last_modified}
    assert http.get(url, headers=both).status_code == 200
    assert sb.stats()["by_status"] == {"200": 3, "304": 3}


def test_a_change_of_the_data_makes_only_the_changed_page_new(
    sb: SandboxHandle, http: requests.Session
) -> None:
    # Stripe pages by creation time: an update changes the record's page and no other.
    urls, pages = [sb.url + "/v1/orders?limit=50"], []
    while True:
        pages.append(http.get(urls[-1]))
        body = pages[-1].json()
        if not body["has_more"]:
            break
        urls.append(sb.url + f"/v1/orders?limit=50&starting_after={body['data'][-1]['id']}")
    changed = sb.mutate(1, at="2026-01-07T23:00:00Z")["changed"]["orders"]
    holding = [
        index for index, page in enumerate(pages) if changed[0] in {r["id"] for r in page.json()["data"]}
    ]
    statuses = []
    for url, earlier in zip(urls, pages, strict=True):
        statuses.append(http.get(url, headers={"If-None-Match": earlier.headers["ETag"]}).status_code)
        # Last-Modified moved on: a date validator from before the change never matches after it.
        dated = {"If-Modified-Since": earlier.headers["Last-Modified"]}
        assert http.get(url, headers=dated).status_code == 200
    assert statuses == [200 if index in holding else 304 for index in range(len(pages))]
    assert len(holding) == 1 and len(pages) == 4
