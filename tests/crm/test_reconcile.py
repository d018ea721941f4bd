"""The pure matching of a CRM batch-upsert reply to the inputs sent: every shape, offline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apisync.crm.reconcile import UNACCOUNTED, Accepted, Rejected, error_inputs, reconcile
from apisync.crm.state import PushInput
from apisync.errors import CrmPushError

ENDPOINT = "/crm/v3/objects/contacts/batch/upsert"
IDS = ["u0@example.com", "u1@example.com", "u2@example.com"]


def answer(status: int, body: Any, crm_ids: list[str | None] = IDS) -> Any:
    text = body if isinstance(body, str | bytes) else json.dumps(body)
    return reconcile(status, text, crm_ids, id_property="email", endpoint=ENDPOINT)


def result(email: str, *, new: bool) -> dict[str, Any]:
    return {"id": f"c-{email}", "properties": {"email": email}, "new": new}


def test_errors_map_to_inputs_by_context_ids_or_message() -> None:
    batch = [PushInput(key=str(i), crm_id=f"u{i}@example.com", payload={}) for i in range(3)]
    by_id = {item.crm_id.casefold(): [i] for i, item in enumerate(batch)}
    by_index = {"context": {"inputIndex": ["2"], "id": ["u0@example.com"]}}
    by_ids = {"context": {"ids": ["U1@Example.com"]}}
    by_message = {"message": 'Property values were not valid: [{"message":"Email address u0@example.com"}]'}
    nothing = {"message": "something broke"}

    assert error_inputs(by_index, batch, by_id) == {2}
    assert error_inputs(by_ids, batch, by_id) == {1}
    assert error_inputs(by_message, batch, by_id) == {0}
    assert error_inputs(nothing, batch, by_id) == set()


def test_200_accepts_every_input_with_the_crms_new_flag() -> None:
    outcome = answer(
        200,
        {
            "status": "COMPLETE",
            "results": [result(IDS[2], new=False), result(IDS[0], new=True), result(IDS[1], new=True)],
        },
    )

    assert outcome.accepted == [Accepted(0, True), Accepted(1, True), Accepted(2, False)]
    assert outcome.rejected == [] and outcome.notes == []


def test_200_whose_results_echo_no_ids_still_accepts_every_input() -> None:
    outcome = answer(200, {"results": [{"id": "1"}, {"id": "2"}, {"id": "3"}]})

    assert outcome.accepted == [Accepted(0, None), Accepted(1, None), Accepted(2, None)]
    assert outcome.rejected == []


def test_207_rejects_the_inputs_its_errors_name_and_accepts_the_rest() -> None:
    outcome = answer(
        207,
        {
            "results": [result(IDS[0], new=True)],
            "errors": [
                {"category": "VALIDATION_ERROR", "message": "Email address u1@example.com is invalid"},
                {"category": "CONFLICT", "message": "taken", "context": {"inputIndex": [2]}},
            ],
        },
    )

    assert outcome.accepted == [Accepted(0, True)]
    assert outcome.rejected == [
        Rejected(1, "VALIDATION_ERROR", "Email address u1@example.com is invalid"),
        Rejected(2, "CONFLICT", "taken"),
    ]


def test_an_input_the_reply_says_nothing_about_is_unaccounted() -> None:
    outcome = answer(207, {"results": [result(IDS[0], new=True)], "errors": [{"message": "something broke"}]})

    assert outcome.accepted == [Accepted(0, True)]
    assert [(r.index, r.category) for r in outcome.rejected] == [(1, UNACCOUNTED), (2, UNACCOUNTED)]
    assert all("unmatched errors: ERROR: something broke" in r.message for r in outcome.rejected)


def test_an_unmatched_error_is_noted_when_every_input_is_accounted_for() -> None:
    body = {"results": [result(i, new=True) for i in IDS], "errors": [{"message": "something broke"}]}

    outcome = answer(207, body)

    assert len(outcome.accepted) == 3 and outcome.rejected == []
    assert len(outcome.notes) == 1 and "1 errors matched no input" in outcome.notes[0]


def test_200_carrying_errors_is_treated_as_207_and_noted() -> None:
    outcome = answer(200, {"results": [result(IDS[0], new=True)], "errors": [{"context": {"id": [IDS[1]]}}]})

    assert outcome.accepted == [Accepted(0, True)]
    assert [(r.index, r.category) for r in outcome.rejected] == [(1, "ERROR"), (2, UNACCOUNTED)]
    assert any("HTTP 200 carrying 1 errors" in note for note in outcome.notes)


def test_inputs_sharing_one_id_share_its_fate() -> None:
    ids: list[str | None] = ["Shared@example.com", "other@example.com", "shared@EXAMPLE.com"]

    accepted = answer(
        200, {"results": [result("shared@example.com", new=False), result(ids[1], new=True)]}, ids
    )
    rejected = answer(
        207,
        {
            "results": [result(ids[1], new=True)],
            "errors": [{"category": "X", "context": {"id": ["SHARED@example.com"]}}],
        },
        ids,
    )

    assert accepted.accepted == [Accepted(0, False), Accepted(1, True), Accepted(2, False)]
    assert [(r.index, r.category) for r in rejected.rejected] == [(0, "X"), (2, "X")]
    assert rejected.accepted == [Accepted(1, True)]


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (
            400,
            '{"status": "error", "message": "too many inputs"}',
            "HTTP 400 is neither 200 nor 207.*too many",
        ),
        (500, "<html>oops</html>", "HTTP 500 is neither 200 nor 207"),
        (207, "<html>not json</html>", "HTTP 207 body is not JSON"),
        (200, b"[1, 2, 3]", "HTTP 200 body is not a JSON object"),
    ],
)
def test_a_reply_that_cannot_be_matched_is_a_push_error(status: int, body: str | bytes, match: str) -> None:
    with pytest.raises(CrmPushError, match=match):
        answer(status, body)
