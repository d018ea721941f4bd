"""Issue 11, "fast, clear failures": a source that cannot be reached fails in seconds, with the cause.

Real sockets: a closed loopback port (connection refused), a reserved ``.invalid`` host (unknown
host), a loopback HTTPS server with a self-signed certificate (TLS). The hook's backoff sleeps go to
a :class:`~tests.http.fake_clock.FakeClock` (``hook.sleep``), so the checks are on the attempts made
and the seconds of backoff *planned*, never on elapsed time.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from apisync.alerts.message import MAX_ERROR_CHARS, error_first_line
from apisync.http import ApiHook, RetriesExhaustedError, SourceUnreachableError
from tests.http.fake_clock import START, FakeClock
from tests.http.scripted_server import Call, Reply, ScriptedServer, scripted_server

# The documented defaults (README, retry.py): connect-phase failures get 3 attempts and 15 s of
# backoff in all; every other retryable failure keeps max_attempts 8.
CONNECT_ATTEMPTS, CONNECT_BUDGET_S, MAX_ATTEMPTS = 3, 15.0, 8


@dataclass(frozen=True)
class Source:
    url: str


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Sleeps(FakeClock):
    """The hook's sleep: records every planned wait instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.planned: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.planned.append(seconds)
        super().sleep(seconds)

    @property
    def total(self) -> float:
        return self.t - START


def _hook(api_conn: Callable[..., str], url: str, **extras: Any) -> tuple[ApiHook, Sleeps]:
    hook = ApiHook(api_conn(Source(url), auth={"type": "none"}, password=None, **extras))
    sleeps = Sleeps()
    hook.sleep = sleeps.sleep
    return hook, sleeps


def _failure(hook: ApiHook, endpoint: str = "/v1/orders", **kwargs: Any) -> RetriesExhaustedError:
    with pytest.raises(RetriesExhaustedError) as info:
        hook.request("GET", endpoint, **kwargs)
    return info.value


# -- connect-phase failures: few attempts, a total budget ------------------------------------------


def test_a_refused_connection_gets_three_attempts_within_the_connect_budget(api_conn) -> None:
    url = closed_port_url()
    hook, sleeps = _hook(api_conn, url)
    error = _failure(hook)
    assert error.attempts == CONNECT_ATTEMPTS  # before: 8
    assert len(sleeps.planned) == 2 and hook.stats()["retries"] == 2
    assert 0 < sleeps.total <= CONNECT_BUDGET_S  # before: ~68 s of backoff
    assert error.waited_s == pytest.approx(sleeps.total, abs=1e-3)
    first = str(error).splitlines()[0]
    assert first.startswith(f"GET {url}/v1/orders: connection refused ([Errno 111] Connection refused)")
    assert "after 3 attempts" in first


def test_the_connect_budget_is_a_connection_extra_and_caps_the_backoff_sum(api_conn) -> None:
    hook, sleeps = _hook(api_conn, closed_port_url(), retry={"connect_attempts": 8, "connect_budget_s": 5})
    error = _failure(hook)
    # 2-3 s, 4-5 s (clipped to what is left of 5 s): the budget ends the attempts before the count does.
    assert error.attempts == 3 and len(sleeps.planned) == 2
    assert sleeps.total == pytest.approx(5.0)
    no_retry, none = _hook(api_conn, closed_port_url(), retry={"connect_attempts": 1})
    assert _failure(no_retry).attempts == 1 and none.planned == []


def test_an_unknown_host_is_not_retried_and_names_the_host(api_conn) -> None:
    hook, sleeps = _hook(api_conn, "http://no-such-host.invalid")
    error = _failure(hook)
    assert error.attempts == 1 and sleeps.planned == []
    first = str(error).splitlines()[0]
    request = "GET http://no-such-host.invalid/v1/orders"
    assert first.startswith(f"{request}: unknown host 'no-such-host.invalid' (")
    assert "not known" in first or "no address" in first.lower()  # glibc / musl wording


@pytest.fixture(scope="module")
def self_signed_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no CA signed: verification must reject it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_rejected_tls_certificate_is_not_retried_and_says_why(api_conn, self_signed_https) -> None:
    hook, sleeps = _hook(api_conn, self_signed_https)
    error = _failure(hook)
    assert error.attempts == 1 and sleeps.planned == []
    first = str(error).splitlines()[0]
    assert first.startswith(f"GET {self_signed_https}/v1/orders: TLS certificate rejected (")
    assert "certificate verify failed" in first and ("self-signed" in first or "self signed" in first)


