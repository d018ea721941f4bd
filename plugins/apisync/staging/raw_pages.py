"""Raw page files: what the API returned, one gzipped JSONL file per page.

Files are named by page number, so a retried or resumed extraction overwrites a page rather than
adding a second copy; a manifest written last marks the extraction complete and says which pages
belong to it (stale higher-numbered pages from an older, longer extraction are ignored).

Bodies are bytes as the server sent them (invalid UTF-8 and NaN included: normalize flags such
records, the quarantine keeps them). Each page's request URL, redacted, is kept next to it
(``page-NNNNNN.url``, written with the page, so a resumed extraction keeps the URLs of pages an
earlier try wrote) and gathered into the manifest as ``page_urls`` (page number as text -> URL).

With conditional requests on (a stream's ``source.conditional_requests``), a page whose response
carried an ``ETag`` or ``Last-Modified`` also keeps that response's body as the server sent it
(``page-NNNNNN.body.gz``) and its validators (``page-NNNNNN.validators.json``: request key,
validators, the headers pagination reads, the body's SHA-256), gathered into the manifest as
``page_validators``: the next extraction of the window asks with them, and a 304 replays the body
(:mod:`apisync.http.conditional`).

A GraphQL page read with ``partial_results: quarantine`` keeps the errors that hit its records
next to it (``page-NNNNNN.errors.json``: line number as text -> messages), gathered into the
manifest as ``record_errors`` (page number as text -> that map): normalize puts them in the rows'
errors column, so validation quarantines those records (their raw text is the page's line, as
the server sent it).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec

from apisync.redaction import redact_url
from apisync.staging.overlap import WriteBehind

__all__ = [
    "MANIFEST_NAME",
    "PAGE_VALIDATORS",
    "RECORD_ERRORS",
    "PageLike",
    "RawPage",
    "clear_pages",
    "copy_pages",
    "extract_to_files",
    "iter_raw_pages",
    "page_urls",
    "read_manifest",
    "read_page",
    "read_page_body",
    "record_errors",
    "write_manifest",
    "write_page",
    "write_page_errors",
    "write_page_validators",
]

MANIFEST_NAME = "_extract.json"
_PAGE_FILE = re.compile(r"^page-(\d+)\.jsonl\.gz$")
_URL_FILE = re.compile(r"^page-(\d+)\.url$")
_VALIDATOR_FILES = re.compile(r"^page-(\d+)\.(validators\.json|body\.gz)$")
_ERRORS_FILE = re.compile(r"^page-(\d+)\.errors\.json$")
_PAGE_FAMILY = (_PAGE_FILE, _URL_FILE, _VALIDATOR_FILES, _ERRORS_FILE)
PAGE_VALIDATORS = "page_validators"  # manifest key: page number as text -> its validators entry
RECORD_ERRORS = "record_errors"  # manifest key: page number as text -> {line as text: [messages]}
_encoder = msgspec.json.Encoder()
# gzip level for page files. Measured on 5,000-order pages (2.3 MB): level 1 takes ~9 ms and
# compresses 5.7x; level 0 (stored) saves that CPU but the 5.7x larger writes cost nearly as much
# (extract of 1M orders: ~0.3 s less client CPU, 456 MB instead of 80 MB on disk).
PAGE_COMPRESSLEVEL = 1


class PageLike(Protocol):
    number: int
    records: Sequence[Any]


@runtime_checkable
class EncodedRecords(Protocol):
    """Records that already are JSON texts (the hook's ``RawRecords``): written without re-encoding."""

    def jsonl(self) -> bytes: ...


@dataclass(frozen=True)
class RawPage:
    number: int
    body: bytes  # JSONL, one record per line, no trailing newline

    def lines(self) -> list[bytes]:
        return self.body.split(b"\n") if self.body else []


def page_file_name(number: int) -> str:
    return f"page-{number:06d}.jsonl.gz"


def url_file_name(number: int) -> str:
    return f"page-{number:06d}.url"


def validators_file_name(number: int) -> str:
    return f"page-{number:06d}.validators.json"


def body_file_name(number: int) -> str:
    return f"page-{number:06d}.body.gz"


def errors_file_name(number: int) -> str:
    return f"page-{number:06d}.errors.json"


def write_page_errors(raw_dir: Any, number: int, errors: dict[int, list[str]]) -> None:
    """Keep the GraphQL errors that hit a page's records (line -> messages) next to the page,
    before it (a page file never lacks them); :func:`write_manifest` gathers them."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    temp = raw_dir / f".{errors_file_name(number)}.tmp"
    temp.write_text(json.dumps({str(line): messages for line, messages in errors.items()}), encoding="utf-8")
    temp.rename(raw_dir / errors_file_name(number))


def write_page(raw_dir: Any, number: int, records: Sequence[Any], url: str | None = None) -> int:
    """Write one page atomically (temp file, then rename); return the record count.

    Records that carry their JSON texts (:class:`EncodedRecords`) are written as they are.
    ``url``: the page's request URL, stored redacted next to the page (before it, so a page file
    never lacks its URL).
    """
    if url is not None:
        raw_dir.mkdir(parents=True, exist_ok=True)
        (raw_dir / url_file_name(number)).write_text(redact_url(url), encoding="utf-8")
    # encode_lines: one C call, the same bytes as joining encode()s
    body = records.jsonl() if isinstance(records, EncodedRecords) else _encoder.encode_lines(records)[:-1]
    raw_dir.mkdir(parents=True, exist_ok=True)
    final = raw_dir / page_file_name(number)
    temp = raw_dir / f".{page_file_name(number)}.tmp"
    with temp.open("wb") as handle:
        handle.write(gzip.compress(body, compresslevel=PAGE_COMPRESSLEVEL))
    temp.rename(final)
    return len(records)


def write_page_validators(raw_dir: Any, number: int, validators: dict[str, Any], body: bytes) -> None:
    """Keep a page's response body and its validators entry next to it (the body first, so an
    entry never lacks its body); :func:`write_manifest` gathers the entries."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, content in (
        (body_file_name(number), gzip.compress(body, compresslevel=PAGE_COMPRESSLEVEL)),
        (validators_file_name(number), json.dumps(validators).encode()),
    ):
        temp = raw_dir / f".{name}.tmp"
        with temp.open("wb") as handle:
            handle.write(content)
        temp.rename(raw_dir / name)


