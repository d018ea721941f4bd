"""The row format every stage shares: where a window's files live, what they hold, how to read them.

Owns the staging layout (:mod:`~apisync.staging.layout`: ``raw``, ``normalized``, ``validated``),
the raw page files and their manifest (:mod:`~apisync.staging.raw_pages`), the columns every part
carries (:mod:`~apisync.staging.columns`), which column each source key of a table lands in
(:mod:`~apisync.staging.column_map`), the logical types as Arrow/pandas types
(:mod:`~apisync.staging.logical_types`), Parquet part I/O (:mod:`~apisync.staging.parts`), the
stage manifests (:mod:`~apisync.staging.manifests`), the read-ahead/write-behind threads the
stages overlap their I/O with (:mod:`~apisync.staging.overlap`) and the race-safe creation and
upgrade of the warehouse tables the stages write (:mod:`~apisync.staging.tables`).

transform writes this format, quality and load read it, the pipeline and CRM push compose them:
all of them import staging, staging imports none of them. May import: errors, redaction, spec, naming.

Names resolve lazily so that a DAG file importing the pipeline does not pay for pandas or pyarrow.
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "ColumnMap": "apisync.staging.column_map",
    "stream_column_maps": "apisync.staging.column_map",
    "ERRORS": "apisync.staging.columns",
    "INTERNAL_COLUMNS": "apisync.staging.columns",
    "LINE": "apisync.staging.columns",
    "LINEAGE_COLUMNS": "apisync.staging.columns",
    "PAGE": "apisync.staging.columns",
    "PARENT_ROW": "apisync.staging.columns",
    "POSITION": "apisync.staging.columns",
    "ROW": "apisync.staging.columns",
    "RunPaths": "apisync.staging.layout",
    "window_key": "apisync.staging.layout",
    "NULLABLE_PANDAS_TYPES": "apisync.staging.logical_types",
    "TIMESTAMP_TYPE": "apisync.staging.logical_types",
    "arrow_type": "apisync.staging.logical_types",
    "read_normalized_manifest": "apisync.staging.manifests",
    "read_validated_manifest": "apisync.staging.manifests",
    "write_normalized_manifest": "apisync.staging.manifests",
    "write_validated_manifest": "apisync.staging.manifests",
    "WriteBehind": "apisync.staging.overlap",
    "read_ahead": "apisync.staging.overlap",
    "RowMask": "apisync.staging.parts",
    "clear_dir": "apisync.staging.parts",
    "read_parquet": "apisync.staging.parts",
    "read_part": "apisync.staging.parts",
    "read_table": "apisync.staging.parts",
    "row_flags": "apisync.staging.parts",
    "write_table": "apisync.staging.parts",
    "PageLike": "apisync.staging.raw_pages",
    "RawPage": "apisync.staging.raw_pages",
    "copy_pages": "apisync.staging.raw_pages",
    "extract_to_files": "apisync.staging.raw_pages",
    "iter_raw_pages": "apisync.staging.raw_pages",
    "read_manifest": "apisync.staging.raw_pages",
    "read_page": "apisync.staging.raw_pages",
    "write_manifest": "apisync.staging.raw_pages",
    "write_page": "apisync.staging.raw_pages",
    "ensure_table_columns": "apisync.staging.tables",
    "lock_table_creation": "apisync.staging.tables",
    "table_exists_or_lock": "apisync.staging.tables",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
