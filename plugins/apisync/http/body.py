"""Page bodies: JSON decoded so that the records list stays the texts the server sent.

:func:`decode_response` (via :func:`decode_body`) keeps the list at a records path as
:class:`RawRecords`, so paging reads only the fields it needs (a cursor, a total, the dedupe keys)
and staging writes the records as they are. Building a dict per record costs ~8x the split and
is done only if someone reads them. Knows nothing about pagination dialects.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import msgspec

if TYPE_CHECKING:
    import requests

_raw_members = msgspec.json.Decoder(dict[str, msgspec.Raw])
_raw_items = msgspec.json.Decoder(list[msgspec.Raw])
_any = msgspec.json.Decoder()


def _decode(text: Any) -> Any:
    """JSON text to Python; what msgspec rejects is read as json does (:func:`_lenient_decode`)."""
    try:
        return _any.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _lenient_decode(bytes(text))


def _lenient_decode(text: bytes) -> Any:
    """What msgspec rejects but a server may send, read the way Python's json does: numbers beyond
    a double (1e400), NaN/±Infinity, and bytes that are not UTF-8 (as U+FFFD). Paging only needs a
    record's cursor and keys; the bytes are staged as they came and normalize flags such records.
    Invalid JSON still raises ``ValueError``."""
    return json.loads(text.decode("utf-8", errors="replace"))


class RawRecords(Sequence[Any]):
    """The records of one page as the JSON texts the server sent; a record is decoded when read.

    Indexing decodes one record; iterating decodes all of them once (then they are kept).
    :meth:`jsonl` gives the texts one per line without decoding any.
    """

    __slots__ = ("_decoded", "_source", "_texts")

    def __init__(self, texts: list[Any], source: Any = None, decoded: list[Any] | None = None) -> None:
        self._texts = texts  # bytes or msgspec.Raw (views into the response body)
        self._source = source  # the JSON array text holding exactly these records, if known
        self._decoded = decoded

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> RawRecords: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            decoded = self._decoded[index] if self._decoded is not None else None
            return RawRecords(self._texts[index], None, decoded)
        if self._decoded is not None:
            return self._decoded[index]
        return _decode(self._texts[index])

    def __iter__(self) -> Iterator[Any]:
        return iter(self.decoded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RawRecords | list | tuple):
            return self.decoded() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable contents, like list

    def __repr__(self) -> str:
        return f"RawRecords({len(self)} records)"

    def _array(self) -> Any:
        if self._source is None:
            self._source = b"[" + b",".join(self._texts) + b"]"
        return self._source

    def _texts_in(self, stand_in: bytes, original: bytes) -> list[bytes] | None:
        """The texts of these records (views into ``stand_in``) cut from ``original`` at the same
        offsets; None when the array occurs in ``stand_in`` more than once (no exact offset)."""
        array = bytes(self._array())
        at = stand_in.find(array)
        if at < 0 or stand_in.find(array, at + 1) >= 0:
            return None
        texts: list[bytes] = []
        position = at + 1  # after "[": between records only commas and whitespace
        for text in self._texts:
            chunk = bytes(text)
            start = stand_in.find(chunk, position)
            position = start + len(chunk)
            texts.append(original[start:position])
        return texts

    def decoded(self) -> list[Any]:
        """Every record as Python objects (one decode call for the page, then cached)."""
        if self._decoded is None:
            self._decoded = _decode(self._array())
        return self._decoded

    def jsonl(self) -> bytes:
        """The records one per line (no trailing newline), as sent; a record with a line break
        inside (pretty-printed JSON) is re-encoded compactly so every line stays one record."""
        body = b"\n".join(self._texts)
        if body.count(b"\n") == len(self._texts) - 1 and b"\r" not in body:
            return body
        texts = [bytes(text) for text in self._texts]  # msgspec.Raw has no `in`
        return b"\n".join(
            msgspec.json.encode(_decode(text)) if b"\n" in text or b"\r" in text else text for text in texts
        )

    def text(self, index: int) -> bytes:
        """Record ``index`` as the JSON text the server sent, not decoded (so never failing on
        bytes that are not UTF-8)."""
        return bytes(self._texts[index])

    def may_hold_text(self, text: bytes) -> bool:
        """False only if no record is the JSON text ``text`` (a byte search, no decoding)."""
        array = self._array()
        if not isinstance(array, bytes):  # a msgspec.Raw view: searching needs bytes
            array = self._source = bytes(array)
        return text in array

    def keys(self, name: str) -> dict[Any, None]:
        """The distinct values of field ``name`` (records without it add none), in page order."""
        if self._decoded is None:
            try:
                found = _key_decoder(name).decode(self._array())
            except msgspec.ValidationError:  # some record is not an object
                pass
            else:
                return dict.fromkeys(item.value for item in found if item.value is not msgspec.UNSET)
        return record_keys(self.decoded(), name)

    def may_hold_string(self, value: str) -> bool:
        """False only if no record can contain the JSON string ``value`` (a byte search, no decoding).

        Sound where the texts have no backslash: then every string token is its characters
        between quotes, exactly as msgspec encodes it. Otherwise the answer is True (unknown).
        """
        try:
            needle = msgspec.json.encode(value)
        except (msgspec.EncodeError, UnicodeEncodeError):  # e.g. a lone surrogate: cannot tell
            return True
        array = self._array()
        if not isinstance(array, bytes):  # a msgspec.Raw view: searching needs bytes
            array = self._source = bytes(array)
        return b"\\" in array or needle in array


@functools.lru_cache(maxsize=32)
def _key_decoder(name: str) -> msgspec.json.Decoder[Any]:
    """Decodes a list of objects into one field each, skipping the rest of every record."""
    key = msgspec.defstruct("RecordKey", [("value", Any, msgspec.UNSET)], rename={"value": name}, gc=False)
    return msgspec.json.Decoder(list[key])  # type: ignore[valid-type]


def record_keys(records: Sequence[Any], name: str) -> dict[Any, None]:
    """The distinct values of field ``name`` in ``records`` (objects without it add none)."""
    if isinstance(records, RawRecords):
        return records.keys(name)
    return dict.fromkeys(r[name] for r in records if isinstance(r, dict) and name in r)


def decode_body(body: bytes, records_path: str | None) -> Any:
    """The JSON ``body`` with the list at ``records_path`` ("" = the body) kept as :class:`RawRecords`.

    ``None`` decodes everything. Where the body does not have the expected shape it is decoded
    as it is, and :meth:`Paginator.records` reports what it found. Invalid JSON (a truncated body)
    raises ``msgspec.DecodeError``, a ``ValueError``.
    """
    if records_path is None:
        return _any.decode(body)
    records_path = body_path(records_path)
    steps = records_path.split(".") if records_path else []
    try:
        return _decode_at(body, steps)
    except msgspec.DecodeError:
        kept = _decode_non_finite(body, steps)
        if kept is None:
            raise
        return kept


# A JSON string (skipped whole, so a "NaN" inside one is text) or a NaN/±Infinity token.
_STRING_OR_NON_FINITE = re.compile(rb'"(?:[^"\\]|\\.)*+"|-?Infinity|NaN')


def _decode_non_finite(body: bytes, steps: list[str]) -> Any:
    """:func:`decode_body` for a body with NaN/±Infinity (not JSON, but what some encoders write):
    the records keep their texts exactly as sent, so staging does not turn them into ``null``.

    msgspec splits a stand-in body where each such token is blanked to a ``0`` of the same length,
    so every record sits at the same offsets in both; the rest is decoded as json does. None when
    the body has no such token or the records cannot be located exactly (the caller then fails, and
    :func:`decode_response` decodes the body whole, as it does for other charsets).
    """
    if b"NaN" not in body and b"Infinity" not in body:
        return None
    tokens = 0

    def blank(match: re.Match[bytes]) -> bytes:
        nonlocal tokens
        token = match.group()
        if token.startswith(b'"'):
            return token
        tokens += 1
        return b" " * (len(token) - 1) + b"0"

    stand_in = _STRING_OR_NON_FINITE.sub(blank, body)
    if not tokens:
        return None
    try:
        split = dig(_decode_at(stand_in, steps), ".".join(steps))
        data = _lenient_decode(body)
    except ValueError:
        return None
    decoded = dig(data, ".".join(steps))
    if not isinstance(split, RawRecords) or not isinstance(decoded, list):
        return None
    texts = split._texts_in(stand_in, body)
    if texts is None or len(texts) != len(decoded):
        return None
    records = RawRecords(texts, None, decoded)
    if not steps:
        return records
    parent = dig(data, ".".join(steps[:-1]))
    parent[steps[-1]] = records
    return data


def _decode_at(text: Any, steps: list[str]) -> Any:
    try:
        if not steps:
            return RawRecords(_raw_items.decode(text), text)
        members = _raw_members.decode(text)
    except msgspec.ValidationError:  # valid JSON, another shape
        return _any.decode(text)
    step, rest = steps[0], steps[1:]
    return {
        key: _decode_at(value, rest) if key == step else _any.decode(value) for key, value in members.items()
    }


# A path: "$" (the body), "$.a.b" or "a.b" (dotted keys; a digit step indexes a list). A key that
# itself holds dots (OData's "@odata.nextLink") is matched whole before it is split.
_PATH = re.compile(r"^(\$|\$\.[^.\[\]]+(\.[^.\[\]]+)*|[^$.\[\]][^.\[\]]*(\.[^.\[\]]+)*)$")


def body_path(path: str) -> str:
    """The dotted form of a body path: ``$`` -> ``""`` (the body itself), ``$.a.b`` -> ``a.b``,
    ``a.b`` as it is. Raises ``ValueError`` saying the accepted forms for anything else (``$..a``,
    ``a[0]``, ``a..b``): a path that could never match is an error when the spec loads."""
    if path == "":
        return ""
    if not _PATH.match(path):
        raise ValueError(
            f"{path!r} is not a body path: use $ (the body is the list), $.a.b or a.b "
            "(dotted keys; a number indexes a list, e.g. data.0.items)"
        )
    return "" if path == "$" else path.removeprefix("$.")


def _steps(data: Any, path: str) -> Iterator[tuple[Any, str, str]]:
    """Walk ``path`` in ``data``: (holder, step, rest) for each step; a key holding dots whole."""
    rest = body_path(path) if path.startswith("$") else path
    while rest:
        if isinstance(data, dict) and rest in data:
            yield data, rest, ""
            return
        step, _, rest = rest.partition(".")
        yield data, step, rest
        if isinstance(data, dict):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return


def dig(data: Any, path: str | None) -> Any:
    """Value at a path (``"data.products.edges"``, ``"$.links.next"``, ``"$"``; see
    :func:`body_path`); ``None`` if any step is missing."""
    if not path or path == "$":
        return data
    found = data
    for holder, step, _ in _steps(data, path):
        if isinstance(holder, dict):
            found = holder.get(step)
        elif isinstance(holder, list) and step.isdigit() and int(step) < len(holder):
            found = holder[int(step)]
        else:
            return None
    return found


def has_path(data: Any, path: str) -> bool:
    """Whether ``path`` is in ``data``, its value null or not (an explicit ``"next": null`` is an
    end; a missing key is not)."""
    if not path or path == "$":
        return True
    last: tuple[Any, str] | None = None
    for holder, step, _ in _steps(data, path):
        if not isinstance(holder, dict | list):
            return False
        last = (holder, step)
        if isinstance(holder, dict) and step not in holder:
            return False
        if isinstance(holder, list) and not (step.isdigit() and int(step) < len(holder)):
            return False
    return last is not None


_UTF8 = frozenset({"utf-8", "utf8"})


def decode_response(response: requests.Response, records_location: str | None) -> Any:
    """A page body, its records kept raw (:func:`decode_body`).

    JSON is UTF-8 (RFC 8259); a body declared in another charset, or one that only decodes after
    requests' charset guessing (UTF-16/32), is decoded by requests, records and all.
    Raises ``ValueError`` on invalid JSON, e.g. a body cut off in transit.
    """
    encoding = response.encoding
    if encoding is not None and encoding.lower() not in _UTF8:
        return response.json()
    try:
        return decode_body(response.content, records_location)
    except ValueError:
        try:
            return response.json()
        except ValueError:
            pass
        raise