def read_page_body(raw_dir: Any, number: int) -> bytes:
    """A page's response body as the server sent it (kept by :func:`write_page_validators`)."""
    with (raw_dir / body_file_name(number)).open("rb") as handle:
        return gzip.decompress(handle.read())


def clear_pages(raw_dir: Any) -> None:
    """Remove the manifest and page files of a previous extraction of the same window."""
    if not raw_dir.exists():
        return
    for entry in raw_dir.iterdir():
        name = entry.name
        if name == MANIFEST_NAME or any(pattern.match(name) for pattern in _PAGE_FAMILY):
            entry.unlink()


def write_manifest(
    raw_dir: Any, extra: dict[str, Any] | None = None, counts: dict[int, int] | None = None
) -> dict[str, Any]:
    """Mark the extraction complete: list the pages and count their records.

    ``counts``: record counts of pages this process just wrote; any other page found on disk
    (written before a deferral or by an earlier try) is decompressed and counted.
    """
    numbers = (
        sorted(int(match.group(1)) for entry in raw_dir.iterdir() if (match := _PAGE_FILE.match(entry.name)))
        if raw_dir.exists()
        else []
    )
    known = counts or {}
    records = 0
    for number in numbers:
        if number in known:
            records += known[number]
            continue
        with (raw_dir / page_file_name(number)).open("rb") as handle:
            body = gzip.decompress(handle.read())
        records += body.count(b"\n") + 1 if body else 0
    urls = {
        str(number): (raw_dir / url_file_name(number)).read_text(encoding="utf-8")
        for number in numbers
        if (raw_dir / url_file_name(number)).exists()
    }
    validators = {
        str(number): json.loads((raw_dir / validators_file_name(number)).read_text(encoding="utf-8"))
        for number in numbers
        if (raw_dir / validators_file_name(number)).exists()
    }
    errors = {
        str(number): json.loads((raw_dir / errors_file_name(number)).read_text(encoding="utf-8"))
        for number in numbers
        if (raw_dir / errors_file_name(number)).exists()
    }
    manifest = {
        "pages": numbers,
        "records": records,
        **({"page_urls": urls} if urls else {}),
        **({PAGE_VALIDATORS: validators} if validators else {}),
        **({RECORD_ERRORS: errors} if errors else {}),
        **(extra or {}),
    }
    raw_dir.mkdir(parents=True, exist_ok=True)
    with (raw_dir / MANIFEST_NAME).open("w") as handle:
        json.dump(manifest, handle)
    return manifest


