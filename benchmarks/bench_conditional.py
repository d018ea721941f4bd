"""Conditional requests benchmark: re-extracting a window whose data barely changed.

Against a sandbox with no rate limit: one extraction that keeps validators, then reruns of the same
window, staged in real directories (``extract_to_files``) and asking with the validators of the
one before (:func:`apisync.pipeline.conditional.extraction_validators`): once with nothing
changed, once after ``--changed`` records were updated, and once with the switch off. Prints:

    BENCH conditional_rerun case=<first|unchanged|changed|off> pages=<n> not_modified=<n>
        bytes=<n> seconds=<s>

    .venv/bin/python benchmarks/bench_conditional.py --records 50000 --page-size 500
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]
WINDOW = (
    datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    datetime.fromisoformat("2026-01-08T00:00:00+00:00"),
)


def _extract(raw_dir: Path, page_size: int, conditional: Any) -> dict[str, Any]:
    from apisync.http import ApiHook
    from apisync.spec import load_spec, render_window
    from apisync.staging.raw_pages import extract_to_files

    source = load_spec("orders").source
    hook = ApiHook(http_conn_id="bench_api")
    hook.conditional = conditional
    pages = hook.paginate(
        source.endpoint,
        params=render_window(source.params, *WINDOW, source.window_format),
        pagination={**source.pagination.model_dump(), "page_size": page_size},
        records_path=source.records_path or None,
    )
    started = time.perf_counter()
    manifest = extract_to_files(pages, raw_dir)
    stats = hook.stats()
    return {
        "pages": len(manifest["pages"]),
        "not_modified": stats["not_modified"],
        "bytes": stats["bytes"],
        "seconds": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--changed", type=int, default=10)
    args = parser.parse_args()

    from apisync.http.conditional import ConditionalPages
    from apisync.pipeline.conditional import extraction_validators
    from sandbox.testing import run_sandbox

    with (
        run_sandbox(records=args.records, max_page_size=args.page_size) as box,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ["AIRFLOW_CONN_BENCH_API"] = json.dumps(
            {
                "conn_type": "http",
                "host": box.url,
                "password": "sandbox-key",
                "extra": {"auth": {"type": "api_key"}},
            }
        )
        root = Path(tmp)
        previous = root / "first"
        for case in ("first", "unchanged", "changed", "off"):
            if case == "changed":
                box.mutate(args.changed, at="2026-01-07T12:00:00Z")
            conditional: ConditionalPages | None = None  # off
            if case == "first":
                conditional = ConditionalPages()  # nothing to ask with yet: keeps validators
            elif case in ("unchanged", "changed"):
                conditional = extraction_validators(previous)
            raw_dir = root / case
            result = _extract(raw_dir, args.page_size, conditional)
            previous = raw_dir
            print(
                f"BENCH conditional_rerun case={case} pages={result['pages']} "
                f"not_modified={result['not_modified']} bytes={result['bytes']} seconds={result['seconds']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
