"""
### Contacts → CRM

Whenever a sync updates the warehouse table `customers` (its asset `warehouse://customers`), push
the new and changed rows to the CRM as contacts: HubSpot-style batch upsert
`POST /crm/v3/objects/contacts/batch/upsert`, at most 100 inputs per call, matched on `email`, with
the properties mapped in `include/crm/contacts.yaml`.

- "New/changed" = rows whose mapped payload the CRM has not accepted yet, per record key in table
  `crm_push_versions`: new rows, rows a backfill wrote with an older `updated_at`, values fixed in
  place. Each answered batch is recorded in one transaction, so a crash or a failed call re-sends at
  most the batch in flight (upserts are idempotent by email). One push per mapping at a time (lock).
- Records the CRM rejects (207 Multi-Status `errors[]`) go to table `crm_push_errors` with the
  payload, category and the CRM's message; they are retried on every run and marked resolved once
  they go through. Any other 4xx (bad key, malformed batch) fails the task and records nothing for
  that batch.
- Each run appends a `sync_runs` row (stream `contacts_to_crm`): rows selected, inserted/updated in
  the CRM, errored (as quarantined), API calls, 429s and seconds throttled.
- CRM connection: `crm_api` (http; host = CRM base URL, password = private-app token, extras
  `{"auth": {"type": "bearer"}, "idempotent_post_paths": ["/crm/v3/objects/contacts/batch/upsert"]}`;
  the rate limit is learned from the `X-HubSpot-RateLimit-*` headers unless `rate_limit` is set).
- Warehouse connection: `warehouse_default` (holds `customers` and the tables above).
- Alerts: Slack `slack_alerts` and email `smtp_alerts` after the last retry.
"""

from __future__ import annotations

from airflow.sdk import dag

from apisync.defaults import START_DATE, sync_default_args
from apisync.pipeline import push_mapping, warehouse_asset


@dag(
    schedule=[warehouse_asset("customers")],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=sync_default_args(),
    tags=["apisync", "sync", "crm", "contacts"],
    doc_md=__doc__,
)
def contacts_to_crm() -> None:
    push_mapping("contacts", crm_conn_id="crm_api", warehouse_conn_id="warehouse_default")


contacts_to_crm()
