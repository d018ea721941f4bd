"""Real transports for alert tests: an SMTP server (aiosmtpd) and an HTTP receiver standing in for Slack.

Both listen on free loopback ports; the alert connections point at them through AIRFLOW_CONN_* env vars.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SLACK_TOKEN = "T0ALERTS/B0ALERTS/wh00kS3cretT0kenXYZ"
SMTP_USER = "alerts-bot"
SMTP_PASSWORD = "smtp-Pa55-s3cret-9f2c"
ALERT_RECIPIENT = "oncall@example.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="package", autouse=True)
def dag_bundle_of_our_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run our test DAGs against an empty DAG folder, not the project's.

    dag.test() re-parses and re-serializes the whole bundle the DAG belongs to, so one broken DAG
    file in dags/ would fail every alert test. The "dags-folder" bundle points at an empty folder
    here; run_dag_test() writes the test DAG into that bundle directly. The plugins folder stays
    the project's: Airflow caches the plugins it loaded for the whole process, so pointing it
    elsewhere here left every later test (the Syncs view's api-server) without our plugins.
    """
    import json as json_module
    import os

    bundle_env = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
    original_bundles = os.environ.get(bundle_env)
    os.environ[bundle_env] = json_module.dumps(
        [
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(tmp_path_factory.mktemp("empty_dags"))},
            }
        ]
    )
    yield
    if original_bundles is None:
        os.environ.pop(bundle_env, None)
    else:
        os.environ[bundle_env] = original_bundles


@dataclass
class ReceivedEmail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["subject"])

    @property
    def body(self) -> str:
        """All text parts, decoded (base64 / quoted-printable undone)."""
        parts = [part.get_content() for part in self.message.walk() if part.get_content_maintype() == "text"]
        return "\n".join(parts)


@dataclass
class SmtpServer:
    port: int
    messages: list[ReceivedEmail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _Recorder:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.server.messages.append(ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(port=_free_port())

    def authenticate(smtp, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            server.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
            # handled=False: aiosmtpd answers a refused login with 535 (handled=True sends nothing
            # and the client waits for its timeout)
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    controller = Controller(
        _Recorder(server),
        hostname="127.0.0.1",
        port=server.port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class SlackPost:
    path: str
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class SlackReceiver:
    url: str
    posts: list[SlackPost] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def slack_receiver() -> Iterator[SlackReceiver]:
    receiver = SlackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.posts.append(SlackPost(self.path, body))
            reply = b"ok" if receiver.status == 200 else b"internal_error"
            self.send_response(receiver.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def slack_connection(receiver: SlackReceiver) -> dict[str, Any]:
    """The ``slack_alerts`` connection (a webhook) pointing at ``receiver``."""
    return {"conn_type": "slackwebhook", "host": receiver.url, "password": SLACK_TOKEN}


def smtp_connection(port: int, password: str = SMTP_PASSWORD) -> dict[str, Any]:
    """The ``smtp_alerts`` connection pointing at a local SMTP server on ``port``."""
    return {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "login": SMTP_USER,
        "password": password,
        "extra": {
            "disable_tls": True,
            "disable_ssl": True,
            "from_email": "airflow-alerts@example.test",
            "to": ALERT_RECIPIENT,
            "timeout": 10,
            "retry_limit": 0,
        },
    }


@pytest.fixture
def alert_connections(
    monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer, slack_receiver: SlackReceiver
) -> tuple[SmtpServer, SlackReceiver]:
    """The default alert connections (slack_alerts, smtp_alerts), pointing at the local servers."""
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(slack_connection(slack_receiver)))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(smtp_connection(smtp_server.port)))
    monkeypatch.delenv("AIRFLOW_VAR_APISYNC_ALERT_EMAILS", raising=False)
    return smtp_server, slack_receiver
