"""What an alert says: first error line, data-quality list, masking, channel escaping, import cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from apisync.alerts import error_first_line, failure_alert, quality_failures
from apisync.redaction import redact as scrub  # alerts mask with the one redaction

REPO_ROOT = Path(__file__).resolve().parents[2]


class DataQualityError(Exception):
    def __init__(self, message: str, failures: object) -> None:
        super().__init__(message)
        self.failures = failures


def test_error_first_line_keeps_type_and_first_line_only() -> None:
    assert error_first_line(ValueError("bad row\n  at line 7")) == "ValueError: bad row"
    assert error_first_line(KeyError("id")) == "KeyError: 'id'"
    assert error_first_line(RuntimeError()) == "RuntimeError"
    assert error_first_line("Task received SIGTERM\nmore") == "Task received SIGTERM"
    assert "no exception" in error_first_line(None)
    long_line = error_first_line(ValueError("x" * 5000))
    assert len(long_line) == 500 and "…" in long_line  # shortened in the middle


def test_a_long_first_line_keeps_the_cause_at_its_end() -> None:
    """Issue 11: the alert read `...Failed to establish a new connection: [Errno 111] C`."""
    url = "http://127.0.0.1:9/v1/orders?filter=" + "&".join(f"field{i}=value{i}" for i in range(60))
    error = ConnectionError(
        f"GET {url}: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: {url} "
        '(Caused by NewConnectionError("Failed to establish a new connection: '
        '[Errno 111] Connection refused"))'
    )
    line = error_first_line(error)
    assert len(line) <= 500 and line.startswith("ConnectionError: GET http://127.0.0.1:9/v1/orders?")
    assert line.endswith('[Errno 111] Connection refused"))')  # before: cut mid-word before the cause


def test_quality_failures_follow_the_cause_chain_and_tolerate_odd_entries() -> None:
    dq = DataQualityError(
        "2 failed",
        [
            {"expectation": "expect_column_values_to_be_unique", "column": "id", "unexpected_count": 2},
            "a plain string entry",
            {"column": "amount"},
        ],
    )
    try:
        try:
            raise dq
        except DataQualityError:
            raise RuntimeError("validate failed") from None
    except RuntimeError as wrapped:
        # ``from None`` hides the cause from tracebacks but keeps __context__: still found.
        assert quality_failures(wrapped) == [
            "expect_column_values_to_be_unique on column id: 2 unexpected",
            "a plain string entry",
            "(unnamed expectation) on column amount",
        ]
    assert quality_failures(ValueError("no failures here")) == []
    assert quality_failures(DataQualityError("odd", failures="not a list")) == []


def test_long_failure_lists_are_cut_with_a_count() -> None:
    failures = [{"expectation": f"exp_{i}", "column": "c", "unexpected_count": i} for i in range(40)]
    context = {"run_id": "r1", "exception": DataQualityError("40 failed", failures)}

    alert = failure_alert(context)

    assert len(alert.quality_failures) == 25
    assert alert.omitted_failures == 15
    assert "... and 15 more" in alert.as_text()
    assert "exp_24 on column c: 24 unexpected" in alert.as_text()
    assert "exp_25" not in alert.as_text()


def test_scrub_masks_registered_secrets_and_credential_shapes() -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("registered-Secret-value-77")
    text = (
        "failed with registered-Secret-value-77; url postgresql://svc:pg-Pw-123@db:5432/x "
        "Authorization: Bearer abcdefghijklmnop api_key=KEY123456 "
        '{"client_secret": "cs-999999"} https://hooks.slack.com/services/T1/B2/xyzxyzxyz'
    )

    cleaned = scrub(text)

    for secret in ("registered-Secret-value-77", "pg-Pw-123", "abcdefghijklmnop", "KEY123456", "cs-999999"):
        assert secret not in cleaned
    assert "xyzxyzxyz" not in cleaned
    assert "postgresql://***:***@db:5432/x" in cleaned
    assert "failed with ***" in cleaned


def test_channel_rendering_escapes_markup() -> None:
    alert = failure_alert({"run_id": "r<1>", "exception": ValueError("a < b & <script>")})

    assert "a &lt; b &amp; &lt;script&gt;" in alert.as_slack()
    assert "<script>" not in alert.as_html()
    assert "a &lt; b &amp; &lt;script&gt;" in alert.as_html()


def test_importing_alerts_pulls_in_no_heavy_or_transport_modules() -> None:
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "from airflow.sdk import DAG\n"
        "before = set(sys.modules)\n"
        "import apisync.alerts\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "plugins"), str(REPO_ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=REPO_ROOT
    )

    added = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = ("slack_sdk", "aiosmtplib", "aiohttp", "pandas", "great_expectations", "requests", "smtplib")
    providers = ("airflow.providers.slack", "airflow.providers.smtp")
    offenders = [m for m in added if m.split(".")[0] in heavy or m.startswith(providers)]
    assert "apisync.alerts" in added
    assert offenders == []


def test_error_first_line_redacts_before_it_cuts() -> None:
    """A secret straddling the 500-character cut must not survive as a prefix (issue 13 case 1)."""
    import uuid

    from apisync.redaction import register_secret

    key = f"alertKey{uuid.uuid4().hex}"
    register_secret(key)
    leaked = []
    for offset in range(440, 500):
        line = error_first_line(ValueError("x" * offset + key + " tail"))
        if any(key[:n] in line for n in range(6, len(key) + 1)):
            leaked.append(offset)
    assert leaked == []
