"""Issue 13 case 1 end to end: no secret is ever stored, whatever the auth type, success or failure.

One real Airflow stack (standalone on a PostgreSQL metadata DB) runs, for every auth type that has
a secret (API key in a header, API key in the query, bearer, basic, OAuth2), one sync that succeeds
and one that fails: its API revokes the credential after the first page and answers 401 with a
body that echoes the request's headers and query, as some real APIs do (sandbox
``auth_error_body=echo``, ``reject_after=1``). Every connection has distinctive secrets (plus a
session cookie and a non-secret marker header). Then every artifact is searched for every secret,
its base64 and, for OAuth2, every access token the sandbox issued: task logs and all other files
under the Airflow home's logs dir, every text and binary column of every metadata DB table, every
staging file, every warehouse table, the alert email and Slack payloads, and the failed task's log
as the REST API serves it. Zero hits. Controls prove the search is not vacuous: each artifact
holds a known non-secret value (a connection id, a record id, the marker the echo carried).
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.alerts.conftest import SLACK_TOKEN, SMTP_PASSWORD, alert_connections, slack_receiver, smtp_server
from tests.e2e.conftest import AirflowStack, iso, running_airflow, throwaway_database, wait_until

__all__ = ["alert_connections", "slack_receiver", "smtp_server"]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AUTH_TYPES = ("api_key_header", "api_key_query", "bearer", "basic", "oauth2")
OUTCOMES = ("ok", "fail")
INTERVAL_END = datetime(2026, 1, 3, 11, tzinfo=UTC)  # the hourly window 10:00 .. 11:00
MARKER_HEADER = "X-Leak-Test-Marker"

DAG_FILE = '''"""Syncs of the orders stream, one DAG per connection of the secret-grep e2e test."""

from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from apisync.defaults import sync_default_args
from apisync.pipeline import sync_stream

for conn_id, db_schema in {connections!r}.items():
    with DAG(
        conn_id,
        schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        default_args=sync_default_args(retries=0),
        tags=["apisync", "e2e"],
    ):
        sync_stream("orders", source_conn_id=conn_id, warehouse_conn_id=conn_id + "_warehouse",
                    warehouse_schema=db_schema)
'''


@dataclass
class Secrets:
    """What must never be found, and the markers that must be."""

    values: dict[str, str] = field(default_factory=dict)  # label -> secret value

    def add(self, label: str, value: str) -> str:
        self.values[label] = value
        return value

    def forms(self) -> dict[str, str]:
        """Every secret as itself and as base64 (a basic header, a logged blob)."""
        forms = {}
        for label, value in self.values.items():
            forms[label] = value
            forms[f"{label} (base64)"] = base64.b64encode(value.encode()).decode()
        return forms


def _distinct(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def _connection(
    auth: str, outcome: str, url: str, secrets: Secrets, sandbox_config: dict[str, list[str]]
) -> dict[str, Any]:
    """The source connection of one DAG, with secrets nobody else has; registers them."""
    name = f"{auth}_{outcome}"
    marker = {MARKER_HEADER: f"marker-{name}"}
    if auth in ("api_key_header", "api_key_query", "bearer"):
        key = secrets.add(f"{name} key", _distinct(f"LeakKey{outcome}"))
        sandbox_config["api_keys"].append(key)
        style = {
            "api_key_header": {"type": "api_key", "header": "X-API-Key"},
            "api_key_query": {"type": "api_key", "query": "api_key"},
            "bearer": {"type": "bearer"},
        }[auth]
        headers = dict(marker)
        if auth == "bearer":  # a session cookie sent with every request is a credential too
            cookie = secrets.add(f"{name} cookie", _distinct("LeakSession"))
            headers["Cookie"] = f"theme=dark; session={cookie}"
        return {
            "conn_type": "apisync",
            "host": url,
            "password": key,
            "extra": {"auth": style, "headers": headers},
        }
    if auth == "basic":
        user = f"leak-user-{outcome}"
        password = secrets.add(f"{name} password", _distinct("LeakBasicPw"))
        secrets.add(f"{name} basic header", base64.b64encode(f"{user}:{password}".encode()).decode())
        sandbox_config["basic_users"].append(f"{user}:{password}")
        return {
            "conn_type": "apisync",
            "host": url,
            "login": user,
            "password": password,
            "extra": {"auth": {"type": "basic"}, "headers": marker},
        }
    client = f"leak-client-{outcome}"
    client_secret = secrets.add(f"{name} client secret", _distinct("LeakClientSecret"))
    secrets.add(f"{name} token request", base64.b64encode(f"{client}:{client_secret}".encode()).decode())
    sandbox_config["clients"].append(f"{client}:{client_secret}")
    return {
        "conn_type": "apisync",
        "host": url,
        "login": client,
        "password": client_secret,
        "extra": {"auth": {"type": "oauth2", "token_url": "/oauth/token"}, "headers": marker},
    }


@dataclass
class Artifact:
    name: str
    text: str


def _decoded(value: object) -> str:
    """A column value as searchable text: binary is tried as zlib/gzip, then read as latin-1."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        for unpack in (zlib.decompress, gzip.decompress):
            try:
                value = unpack(value)
                break
            except (zlib.error, OSError, EOFError):
                continue
        return value.decode("latin-1")
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def _database_tables(url: str, schemas: list[str] | None = None) -> Iterator[Artifact]:
    """Every table of the database (or of ``schemas``), every column of every row, as one text each."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        with engine.connect() as conn:
            for schema in schemas or [None]:
                for table in inspector.get_table_names(schema=schema):
                    reflected = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
                    rows = conn.execute(sa.select(reflected)).all()
                    text = "\n".join(" | ".join(_decoded(v) for v in row if v is not None) for row in rows)
                    yield Artifact(f"{schema or 'metadata'}.{table}", text)
    finally:
        engine.dispose()


def _file_text(path: Path) -> str:
    """A file as searchable text: gzip undone, a Parquet file's rows as JSON (its values are
    compressed and dictionary-encoded on disk), next to the raw bytes read as latin-1."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(raw).decode("utf-8")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return json.dumps(rows, default=str) + "\n" + raw.decode("latin-1")
    return raw.decode("latin-1")


