"""Normalize raw API pages into typed, flat, deduplicated Parquet parts (pandas + pyarrow).

Owns the normalization itself (flattening, coercion to the spec's types, child tables, in-chunk
dedupe, lineage). The row format it writes (columns, parts, manifests, raw pages) belongs to
:mod:`apisync.staging`. May import: staging, spec, naming, errors, redaction; never quality, load,
crm or pipeline.

Names resolve lazily so that a DAG file importing the pipeline does not pay for pandas.
"""

from __future__ import annotations

from apisync.lazy_exports import lazy_exports

_EXPORTS = {
    "NormalizeError": "apisync.errors",
    "TooManyColumnsError": "apisync.errors",
    "UnknownFieldsError": "apisync.errors",
    "Lineage": "apisync.transform.normalize",
    "NormalizeResult": "apisync.transform.normalize",
    "normalize_files": "apisync.transform.normalize",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
