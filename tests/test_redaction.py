"""apisync.redaction: registered secrets and credential-shaped text are masked everywhere, before any cut.

Issue 13 case 1. Each secret here is made up per test (never registered elsewhere) so a test proves
the mechanism it names: registration, or the pattern alone.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from apisync.redaction import (
    BODY_EXCERPT_CHARS,
    MASK,
    body_excerpt,
    cut_middle,
    cut_redacted,
    redact,
    redact_url,
    register_secret,
)


def _fresh(prefix: str) -> str:
    """A distinctive value no other test registered."""
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def test_key_straddling_the_excerpt_cut_never_survives_at_any_offset() -> None:
    key = _fresh("kStr4ddle")  # 29 characters
    register_secret(key)
    leaked = []
    for offset in range(BODY_EXCERPT_CHARS + len(key) + 2):
        body = json.dumps({"echo": "a" * offset + key + " tail"})
        excerpt = body_excerpt(body)
        if any(key[:n] in excerpt for n in range(6, len(key) + 1)):
            leaked.append(offset)
    assert leaked == [], f"a prefix of the key survived the cut at offsets {leaked}"


def test_unregistered_bearer_straddling_the_cut_never_survives() -> None:
    token = _fresh("tokStraddle")
    leaked = []
    for offset in range(BODY_EXCERPT_CHARS - 40, BODY_EXCERPT_CHARS + 2):
        body = '{"pad": "' + "p" * offset + '", "headers": {"Authorization": "Bearer ' + token + '"}}'
        if token[:6] in body_excerpt(body):
            leaked.append(offset)
    assert leaked == []


@pytest.mark.parametrize(
    "template",
    [
        '{{"headers": {{"Authorization": "Basic {b64}"}}}}',
        "{{'Authorization': 'Basic {b64}'}}",
        "Authorization: Basic {b64}",
    ],
    ids=["json", "python_repr", "header_line"],
)
def test_echoed_basic_credentials_are_masked_registered_or_not(template: str) -> None:
    password = _fresh("bPw")
    b64 = base64.b64encode(f"someone:{password}".encode()).decode()
    text = redact(template.format(b64=b64))
    assert b64 not in text and b64[:8] not in text, text


@pytest.mark.parametrize(
    "echo",
    [
        '{{"headers": {{"x-api-key": "{v}"}}}}',
        '{{"headers": {{"X-Auth-Token": "{v}"}}}}',
        '{{"headers": {{"x-custom-secret": "{v}"}}}}',
        '{{"headers": {{"Authorization": "Token {v}"}}}}',
        '{{"headers": {{"Proxy-Authorization": "Digest username=\\"u\\", response=\\"{v}\\""}}}}',
        '{{"headers": {{"cookie": "theme=dark; session={v}"}}}}',
        '{{"Set-Cookie": "session={v}; Path=/; HttpOnly"}}',
        "Cookie: theme=dark; session={v}",
        "Set-Cookie: session={v}; Path=/",
        "X-API-Key: {v}",
        '{{"query": {{"sig": "{v}"}}}}',
        '{{"query": {{"key": "{v}"}}}}',
        '{{"form": {{"client_secret": "{v}"}}}}',
    ],
)
def test_secret_header_and_parameter_values_are_masked_in_echoed_requests(echo: str) -> None:
    value = _fresh("hdrV4l")
    text = redact(echo.format(v=value))
    assert value not in text and value[:8] not in text, text
    assert MASK in text


def test_jwt_shaped_strings_are_masked_by_pattern() -> None:
    segment = base64.urlsafe_b64encode(json.dumps({"sub": _fresh("u")}).encode()).decode().rstrip("=")
    jwt = f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{segment}.{_fresh('Sig_-')}"
    for text in (f"session {jwt} expired", f'{{"id_token": "{jwt}"}}', f"next={jwt}&x=1"):
        masked = redact(text)
        assert jwt not in masked and segment not in masked, masked


def test_masking_keeps_what_on_call_needs() -> None:
    text = "sync_orders.extract: ApiAuthError: GET http://h/v1/orders?limit=5 -> HTTP 401: auth failed"
    assert redact(text) == text


def test_secret_query_parameters_are_masked_in_urls_and_free_text() -> None:
    sig, password, key = _fresh("sIg"), _fresh("pAss"), _fresh("kEy")
    url = f"https://api.example.com/v1/x?limit=5&sig={sig}&password={password}&key={key}"
    for text in (redact_url(url), redact(f"GET {url} -> HTTP 404")):
        assert sig not in text and password not in text and key not in text, text
        assert "limit=5" in text


def test_names_that_merely_start_like_auth_are_data() -> None:
    """``author`` is a record's field, not a credential; ``auth``, ``x-auth-token`` and ``authToken`` are."""
    text = '{"author": "Ada Lovelace", "authority": "registry", "auth": "k3yV4lue", "authToken": "t0kenV4l"}'
    assert (
        redact(text)
        == '{"author": "Ada Lovelace", "authority": "registry", "auth": "***", "authToken": "***"}'
    )
    assert redact("X-Auth-Token: s3cretV4lue") == "X-Auth-Token: ***"


def test_a_cut_shortens_the_middle_between_words_and_keeps_the_cause() -> None:
    """Issue 11: an error's last words are its root cause; a cut at the end lost them mid-word."""
    text = (
        "GET http://api/v1/orders?"
        + " ".join(f"word{i}" for i in range(200))
        + ": [Errno 111] Connection refused"
    )
    cut = cut_redacted(text, 120)
    assert len(cut) <= 120 and cut.startswith("GET http://api/v1/orders?word0 ")
    assert cut.endswith(": [Errno 111] Connection refused") and cut.count("…") == 1
    head, tail = cut.split("…")
    assert head.endswith(" ") and tail.startswith(" ")  # between words, not inside one
    assert cut_middle("short", 10) == "short" and len(cut_middle("x" * 50, 10)) == 10


def test_key_straddling_either_end_of_a_middle_cut_never_survives() -> None:
    key = _fresh("kMidCut")
    register_secret(key)
    leaked = []
    for offset in range(0, 260, 3):
        text = "a" * offset + key + " " + "b" * (300 - offset)
        cut = cut_redacted(text, 200)
        if any(key[:n] in cut or key[-n:] in cut for n in range(6, len(key) + 1)):
            leaked.append(offset)
    assert leaked == [], f"part of the key survived the cut at offsets {leaked}"