def _files(root: Path, label: str) -> Iterator[Artifact]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield Artifact(f"{label}:{path.relative_to(root)}", _file_text(path))


@pytest.fixture
def leak_setup(
    sandbox: Callable[..., Any],
    pg_schema: str,
    postgres_url: str,
    alert_connections: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    """Two sandboxes (one serves, one revokes after the first page), ten connections, ten schemas."""
    secrets = Secrets()
    config: dict[str, dict[str, list[str]]] = {
        outcome: {"api_keys": [], "basic_users": [], "clients": []} for outcome in OUTCOMES
    }
    # Connections first (they pick the secrets the sandboxes then accept), pointed at the URL later.
    pending = {
        (auth, outcome): _connection(auth, outcome, "", secrets, config[outcome])
        for auth in AUTH_TYPES
        for outcome in OUTCOMES
    }
    boxes = {
        "ok": sandbox(records=30_000, auth_error_body="echo", **config["ok"]),
        # ~180 orders an hour in pages of 100: page 1 is served, page 2 gets the echoing 401.
        "fail": sandbox(records=30_000, auth_error_body="echo", reject_after=1, **config["fail"]),
    }
    schemas: dict[str, str] = {}
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        for (auth, outcome), body in pending.items():
            conn_id = f"leak_{auth}_{outcome}"
            body["host"] = boxes[outcome].url
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
            schemas[conn_id] = f"{pg_schema}_{auth}_{outcome}"
            conn.execute(sa.text(f'CREATE SCHEMA "{schemas[conn_id]}"'))
    url = sa.make_url(postgres_url)
    for conn_id, schema in schemas.items():  # the warehouse schema is the connection's extra
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}_WAREHOUSE",
            json.dumps(
                {
                    "conn_type": "postgres",
                    "host": url.host,
                    "port": url.port or 5432,
                    "login": url.username,
                    "schema": url.database,
                    "extra": {"schema": schema},
                }
            ),
        )
    secrets.add("slack webhook token", SLACK_TOKEN)
    secrets.add("smtp password", SMTP_PASSWORD)
    try:
        yield {"secrets": secrets, "boxes": boxes, "schemas": schemas, "alerts": alert_connections}
    finally:
        with engine.begin() as conn:
            for schema in schemas.values():
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _trigger(stack: AirflowStack, dag_id: str) -> str:
    stack.wait_for_dag(dag_id)
    assert stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    response = stack.api(
        "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": iso(INTERVAL_END), "conf": {}}
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["dag_run_id"])


def _state(stack: AirflowStack, dag_id: str, run_id: str) -> str | None:
    state = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json().get("state")
    return state if state in ("success", "failed") else None