def test_read_timeouts_5xx_and_429_keep_max_attempts(api_conn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only connect-phase failures get the short budget: a slow or failing server keeps 8 attempts."""
    hook, _ = _hook(api_conn, closed_port_url())
    session = hook.get_conn()
    replies = iter([requests.ReadTimeout("read timed out"), 503, 429, 503, requests.ReadTimeout("x")] * 2)

    def reply(method: str, url: str, **kwargs: object) -> requests.Response:
        answer = next(replies)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code, response.url, response.raw = answer, url, io.BytesIO(b"{}")
        return response

    monkeypatch.setattr(session, "request", reply)
    error = _failure(hook)
    assert error.attempts == MAX_ATTEMPTS and hook.stats()["retries"] == MAX_ATTEMPTS - 1
    assert error.status == 429 and "HTTP 429 after 8 attempts" in str(error)


def test_an_oauth2_token_endpoint_that_refuses_says_so(api_conn) -> None:
    """Before: ``ApiAuthError: OAuth2 token request failed: ConnectionError``, no cause."""
    url = closed_port_url()
    conn_id = api_conn(Source(url), auth={"type": "oauth2"}, login="client", password="client-secret-1")
    with pytest.raises(SourceUnreachableError) as info:
        ApiHook(conn_id).request("GET", "/v1/orders")
    assert str(info.value) == (
        f"OAuth2 token request POST {url}/oauth/token: connection refused "
        "([Errno 111] Connection refused) after 1 attempt (not retried)"
    )
    assert info.value.cause == "connection refused"


# -- the first line keeps the cause ------------------------------------------------------------------


def test_the_first_line_of_a_long_failure_keeps_its_cause(api_conn) -> None:
    """A long URL used to push the cause past every cut: `...[Errno 111] C` in the alert."""
    hook, _ = _hook(api_conn, closed_port_url())
    error = _failure(hook, params={"filter": "x" * 700})
    first = str(error).splitlines()[0]
    assert "connection refused ([Errno 111] Connection refused) after 3 attempts" in first
    alerted = error_first_line(error)
    assert len(alerted) <= MAX_ERROR_CHARS
    assert alerted.startswith("SourceUnreachableError: GET http://127.0.0.1:")
    assert "connection refused" in alerted and "after 3 attempts" in alerted


# -- throttling and backoff apart ---------------------------------------------------------------------


def _two_503s_then_ok(call: Call, server: ScriptedServer) -> Reply:
    if len(server.calls) <= 2:
        return Reply(b'{"error": "busy"}', status=503)
    return Reply(b'{"data": []}')


def test_error_backoff_is_not_counted_as_throttling(
    api_conn, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with scripted_server(_two_503s_then_ok) as server:
        hook, sleeps = _hook(api_conn, server.url)
        caplog.set_level(logging.INFO)
        assert hook.request("GET", "/v1/orders").status_code == 200
        hook.log_summary()
    stats = hook.stats()
    assert stats["throttled_s"] == 0.0  # before: the backoff, counted as throttling too
    assert len(sleeps.planned) == 2 and stats["retries"] == 2
    assert stats["backoff_s"] == pytest.approx(sleeps.total, abs=1e-3) and stats["backoff_s"] > 0
    captured = capsys.readouterr()
    lines = (caplog.text + captured.out + captured.err).splitlines()  # structlog may print instead
    retry_lines = [line for line in lines if "503" in line]
    assert len(retry_lines) == 2 and all("backing off" in line for line in retry_lines)
    assert all("after HTTP 503" in line and "throttl" not in line for line in retry_lines)
    [summary] = [line for line in lines if "summary:" in line]
    assert "0.0 s throttled (rate limit)" in summary
    assert f"{stats['backoff_s']:.1f} s backing off (errors)" in summary


# -- each cause named, and sorted into connect phase or not --------------------------------------------


def _through_urllib3(reason: Exception, kind: type[requests.RequestException]) -> requests.RequestException:
    """As requests raises it: ``kind(MaxRetryError(reason=...))``."""
    from urllib3.exceptions import MaxRetryError

    return kind(MaxRetryError(None, "/v1/orders", reason=reason))  # type: ignore[arg-type]


def _caused(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def _cases() -> list[Any]:
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError

    cert = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    cert.verify_message = "certificate has expired"
    handshake = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    no_route = _caused(
        NewConnectionError(None, "Failed to establish a new connection: [Errno 113] No route to host"),  # type: ignore[arg-type]
        OSError(113, "No route to host"),
    )
    timed_out = ConnectTimeoutError(None, "Connection to api.example.com timed out. (connect timeout=10)")
    read = ReadTimeoutError(None, "/v1/orders", "Read timed out. (read timeout=60)")  # type: ignore[arg-type]
    reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    return [
        (
            _through_urllib3(cert, requests.exceptions.SSLError),
            "TLS certificate rejected (certificate verify failed: certificate has expired)",
            True,
            False,
        ),
        (
            _through_urllib3(handshake, requests.exceptions.SSLError),
            "TLS handshake failed ([SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006))",
            True,
            True,
        ),
        (
            _through_urllib3(no_route, requests.ConnectionError),
            "host unreachable ([Errno 113] No route to host)",
            True,
            True,
        ),
        (
            _through_urllib3(timed_out, requests.ConnectTimeout),
            "connect timeout (Connection to api.example.com timed out. (connect timeout=10))",
            True,
            True,
        ),
        (
            _through_urllib3(read, requests.ReadTimeout),
            "read timeout (None: Read timed out. (read timeout=60))",
            False,
            True,
        ),
        (
            requests.ConnectionError(reset),
            "connection dropped ([Errno 104] Connection reset by peer)",
            False,
            True,
        ),
    ]


@pytest.mark.parametrize(("error", "described", "connect_phase", "retried"), _cases())
def test_each_network_failure_is_named_by_its_cause(
    error: requests.RequestException, described: str, connect_phase: bool, retried: bool
) -> None:
    from apisync.http.network_failures import classify
    from apisync.http.retry import RetryPolicy

    failure = classify(error)
    assert failure is not None and failure.describe() == described
    assert (failure.connect_phase, failure.retried) == (connect_phase, retried)
    policy = RetryPolicy()
    assert policy.should_retry(error, idempotent=False) is (connect_phase and retried)
    assert policy.should_retry(error, idempotent=True) is retried
    assert policy.attempts_for(error) == (3 if connect_phase and retried else 1 if connect_phase else 8)
