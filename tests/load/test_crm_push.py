"""CRM push against the real sandbox CRM over HTTP and a real warehouse (SQLite file, PostgreSQL).

The warehouse ``customers`` table is built with the columns the customers stream produces (from
include/streams/customers.yaml through the loader's own ``ensure_table``) and filled with the
sandbox's ground-truth customers, ~2% of which have emails the CRM rejects.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apisync.http import ApiHook
from apisync.http.errors import ApiAuthError
from apisync.load import warehouse_from_connection
from apisync.load.crm import (
    LOCAL_MISSING_ID,
    CrmPushResult,
    _Input,
    _Push,
    crm_push_errors_table,
    crm_push_state_table,
    load_mapping,
    push_contacts,
)
from apisync.load.schema import ensure_table
from apisync.spec import load_spec
from apisync.transform.naming import column_name
from apisync.transform.normalize import LINEAGE_COLUMNS
from tests.load.datapath_fixtures import Target

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
CRM_CONN = "crm_api"
WAREHOUSE_CONN = "warehouse_crm_test"
RECORDS = 250
# The CRM's email rule (HubSpot-like): local@domain.tld, no whitespace, one @.
VALID_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


# ---------------------------------------------------------------- fixtures


def customer_columns() -> dict[str, str]:
    """Columns of the warehouse table the customers stream loads (spec fields, arrays, lineage)."""
    spec = load_spec("customers")
    columns = {spec.column_for(path): f.type for path, f in spec.fields.items()}
    columns.update({column_name(path): "json" for path in spec.arrays})
    columns.update(LINEAGE_COLUMNS)
    return columns


def customer_row(record: dict[str, Any]) -> dict[str, Any]:
    def ts(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    now = datetime.now(UTC)
    return {
        "id": record["id"],
        "email": record["email"],
        "firstname": record["firstname"],
        "lastname": record["lastname"],
        "phone": record["phone"],
        "company": record["company"],
        "lifecyclestage": record["lifecyclestage"],
        "address_city": record["address"]["city"],
        "address_country": record["address"]["country"],
        "created_at": ts(record["createdAt"]),
        "updated_at": ts(record["updatedAt"]),
        "tags": json.dumps(record["tags"]),
        "_synced_at": now,
        "_source": "accounts_api:/api/customers",
        "_run_id": "seed",
        "_interval_start": ts("2026-01-01T00:00:00Z"),
        "_interval_end": ts("2026-01-08T00:00:00Z"),
    }


class Scene:
    """Sandbox CRM + warehouse + the two Airflow connections, and helpers to look at them."""

    def __init__(self, sb: Any, target: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.sb, self.target, self.monkeypatch, self.tmp_path = sb, target, monkeypatch, tmp_path
        self.set_crm_key(sb.api_key)
        url = target.engine.url.render_as_string(hide_password=False)
        extra: dict[str, Any] = {"sqlalchemy_url": url}
        if target.db_schema:
            extra["schema"] = target.db_schema
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", json.dumps({"conn_type": "generic", "extra": extra})
        )
        columns = customer_columns()
        with target.engine.begin() as conn:
            self.customers = ensure_table(
                conn, "customers", columns, primary_key=["id"], db_schema=target.db_schema
            )
            conn.execute(self.customers.insert(), [customer_row(r) for r in sb.truth("customers")])

    def set_crm_key(self, key: str) -> None:
        conn = {
            "conn_type": "http",
            "host": self.sb.url,
            "password": key,
            "extra": {
                "auth": {"type": "bearer"},
                "idempotent_post_paths": [UPSERT_PATH],
                "rate_limit": {"path": str(self.tmp_path / "ratelimit.sqlite")},
            },
        }
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{CRM_CONN.upper()}", json.dumps(conn))

    def push(self, run_id: str) -> CrmPushResult:
        return push_contacts(
            warehouse_from_connection(WAREHOUSE_CONN),
            ApiHook(http_conn_id=CRM_CONN),
            load_mapping("contacts"),
            run_id=run_id,
        )

    def rows(self, query: sa.Select) -> list[dict[str, Any]]:
        with self.target.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def errors(self, *, open_only: bool = True) -> dict[str, dict[str, Any]]:
        table = crm_push_errors_table(self.target.db_schema)
        query = sa.select(table)
        if open_only:
            query = query.where(table.c.resolved_at.is_(None))
        return {row["record_key"]: row for row in self.rows(query)}

    def watermark(self) -> str | None:
        table = crm_push_state_table(self.target.db_schema)
        rows = self.rows(sa.select(table.c.watermark).where(table.c.mapping == "contacts"))
        return rows[0]["watermark"] if rows else None

    def warehouse_emails(self) -> dict[str, str]:
        return {
            r["id"]: r["email"] for r in self.rows(sa.select(self.customers.c.id, self.customers.c.email))
        }

    def crm_by_email(self) -> dict[str, dict[str, Any]]:
        return {c["properties"]["email"]: c for c in self.sb.crm_contacts()}

    def audit(self) -> list[dict[str, Any]]:
        from apisync.load.audit import sync_runs_table

        table = sync_runs_table(self.target.db_schema)
        return self.rows(sa.select(table).where(table.c.stream == "contacts_to_crm").order_by(table.c.id))

    def update_customer(self, key: str, **values: Any) -> None:
        with self.target.engine.begin() as conn:
            conn.execute(self.customers.update().where(self.customers.c.id == key).values(**values))

    def upserts(self) -> int:
        return int(self.sb.stats()["crm_upserts"])


@pytest.fixture
def scene(sandbox: Any, warehouse: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Scene:
    return Scene(sandbox(records=RECORDS), warehouse, monkeypatch, tmp_path)


# ---------------------------------------------------------------- tests


def test_push_accounts_for_every_row_and_retries_errors(scene: Scene) -> None:
    emails = scene.warehouse_emails()
    invalid = {key for key, email in emails.items() if not VALID_EMAIL.fullmatch(email)}
    assert len(emails) == RECORDS and 0 < len(invalid) < 20

    first = scene.push("run-1")

    assert (first.selected, first.changed, first.retried) == (RECORDS, RECORDS, 0)
    assert first.batches == 3 and first.api_calls == 3  # 100 + 100 + 50 inputs
    assert first.pushed_ok == RECORDS - len(invalid) and first.errored == len(invalid)
    assert first.inserted == first.pushed_ok and first.updated == 0
    crm = scene.crm_by_email()
    assert set(crm) == {emails[k] for k in emails.keys() - invalid}
    assert all(len(c["properties"]) >= 5 for c in crm.values())
    errors = scene.errors()
    assert set(errors) == invalid
    for key, row in errors.items():
        assert row["category"] == "VALIDATION_ERROR"
        assert f"Email address {emails[key]} is invalid" in row["message"]
        assert row["attempts"] == 1 and row["run_id"] == "run-1"
        assert row["payload"]["id"] == emails[key] and row["payload"]["idProperty"] == "email"
        assert row["payload"]["properties"]["email"] == emails[key]
    assert scene.watermark() is not None
    [audit] = scene.audit()
    assert audit["status"] == "success" and audit["records_pulled"] == RECORDS
    assert audit["records_quarantined"] == len(invalid) and audit["records_inserted"] == first.pushed_ok
    assert audit["api_calls"] == 3 and audit["api_429s"] == 0

    # Nothing changed: no changed row is pushed, only the open errors are tried again (one call).
    watermark = scene.watermark()
    upserts = scene.upserts()
    second = scene.push("run-2")
    assert (second.changed, second.retried, second.selected) == (0, len(invalid), len(invalid))
    assert second.api_calls == 1 and second.pushed_ok == 0 and second.errored == len(invalid)
    assert scene.upserts() == upserts  # the CRM applied nothing new
    assert scene.watermark() == watermark
    errors = scene.errors()
    assert set(errors) == invalid
    assert all(row["attempts"] == 2 and row["run_id"] == "run-2" for row in errors.values())

    # Fix two bad emails: one as a sync would (updated_at moves), one in place.
    bumped, in_place, *still_bad = sorted(invalid)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    scene.update_customer(bumped, email=f"fixed{bumped}@example.com", updated_at=later)
    scene.update_customer(in_place, email=f"fixed{in_place}@example.com")
    third = scene.push("run-3")
    assert (third.changed, third.retried) == (1, len(invalid) - 1)
    assert third.pushed_ok == 2 and third.errored == len(still_bad) and third.resolved == 2
    assert set(scene.errors()) == set(still_bad)
    resolved = scene.errors(open_only=False)
    for key in (bumped, in_place):
        assert resolved[key]["resolved_at"] is not None and resolved[key]["resolution"] == "pushed"
        assert resolved[key]["resolved_run_id"] == "run-3"
        assert f"fixed{key}@example.com" in scene.crm_by_email()
    assert all(scene.errors()[key]["attempts"] == 3 for key in still_bad)
    assert datetime.fromisoformat(scene.watermark()) == later
    assert len(scene.crm_by_email()) == RECORDS - len(still_bad)
    assert [a["run_id"] for a in scene.audit()] == ["run-1", "run-2", "run-3"]


def test_pushing_the_same_rows_twice_leaves_one_record_each(scene: Scene) -> None:
    first = scene.push("run-1")
    contacts = {c["id"]: c for c in scene.sb.crm_contacts()}
    with scene.target.engine.begin() as conn:  # forget the watermark: everything is selected again
        conn.execute(sa.delete(crm_push_state_table(scene.target.db_schema)))

    second = scene.push("run-2")

    assert second.changed == RECORDS and second.pushed_ok == first.pushed_ok
    assert second.inserted == 0 and second.updated == first.pushed_ok  # CRM "new": false
    again = {c["id"]: c for c in scene.sb.crm_contacts()}
    assert again.keys() == contacts.keys()
    assert {k: c["properties"] for k, c in again.items()} == {k: c["properties"] for k, c in contacts.items()}
    assert len({c["properties"]["email"] for c in again.values()}) == len(again)


def test_rate_limited_crm_loses_nothing(scene: Scene) -> None:
    scene.sb.configure(crm_rate=2, crm_burst=1)
    scene.sb.storm(1.5)  # every request answers 429 for a moment, then the limiter paces

    result = scene.push("run-1")

    assert result.api_429s >= 1 and result.throttled_seconds > 0
    assert result.selected == result.pushed_ok + result.errored == RECORDS
    emails = scene.warehouse_emails()
    assert set(scene.crm_by_email()) == {emails[k] for k in emails.keys() - set(scene.errors())}
    [audit] = scene.audit()
    assert audit["api_429s"] == result.api_429s and audit["throttled_seconds"] > 0
    assert audit["api_calls"] == result.api_calls > 3


def test_rejected_credentials_fail_loudly_and_keep_the_watermark(scene: Scene) -> None:
    first = scene.push("run-1")
    watermark, errors = scene.watermark(), scene.errors()
    later = datetime(2026, 3, 1, tzinfo=UTC)
    changed = sorted(scene.warehouse_emails())[:10]
    for key in changed:
        scene.update_customer(key, lifecyclestage="customer", updated_at=later)
    scene.set_crm_key("not-a-valid-key")

    with pytest.raises(ApiAuthError, match="401"):
        scene.push("run-2")

    assert scene.watermark() == watermark
    assert scene.errors() == errors
    failed = scene.audit()[-1]
    assert failed["status"] == "failed" and "401" in failed["error"] and failed["run_id"] == "run-2"

    scene.set_crm_key(scene.sb.api_key)
    retry = scene.push("run-3")
    assert retry.changed == 10 and retry.retried == first.errored - len(set(changed) & set(errors))
    assert datetime.fromisoformat(scene.watermark()) == later


def test_duplicate_and_missing_ids_are_split_or_recorded(scene: Scene) -> None:
    emails = scene.warehouse_emails()
    valid = sorted(k for k, e in emails.items() if VALID_EMAIL.fullmatch(e))
    older, newer, empty = valid[0], valid[1], valid[2]
    t = datetime(2026, 2, 1, tzinfo=UTC)
    scene.update_customer(older, email="shared@example.com", firstname="Older", updated_at=t)
    scene.update_customer(newer, email="shared@example.com", firstname="Newer", updated_at=t + timedelta(1))
    scene.update_customer(empty, email=None)

    result = scene.push("run-1")

    assert result.selected == result.pushed_ok + result.errored == RECORDS
    assert result.batches == 4  # the second "shared@example.com" waits for a batch of its own
    assert scene.crm_by_email()["shared@example.com"]["properties"]["firstname"] == "Newer"
    missing = scene.errors()[empty]
    assert missing["category"] == LOCAL_MISSING_ID and "email" in missing["message"]


def test_errors_map_to_inputs_by_context_ids_or_message() -> None:
    batch = [_Input(key=str(i), crm_id=f"u{i}@example.com", payload={}) for i in range(3)]
    by_id = {item.crm_id.casefold(): [i] for i, item in enumerate(batch)}
    by_index = {"context": {"inputIndex": ["2"], "id": ["u0@example.com"]}}
    by_ids = {"context": {"ids": ["U1@Example.com"]}}
    by_message = {"message": 'Property values were not valid: [{"message":"Email address u0@example.com"}]'}
    nothing = {"message": "something broke"}

    assert _Push._error_inputs(by_index, batch, by_id) == {2}
    assert _Push._error_inputs(by_ids, batch, by_id) == {1}
    assert _Push._error_inputs(by_message, batch, by_id) == {0}
    assert _Push._error_inputs(nothing, batch, by_id) == set()


class CrashingHook(ApiHook):
    """A real hook whose worker dies (KeyboardInterrupt-like) before its Nth request is sent."""

    def __init__(self, *args: Any, crash_before: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_before = crash_before

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.stats()["requests"] + 1 >= self.crash_before:
            raise RuntimeError("worker killed mid-push")
        return super().request(*args, **kwargs)


def test_crash_mid_push_repeats_idempotent_upserts(scene: Scene) -> None:
    hook = CrashingHook(http_conn_id=CRM_CONN, crash_before=2)
    with pytest.raises(RuntimeError, match="killed"):
        push_contacts(warehouse_from_connection(WAREHOUSE_CONN), hook, load_mapping("contacts"), "run-1")
    applied = scene.crm_by_email()
    assert 90 < len(applied) <= 100  # the first batch reached the CRM, nothing was recorded
    assert scene.watermark() is None and scene.errors() == {}
    assert scene.audit()[-1]["status"] == "failed"

    result = scene.push("run-2")

    assert result.selected == RECORDS == result.pushed_ok + result.errored
    assert result.updated == len(applied) and result.inserted == result.pushed_ok - len(applied)
    crm = scene.sb.crm_contacts()
    assert len(crm) == result.pushed_ok == len({c["properties"]["email"] for c in crm})


def test_errors_of_deleted_rows_are_resolved_as_missing(scene: Scene) -> None:
    scene.push("run-1")
    gone = sorted(scene.errors())[0]
    with scene.target.engine.begin() as conn:
        conn.execute(sa.delete(scene.customers).where(scene.customers.c.id == gone))

    result = scene.push("run-2")

    assert gone not in scene.errors() and result.resolved == 1
    row = scene.errors(open_only=False)[gone]
    assert row["resolution"] == "source row missing" and row["resolved_run_id"] == "run-2"


def test_rerun_with_nothing_changed_and_no_open_errors_makes_no_call(scene: Scene) -> None:
    invalid = [k for k, e in scene.warehouse_emails().items() if not VALID_EMAIL.fullmatch(e)]
    with scene.target.engine.begin() as conn:
        conn.execute(sa.delete(scene.customers).where(scene.customers.c.id.in_(invalid)))
    first = scene.push("run-1")
    assert first.errored == 0 and first.pushed_ok == RECORDS - len(invalid)
    watermark, upserts = scene.watermark(), scene.upserts()

    second = scene.push("run-2")

    assert (second.selected, second.api_calls, second.batches) == (0, 0, 0)
    assert scene.upserts() == upserts and scene.watermark() == watermark
    assert scene.audit()[-1]["records_pulled"] == 0 and scene.audit()[-1]["status"] == "success"