@pytest.mark.timeout(1200)
def test_no_secret_is_stored_anywhere_for_any_auth_type_in_success_or_failure(
    leak_setup: dict[str, Any], tmp_path: Path, postgres_url: str
) -> None:
    secrets: Secrets = leak_setup["secrets"]
    schemas: dict[str, str] = leak_setup["schemas"]
    smtp, slack = leak_setup["alerts"]
    dag_file = tmp_path / "leak_dags" / "leak_syncs.py"
    dag_file.parent.mkdir()
    dag_file.write_text(DAG_FILE.format(connections=schemas))
    home = tmp_path / "home"
    home.mkdir()

    with (
        throwaway_database(postgres_url) as metadata_url,
        running_airflow(home, metadata_url, dag_files=[dag_file], scheduled_runs=False) as stack,
    ):
        runs = {dag_id: _trigger(stack, dag_id) for dag_id in schemas}
        states = {
            dag_id: wait_until(lambda d=dag_id, r=run_id: _state(stack, d, r), f"{dag_id} to finish", 900)
            for dag_id, run_id in runs.items()
        }
        assert states == {d: ("success" if d.endswith("_ok") else "failed") for d in schemas}, states
        api_logs = [
            Artifact(
                f"REST log {dag_id}",
                stack.api(
                    "GET",
                    f"/dags/{dag_id}/dagRuns/{runs[dag_id]}/taskInstances/sync_orders.extract/logs/1",
                    params={"full_content": True},
                    headers={"Accept": "application/x-ndjson"},
                ).text,
            )
            for dag_id in schemas
            if dag_id.endswith("_fail")
        ]
        artifacts = [
            *api_logs,
            *_files(home / "logs", "logs"),
            *_files(home / "staging", "staging"),
            *_database_tables(metadata_url),
        ]
    artifacts += list(_database_tables(postgres_url, list(schemas.values())))
    artifacts += [
        Artifact(f"email {i}", m.subject + "\n" + m.raw.decode("latin-1"))
        for i, m in enumerate(smtp.messages)
    ]
    artifacts += [Artifact(f"slack {i}", post.body.decode("utf-8")) for i, post in enumerate(slack.posts)]

    tokens = leak_setup["boxes"]["ok"].issued_tokens() + leak_setup["boxes"]["fail"].issued_tokens()
    assert len(leak_setup["boxes"]["fail"].issued_tokens()) >= 2, (
        "the failing OAuth2 sync refreshed its token"
    )
    forms = secrets.forms()
    forms.update({f"issued access token {i}": token for i, token in enumerate(tokens)})

    def found(needle: str) -> list[str]:
        return [a.name for a in artifacts if needle in a.text]

    # Not vacuous: the artifacts exist, hold text, and hold what we know they hold.
    names = " ".join(a.name for a in artifacts)
    for expected in (
        "logs:dag_id=leak_oauth2_fail",
        "staging:orders",
        "metadata.xcom",
        "metadata.log",
        "metadata.rendered_task_instance_fields",
        "metadata.task_instance",
        "metadata.dag_run",
        "email 0",
        "slack 0",
    ):
        assert expected in names, f"no artifact named like {expected!r}"
    must_hold = (
        "metadata.xcom",
        "metadata.task_instance",
        "metadata.log",
        "metadata.rendered_task_instance_fields",
    )
    empty = [a.name for a in artifacts if a.name in must_hold and not a.text]
    assert not empty, f"empty artifacts: {empty}"
    assert len(smtp.messages) == len(slack.posts) == len(AUTH_TYPES), "one alert per failed sync and channel"
    assert all("ApiAuthError" in a.text for a in api_logs), [a.text[:300] for a in api_logs]
    order_id = leak_setup["boxes"]["ok"].truth(
        "orders", updated_gte="2026-01-03T10:00:00Z", updated_lt="2026-01-03T11:00:00Z"
    )[0]["id"]
    truth_ids = {
        record["id"]
        for record in leak_setup["boxes"]["ok"].truth(
            "orders", updated_gte="2026-01-03T10:00:00Z", updated_lt="2026-01-03T11:00:00Z"
        )
    }
    for auth in AUTH_TYPES:  # every successful sync loaded the window into its own schema
        [table] = [a for a in artifacts if a.name == f"{schemas[f'leak_{auth}_ok']}.orders"]
        assert all(record_id in table.text for record_id in truth_ids), auth
    for control, where in (
        ("leak_basic_fail", "logs:dag_id=leak_basic_fail"),  # the connection id, in its task log
        (order_id, ".jsonl.gz"),  # a record id in the raw pages
        (order_id, "validated/part-00000.parquet"),  # and in the staged parts
        ("marker-bearer_fail", f"{schemas['leak_bearer_fail']}.sync_runs"),  # the echo, masked, kept
        ("marker-oauth2_fail", "logs:dag_id=leak_oauth2_fail"),
        ("ApiAuthError", "slack 0"),
        ("leak_", "metadata.dag_run"),
    ):
        assert any(where in name for name in found(control)), (
            f"control {control!r} not found in {where}; found in {found(control)}"
        )
    leaks = {label: found(value) for label, value in forms.items() if found(value)}
    assert leaks == {}, f"secrets found: {leaks}"
