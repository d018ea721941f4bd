-- Bookkeeping tables of the data path (generated from apisync.pipeline.bookkeeping.bookkeeping_ddl;
-- the pipeline creates them itself when missing; kept here for DBAs and migrations).

CREATE TABLE sync_runs (
	id BIGSERIAL NOT NULL, 
	stream TEXT NOT NULL, 
	destination_table TEXT, 
	interval_start TIMESTAMP WITH TIME ZONE NOT NULL, 
	interval_end TIMESTAMP WITH TIME ZONE NOT NULL, 
	run_id TEXT NOT NULL, 
	status TEXT NOT NULL, 
	records_pulled BIGINT, 
	records_deduped BIGINT, 
	records_repeated BIGINT, 
	records_quarantined BIGINT, 
	records_inserted BIGINT, 
	records_updated BIGINT, 
	records_unchanged BIGINT, 
	records_out_of_window BIGINT, 
	api_calls BIGINT, 
	api_429s BIGINT, 
	throttled_seconds FLOAT, 
	backoff_seconds FLOAT, 
	latency_p50_ms FLOAT, 
	latency_p95_ms FLOAT, 
	bytes_received BIGINT, 
	status_counts TEXT, 
	api_errors BIGINT, 
	latency_histogram TEXT, 
	api_not_modified BIGINT, 
	gx_seconds FLOAT, 
	duration_seconds FLOAT, 
	error TEXT, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE quarantine (
	id BIGSERIAL NOT NULL, 
	stream TEXT NOT NULL, 
	run_id TEXT NOT NULL, 
	interval_start TIMESTAMP WITH TIME ZONE NOT NULL, 
	interval_end TIMESTAMP WITH TIME ZONE NOT NULL, 
	record_key TEXT, 
	raw_page BIGINT, 
	raw_line BIGINT, 
	page_url TEXT, 
	raw_record TEXT NOT NULL, 
	failures JSONB NOT NULL, 
	quarantined_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_quarantine_stream_interval ON quarantine (stream, interval_start, interval_end);

CREATE TABLE apisync_columns (
	destination_table TEXT NOT NULL, 
	source_path TEXT NOT NULL, 
	column_name TEXT NOT NULL, 
	first_seen_run TEXT NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (destination_table, source_path), 
	CONSTRAINT uq_apisync_columns_column UNIQUE (destination_table, column_name)
);
