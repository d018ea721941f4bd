"""sync_runs: a failed run's error is stored redacted, and redacted before it is cut (issue 13 case 1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from apisync.load.audit import RunRecord, record_run
from apisync.redaction import register_secret


def _stored_error(tmp_path: Path, error: str) -> str:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    moment = datetime(2026, 1, 3, tzinfo=UTC)
    record_run(engine, RunRecord("orders", moment, moment, "manual__1", "failed", error=error))
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT error FROM sync_runs")).scalar_one()
    engine.dispose()
    return str(stored)


def test_error_is_redacted_before_it_is_cut_to_the_column_limit(tmp_path: Path) -> None:
    key = f"auditKey{uuid.uuid4().hex}"
    register_secret(key)
    stored = _stored_error(tmp_path, "extract: ApiAuthError: " + "x" * 3970 + key + " and more")
    assert not any(key[:n] in stored for n in range(6, len(key) + 1)), stored[-80:]


def test_credential_shapes_in_an_error_never_reach_sync_runs(tmp_path: Path) -> None:
    token = f"tok{uuid.uuid4().hex}"
    stored = _stored_error(
        tmp_path,
        f'extract: ApiAuthError: GET /v1 -> HTTP 401: {{"headers": {{"Authorization": "Bearer {token}"}}}}',
    )
    assert token not in stored and "ApiAuthError" in stored and "HTTP 401" in stored
