"""A stream window's conditional requests: the validators of its newest complete extraction.

With ``source.conditional_requests: true`` an extraction asks, page by page, whether what an
earlier extraction of the same window staged has changed (:mod:`apisync.http.conditional`). The
validators come from the newest *complete* extraction that kept any (a failed or unfinished
attempt has no manifest, so its pages are never trusted), wherever it ran: a rerun, a replay, a
backfill or the coverage repair of the window all find it in the window's staging directory. An
extraction staged before the switch was on has none, and the first run after it asks nothing.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from apisync.http.conditional import ConditionalPages, EarlierPage
from apisync.pipeline.staging import newest_extraction
from apisync.staging.raw_pages import PAGE_VALIDATORS, read_manifest, read_page_body

__all__ = ["conditional_pages", "extraction_validators"]

log = logging.getLogger(__name__)


def extraction_validators(raw_dir: Any) -> ConditionalPages:
    """The validators of one complete extraction (its manifest's ``page_validators``), by request."""
    manifest = read_manifest(raw_dir)
    earlier = {}
    for number, entry in (manifest.get(PAGE_VALIDATORS) or {}).items():
        if number.isdigit() and int(number) in manifest["pages"] and entry.get("request"):
            body = functools.partial(read_page_body, raw_dir, int(number))
            earlier[str(entry["request"])] = EarlierPage.from_entry(entry, body)
    return ConditionalPages(earlier)


def conditional_pages(window_dir: Any, *, exclude: Any = None) -> ConditionalPages:
    """The validators of the window's newest complete extraction that kept any (``exclude``: the
    attempt being extracted); none yet: an empty set, which still records this extraction's."""
    source = newest_extraction(window_dir, exclude=exclude, with_validators=True)
    if source is None:
        return ConditionalPages()
    pages = extraction_validators(source)
    log.info("conditional requests: validators of %d pages from %s", len(pages.earlier), source)
    return pages
