"""Page bodies keep the records' texts as sent, even where they are not strict JSON (issue 9)."""

from __future__ import annotations

import math

import pytest

from apisync.http.body import RawRecords, decode_body


def test_case5_nan_and_infinity_records_keep_their_texts() -> None:
    body = (
        b'{"total": NaN, "data": [{"id": "a", "s": Infinity, "t": "NaN"},\n'
        b' {"id": "b", "s": -Infinity}, {"id": "c", "n": 1180591620717411303424, "x": NaN}], "more": false}'
    )
    data = decode_body(body, "data")
    records = data["data"]
    assert isinstance(records, RawRecords)
    assert records.jsonl().split(b"\n") == [
        b'{"id": "a", "s": Infinity, "t": "NaN"}',
        b'{"id": "b", "s": -Infinity}',
        b'{"id": "c", "n": 1180591620717411303424, "x": NaN}',
    ]
    assert records[0] == {"id": "a", "s": math.inf, "t": "NaN"}
    assert list(records.keys("id")) == ["a", "b", "c"]
    assert math.isnan(data["total"]) and data["more"] is False
    top = decode_body(b'[{"id": 1, "s": NaN}, {"id": 2}]', "")
    assert top.jsonl() == b'{"id": 1, "s": NaN}\n{"id": 2}'


def test_case8_a_record_that_is_not_utf8_is_read_for_paging_and_kept_as_bytes() -> None:
    records = decode_body(b'[{"id": "x", "name": "Us\xe9r"}, {"id": "y"}]', "")
    assert records[0] == {"id": "x", "name": "Us\ufffdr"}  # what paging reads (cursor, keys)
    assert records[-1] == {"id": "y"}
    assert records.jsonl() == b'{"id": "x", "name": "Us\xe9r"}\n{"id": "y"}'  # what staging writes


def test_invalid_json_still_fails() -> None:
    with pytest.raises(ValueError):
        decode_body(b'{"data": [{"id": NaN}', "data")