def copy_pages(source_dir: Any, raw_dir: Any) -> dict[str, Any]:
    """Copy a complete extraction's pages (and the bodies its validators go with) into
    ``raw_dir``, the manifest last; return the manifest."""
    manifest = read_manifest(source_dir)
    clear_pages(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    bodies = [body_file_name(int(number)) for number in manifest.get(PAGE_VALIDATORS, {})]
    present = [name for name in bodies if (source_dir / name).exists()]
    for name in [*(page_file_name(number) for number in manifest["pages"]), *present, MANIFEST_NAME]:
        with (source_dir / name).open("rb") as source, (raw_dir / name).open("wb") as target:
            shutil.copyfileobj(source, target)
    return manifest


def read_manifest(raw_dir: Any) -> dict[str, Any]:
    path = raw_dir / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(f"{raw_dir}: no {MANIFEST_NAME}; the extraction did not complete")
    with path.open("r") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


def record_errors(manifest: dict[str, Any]) -> dict[int, dict[int, list[str]]]:
    """Page number -> {line: the GraphQL errors that hit that record} (``partial_results: quarantine``)."""
    return {
        int(number): {int(line): list(messages) for line, messages in lines.items()}
        for number, lines in manifest.get(RECORD_ERRORS, {}).items()
    }


def page_urls(manifest: dict[str, Any]) -> dict[int, str]:
    """Page number -> its request URL (redacted), for the pages whose URL was recorded."""
    return {int(number): url for number, url in manifest.get("page_urls", {}).items()}


def read_page(raw_dir: Any, number: int) -> RawPage:
    with (raw_dir / page_file_name(number)).open("rb") as handle:
        return RawPage(number, gzip.decompress(handle.read()))


def iter_raw_pages(raw_dir: Any) -> Iterator[RawPage]:
    """Pages of a completed extraction, in page order."""
    for number in read_manifest(raw_dir)["pages"]:
        yield read_page(raw_dir, number)


def _stage_page(raw_dir: Any, page: PageLike) -> None:
    """A page file, and (conditional requests on: the page has validators) its body and validators."""
    errors = getattr(page, "record_errors", None)
    if errors:
        write_page_errors(raw_dir, page.number, errors)
    write_page(raw_dir, page.number, page.records, getattr(page, "url", None))
    validators = getattr(page, "validators", None)
    if validators is not None:
        write_page_validators(raw_dir, page.number, validators, getattr(page, "raw", b""))


def extract_to_files(
    pages: Iterable[PageLike], raw_dir: Any, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Stage every page of an extraction and write the manifest; Airflow-free for tests and benchmarks.

    The manifest's ``repeated`` counts the records the pages' repeat guard dropped (a page's
    ``repeated``, when it has one): they arrived, so the run's accounting counts them too.

    A page is compressed (encoded first unless its records carry their JSON texts) and written in
    a worker thread while the next one is fetched (zlib and file writes release the GIL); at most
    one page waits, so memory stays flat.
    """
    clear_pages(raw_dir)
    counts: dict[int, int] = {}
    repeated = 0
    with WriteBehind("apisync-page") as writer:
        for page in pages:
            writer.submit(_stage_page, raw_dir, page)
            counts[page.number] = len(page.records)  # used only once every write has succeeded
            repeated += getattr(page, "repeated", 0)
    # only when there were any: a reader takes a missing ``repeated`` as 0
    return write_manifest(raw_dir, {**(extra or {}), **({"repeated": repeated} if repeated else {})}, counts)
