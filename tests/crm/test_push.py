"""CRM push against the real sandbox CRM over HTTP and a real warehouse (SQLite file, PostgreSQL).

The warehouse ``customers`` table is built with the columns the customers stream produces (from
include/streams/customers.yaml through the loader's own ``ensure_table``) and filled with the
sandbox's ground-truth customers, ~2% of which have emails the CRM rejects. What the CRM holds is
read back from the sandbox (``/_sandbox/crm/contacts``), the calls it received from its stats.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from apisync.crm import push as crm_push
from apisync.crm.mapping import CrmMapping, load_mapping
from apisync.crm.push import LOCAL_MISSING_ID, CrmPushResult
from apisync.crm.state import crm_push_errors_table, crm_push_versions_table
from apisync.errors import ApiAuthError, CrmMappingError, CrmPushError
from apisync.http import ApiHook
from apisync.load import warehouse_from_connection
from apisync.load.schema import ensure_table
from apisync.naming import column_name
from apisync.pipeline.crm_push import run_push
from apisync.spec import include_dir, load_spec
from apisync.staging.columns import LINEAGE_COLUMNS
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
        self.truth = sb.truth("customers")
        with target.engine.begin() as conn:
            self.customers = ensure_table(
                conn, "customers", customer_columns(), primary_key=["id"], db_schema=target.db_schema
            )
            conn.execute(self.customers.insert(), [customer_row(r) for r in self.truth])

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

    def push(
        self, run_id: str, *, hook: ApiHook | None = None, mapping: CrmMapping | None = None
    ) -> CrmPushResult:
        """The push as the DAG's task runs it: ``sync_runs`` row included (stream contacts_to_crm)."""
        target = warehouse_from_connection(WAREHOUSE_CONN)
        return run_push(
            mapping or load_mapping("contacts"),
            target.engine,
            hook or ApiHook(http_conn_id=CRM_CONN),
            run_id,
            db_schema=target.db_schema,
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

    def accepted(self) -> dict[str, dict[str, Any]]:
        """The push state: record key -> the version the CRM accepted."""
        table = crm_push_versions_table(self.target.db_schema)
        if not self.target.has_table(table.name):
            return {}
        return {r["record_key"]: r for r in self.rows(sa.select(table).where(table.c.mapping == "contacts"))}

    def warehouse_emails(self) -> dict[str, str]:
        return {
            r["id"]: r["email"] for r in self.rows(sa.select(self.customers.c.id, self.customers.c.email))
        }

    def valid_keys(self) -> set[str]:
        return {k for k, e in self.warehouse_emails().items() if e and VALID_EMAIL.fullmatch(e)}

    def crm_by_email(self) -> dict[str, dict[str, Any]]:
        return {c["properties"]["email"]: c for c in self.sb.crm_contacts()}

    def audit(self) -> list[dict[str, Any]]:
        from apisync.load.audit import sync_runs_table

        table = sync_runs_table(self.target.db_schema)
        return self.rows(sa.select(table).where(table.c.stream == "contacts_to_crm").order_by(table.c.id))

    def update_customer(self, key: str, **values: Any) -> None:
        with self.target.engine.begin() as conn:
            conn.execute(self.customers.update().where(self.customers.c.id == key).values(**values))

    def insert_customers(self, rows: list[dict[str, Any]]) -> None:
        with self.target.engine.begin() as conn:
            conn.execute(self.customers.insert(), rows)

    def upserts(self) -> int:
        return int(self.sb.stats()["crm_upserts"])

    def assert_crm_matches_warehouse(self) -> None:
        """Every valid warehouse row is a CRM contact holding its current values; nothing else is."""
        crm_contacts = self.crm_by_email()
        rows = self.rows(sa.select(self.customers))
        expected = {r["email"]: r for r in rows if r["email"] and VALID_EMAIL.fullmatch(r["email"])}
        assert set(crm_contacts) == set(expected)
        for email, row in expected.items():
            properties = crm_contacts[email]["properties"]
            held = (properties.get("firstname"), properties.get("company"), properties.get("city"))
            assert held == (
                row["firstname"],
                row["company"],
                row["address_city"],
            ), email


@pytest.fixture
def scene(sandbox: Any, warehouse: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Scene:
    return Scene(sandbox(records=RECORDS), warehouse, monkeypatch, tmp_path)


def new_customers(scene: Scene, count: int, updated_at: datetime) -> list[dict[str, Any]]:
    """Customers the CRM has never seen, as a backfill of an old interval would load them."""
    rows = []
    for n, record in enumerate(scene.truth[:count]):
        row = customer_row(record)
        row.update(id=f"b{n:04d}", email=f"backfilled{n}@example.com", updated_at=updated_at)
        row.update(created_at=updated_at, _run_id="backfill")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- tests


def test_push_accounts_for_every_row_and_retries_errors(scene: Scene) -> None:
    emails = scene.warehouse_emails()
    invalid = emails.keys() - scene.valid_keys()
    assert len(emails) == RECORDS and 0 < len(invalid) < 20

    first = scene.push("run-1")

    assert (first.scanned, first.selected, first.changed, first.retried) == (RECORDS, RECORDS, RECORDS, 0)
    assert first.batches == 3 and first.api_calls == 3  # 100 + 100 + 50 inputs
    assert first.pushed_ok == RECORDS - len(invalid) and first.errored == len(invalid)
    assert first.inserted == first.pushed_ok and first.updated == 0
    assert (first.accepted_keys_before, first.accepted_keys_after) == (0, first.pushed_ok)
    crm_contacts = scene.crm_by_email()
    assert set(crm_contacts) == {emails[k] for k in emails.keys() - invalid}
    assert all(len(c["properties"]) >= 5 for c in crm_contacts.values())
    errors = scene.errors()
    assert set(errors) == invalid
    for key, row in errors.items():
        assert row["category"] == "VALIDATION_ERROR"
        assert f"Email address {emails[key]} is invalid" in row["message"]
        assert row["attempts"] == 1 and row["run_id"] == "run-1"
        assert row["payload"]["id"] == emails[key] and row["payload"]["idProperty"] == "email"
        assert row["payload"]["properties"]["email"] == emails[key]
    accepted = scene.accepted()
    assert set(accepted) == emails.keys() - invalid
    updated_at = {r["id"]: r["updatedAt"] for r in scene.truth}
    assert all(
        datetime.fromisoformat(row["changed_value"])
        == datetime.fromisoformat(updated_at[k].replace("Z", "+00:00"))
        and row["run_id"] == "run-1"
        for k, row in accepted.items()
    )
    [audit] = scene.audit()
    assert audit["status"] == "success" and audit["records_pulled"] == RECORDS
    assert audit["records_quarantined"] == len(invalid) and audit["records_inserted"] == first.pushed_ok
    assert audit["api_calls"] == 3 and audit["api_429s"] == 0

    # Nothing changed: no accepted row is sent again, only the open errors are tried (one call).
    upserts = scene.upserts()
    second = scene.push("run-2")
    assert (second.changed, second.retried, second.selected) == (0, len(invalid), len(invalid))
    assert second.api_calls == 1 and second.pushed_ok == 0 and second.errored == len(invalid)
    assert scene.upserts() == upserts  # the CRM applied nothing new
    assert scene.accepted() == accepted
    errors = scene.errors()
    assert set(errors) == invalid
    assert all(row["attempts"] == 2 and row["run_id"] == "run-2" for row in errors.values())

    # Fix two bad emails: one as a sync would (updated_at moves), one in place.
    bumped, in_place, *still_bad = sorted(invalid)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    scene.update_customer(bumped, email=f"fixed{bumped}@example.com", updated_at=later)
    scene.update_customer(in_place, email=f"fixed{in_place}@example.com")
    third = scene.push("run-3")
    assert (third.changed, third.retried) == (0, len(invalid))
    assert third.pushed_ok == 2 and third.errored == len(still_bad) and third.resolved == 2
    assert set(scene.errors()) == set(still_bad)
    resolved = scene.errors(open_only=False)
    for key in (bumped, in_place):
        assert resolved[key]["resolved_at"] is not None and resolved[key]["resolution"] == "pushed"
        assert resolved[key]["resolved_run_id"] == "run-3"
        assert f"fixed{key}@example.com" in scene.crm_by_email()
        assert scene.accepted()[key]["run_id"] == "run-3"
    assert all(scene.errors()[key]["attempts"] == 3 for key in still_bad)
    assert datetime.fromisoformat(scene.accepted()[bumped]["changed_value"]) == later
    assert len(scene.crm_by_email()) == RECORDS - len(still_bad)
    assert third.accepted_keys_after == RECORDS - len(still_bad)
    assert [a["run_id"] for a in scene.audit()] == ["run-1", "run-2", "run-3"]
    scene.assert_crm_matches_warehouse()


def test_backfilled_rows_older_than_everything_pushed_reach_the_crm(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sync recent hours, then backfill last month: the old rows must still reach the CRM."""
    monkeypatch.setattr(crm_push, "READ_CHUNK_ROWS", 7)  # many keyset pages, boundaries anywhere
    invalid = scene.warehouse_emails().keys() - scene.valid_keys()
    scene.push("run-recent")
    upserts = scene.upserts()
    last_month = datetime(2025, 12, 1, tzinfo=UTC)  # older than every row pushed so far
    backfill = new_customers(scene, 30, last_month)
    scene.insert_customers(backfill)
    rewritten = sorted(scene.valid_keys())[:5]  # the backfill also rewrites rows with an older version
    for key in rewritten:
        scene.update_customer(key, company=f"Backfilled {key}", updated_at=last_month)

    result = scene.push("run-backfill")

    assert result.scanned == RECORDS + 30
    assert (result.changed, result.retried) == (35, len(invalid))
    assert result.pushed_ok == 35 and result.inserted == 30 and result.updated == 5
    assert scene.upserts() == upserts + 35  # only those: nothing already accepted went again
    assert result.api_calls == 1  # 35 + the open errors fit one batch
    crm_contacts = scene.crm_by_email()
    for row in backfill:
        assert crm_contacts[row["email"]]["properties"]["firstname"] == row["firstname"]
    scene.assert_crm_matches_warehouse()
    assert set(scene.accepted()) == scene.valid_keys()
    audit = scene.audit()[-1]
    assert audit["interval_start"].date() == last_month.date()  # the range of changes sent


def test_a_property_changed_in_place_is_pushed_and_a_touch_is_not(scene: Scene) -> None:
    valid = sorted(scene.valid_keys())
    scene.push("run-1")
    invalid = RECORDS - len(valid)

    scene.update_customer(valid[0], firstname="Renamed")  # updated_at does not move
    renamed = scene.push("run-2")
    assert (renamed.changed, renamed.pushed_ok) == (1, 1)
    assert renamed.api_calls == 1 and renamed.updated == 1
    email = scene.warehouse_emails()[valid[0]]
    assert scene.crm_by_email()[email]["properties"]["firstname"] == "Renamed"

    upserts = scene.upserts()
    scene.update_customer(valid[1], updated_at=datetime(2026, 3, 1, tzinfo=UTC))  # same values
    touched = scene.push("run-3")
    assert (touched.changed, touched.retried, touched.pushed_ok) == (0, invalid, 0)
    assert scene.upserts() == upserts
    scene.assert_crm_matches_warehouse()


def test_a_property_added_to_the_mapping_is_pushed_to_every_contact(scene: Scene, tmp_path: Path) -> None:
    scene.push("run-1")
    raw = yaml.safe_load((include_dir() / "crm" / "contacts.yaml").read_text())
    raw["properties"]["createdate"] = "created_at"
    path = tmp_path / "crm" / "contacts.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(raw))

    result = scene.push("run-2", mapping=load_mapping(path))

    valid = scene.valid_keys()
    assert result.changed == len(valid) and result.pushed_ok == len(valid) == result.updated
    created = {r["id"]: r["createdAt"].replace("Z", "") for r in scene.truth}
    emails = scene.warehouse_emails()
    crm_contacts = scene.crm_by_email()
    assert all(crm_contacts[emails[k]]["properties"]["createdate"].startswith(created[k]) for k in valid)


def test_pushing_the_same_rows_twice_leaves_one_record_each(scene: Scene) -> None:
    first = scene.push("run-1")
    contacts = {c["id"]: c for c in scene.sb.crm_contacts()}
    with scene.target.engine.begin() as conn:  # forget the push state: everything is selected again
        conn.execute(sa.delete(crm_push_versions_table(scene.target.db_schema)))

    second = scene.push("run-2")

    assert second.changed == RECORDS - first.errored and second.pushed_ok == first.pushed_ok
    assert second.inserted == 0 and second.updated == first.pushed_ok  # CRM "new": false
    again = {c["id"]: c for c in scene.sb.crm_contacts()}
    assert again.keys() == contacts.keys()
    assert {k: c["properties"] for k, c in again.items()} == {k: c["properties"] for k, c in contacts.items()}
    assert len({c["properties"]["email"] for c in again.values()}) == len(again)


def test_rate_limited_crm_loses_nothing(scene: Scene) -> None:
    scene.sb.configure(crm_rate=2, crm_burst=1)
    scene.sb.storm(1.5)  # every request answers 429 for a moment, then the limiter paces

    result = scene.push("run-1")

    # The storm was waited out backing off; throttled_seconds is the limiter's waits only (issue 11).
    assert result.api_429s >= 1 and result.backoff_seconds > 0 and result.throttled_seconds >= 0
    assert result.selected == result.pushed_ok + result.errored == RECORDS
    emails = scene.warehouse_emails()
    assert set(scene.crm_by_email()) == {emails[k] for k in emails.keys() - set(scene.errors())}
    [audit] = scene.audit()
    assert audit["api_429s"] == result.api_429s and audit["throttled_seconds"] == result.throttled_seconds
    assert audit["api_calls"] == result.api_calls > 3


def test_rejected_credentials_fail_loudly_and_record_nothing(scene: Scene) -> None:
    first = scene.push("run-1")
    accepted, errors = scene.accepted(), scene.errors()
    changed = sorted(scene.warehouse_emails())[:10]
    for key in changed:
        scene.update_customer(key, company=f"Renamed {key}")
    scene.set_crm_key("not-a-valid-key")

    with pytest.raises(ApiAuthError, match="401"):
        scene.push("run-2")

    assert scene.accepted() == accepted
    assert scene.errors() == errors
    failed = scene.audit()[-1]
    assert failed["status"] == "failed" and "401" in failed["error"] and failed["run_id"] == "run-2"

    scene.set_crm_key(scene.sb.api_key)
    retry = scene.push("run-3")
    assert retry.changed == len(set(changed) - set(errors)) and retry.retried == first.errored
    assert {k for k, row in scene.accepted().items() if row["run_id"] == "run-3"} == set(changed) - set(
        errors
    )
    scene.assert_crm_matches_warehouse()


def test_duplicate_ids_newest_row_wins_and_missing_ids_are_recorded(scene: Scene) -> None:
    valid = sorted(scene.valid_keys())
    newer, older, empty = valid[0], valid[1], valid[2]  # key order is the opposite of change order
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

    # The older row changes (its updated_at does not move): both go again, the newer one last.
    scene.update_customer(older, company="Changed")
    again = scene.push("run-2")
    assert again.changed == 2 and again.pushed_ok == 2
    contact = scene.crm_by_email()["shared@example.com"]["properties"]
    assert contact["firstname"] == "Newer" and contact["company"] == "Changed"  # merged; newest last
    quiet = scene.push("run-3")
    assert quiet.changed == 0  # the group is accepted as it is: not sent again


class DyingHook(ApiHook):
    """A real hook whose worker dies at its Nth request: before sending it, or once it is answered."""

    def __init__(self, *args: Any, dies_at: int, after_answer: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dies_at, self.after_answer = dies_at, after_answer

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.stats()["requests"] + 1 < self.dies_at:
            return super().request(*args, **kwargs)
        if self.after_answer:
            super().request(*args, **kwargs)  # the CRM applied the batch; its answer is lost
        raise RuntimeError("worker killed mid-push")


def test_crash_after_the_crm_answered_repeats_that_batch(scene: Scene) -> None:
    hook = DyingHook(http_conn_id=CRM_CONN, dies_at=2, after_answer=True)
    with pytest.raises(RuntimeError, match="killed"):
        scene.push("run-1", hook=hook)
    recorded, first_errors = scene.accepted(), scene.errors()
    applied = scene.crm_by_email()
    assert 90 < len(recorded) <= 100 and 180 < len(applied) <= 200  # batch 2 applied, not recorded
    assert scene.audit()[-1]["status"] == "failed"

    result = scene.push("run-2")

    assert (result.changed, result.retried) == (RECORDS - 100, len(first_errors))  # batch 1 recorded
    assert result.updated == len(applied) - len(recorded)  # batch 2 again: "new": false
    assert result.inserted == result.pushed_ok - result.updated
    crm_contacts = scene.sb.crm_contacts()
    assert (
        len(crm_contacts) == len(scene.valid_keys()) == len({c["properties"]["email"] for c in crm_contacts})
    )
    assert set(scene.accepted()) == scene.valid_keys()
    scene.assert_crm_matches_warehouse()


def test_crash_before_a_call_loses_nothing_and_sends_nothing_twice(scene: Scene) -> None:
    hook = DyingHook(http_conn_id=CRM_CONN, dies_at=2, after_answer=False)
    with pytest.raises(RuntimeError, match="killed"):
        scene.push("run-1", hook=hook)
    first_errors = scene.errors()
    assert (
        90 < len(scene.accepted()) + len(first_errors) == 100 == len(scene.crm_by_email()) + len(first_errors)
    )

    result = scene.push("run-2")

    assert (result.changed, result.retried) == (RECORDS - 100, len(first_errors))
    assert scene.upserts() == len(scene.valid_keys())  # no contact was upserted twice
    scene.assert_crm_matches_warehouse()


class BlockingHook(ApiHook):
    """A real hook that holds its first request until released: a push that is still running."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sending, self.release = threading.Event(), threading.Event()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.sending.set()
        assert self.release.wait(60), "never released"
        return super().request(*args, **kwargs)


def test_a_second_push_of_the_same_mapping_fails_before_sending(scene: Scene) -> None:
    hook = BlockingHook(http_conn_id=CRM_CONN)
    outcome: dict[str, Any] = {}
    running = threading.Thread(target=lambda: outcome.update(result=scene.push("run-1", hook=hook)))
    running.start()
    try:
        assert hook.sending.wait(30)
        with pytest.raises(CrmPushError, match="another push"):
            scene.push("run-2")
        assert scene.upserts() == 0  # the running push is held before its first call
        assert scene.audit()[-1]["run_id"] == "run-2" and scene.audit()[-1]["status"] == "failed"
    finally:
        hook.release.set()
        running.join(60)
    assert outcome["result"].pushed_ok == len(scene.valid_keys())
    assert scene.push("run-3").selected == RECORDS - len(scene.valid_keys())  # lock released
    scene.assert_crm_matches_warehouse()


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
    invalid = scene.warehouse_emails().keys() - scene.valid_keys()
    with scene.target.engine.begin() as conn:
        conn.execute(sa.delete(scene.customers).where(scene.customers.c.id.in_(invalid)))
    first = scene.push("run-1")
    assert first.errored == 0 and first.pushed_ok == RECORDS - len(invalid)
    accepted, upserts = scene.accepted(), scene.upserts()

    second = scene.push("run-2")

    assert (second.scanned, second.selected, second.api_calls, second.batches) == (first.pushed_ok, 0, 0, 0)
    assert scene.upserts() == upserts and scene.accepted() == accepted
    assert scene.audit()[-1]["records_pulled"] == 0 and scene.audit()[-1]["status"] == "success"


def test_a_watermark_table_of_an_older_deployment_is_ignored(scene: Scene) -> None:
    legacy = sa.Table(
        "crm_push_state",
        sa.MetaData(schema=scene.target.db_schema),
        sa.Column("mapping", sa.Text(), primary_key=True),
        sa.Column("changed_column", sa.Text(), nullable=False),
        sa.Column("watermark", sa.Text()),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
    )
    with scene.target.engine.begin() as conn:
        legacy.create(conn)
        conn.execute(
            legacy.insert().values(
                mapping="contacts",
                changed_column="updated_at",
                watermark="2026-01-07T23:52:40+00:00",  # every row is older
                run_id="old",
                moved_at=datetime.now(UTC),
            )
        )

    result = scene.push("run-1")

    assert result.changed == RECORDS  # per-key state starts empty: every row goes once
    assert scene.rows(sa.select(legacy))[0]["watermark"] == "2026-01-07T23:52:40+00:00"
    scene.assert_crm_matches_warehouse()


def test_a_source_key_that_is_not_unique_is_refused(scene: Scene, tmp_path: Path) -> None:
    with scene.target.engine.begin() as conn:
        ensure_table(conn, "people", customer_columns(), primary_key=None, db_schema=scene.target.db_schema)
    raw = yaml.safe_load((include_dir() / "crm" / "contacts.yaml").read_text())
    raw["source"]["table"] = "people"
    path = tmp_path / "contacts.yaml"
    path.write_text(yaml.safe_dump(raw))

    with pytest.raises(CrmMappingError, match="neither its primary key nor a unique index"):
        scene.push("run-1", mapping=load_mapping(path))
    assert scene.upserts() == 0
