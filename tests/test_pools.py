"""apisync.pools: include/pools.json is the one pool definition; a bad file or unknown pool fails loudly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from apisync.errors import SpecError
from apisync.pools import Pool, check_pool, declared_pools, pools_file

REPO_ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pools.json"
    path.write_text(text)
    return path


def test_the_repo_pools_file_reads() -> None:
    pools = declared_pools(REPO_ROOT / "include" / "pools.json")
    assert pools["accounts_api"] == Pool("accounts_api", 2, pools["accounts_api"].description, False)
    assert pools["accounts_api"].description


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected an object of pools, got list"),
        ('{"a": 3}', "pool 'a' needs a whole number of slots >= 1, got None"),
        ('{"a": {"description": "d"}}', "pool 'a' needs a whole number of slots >= 1, got None"),
        ('{"a": {"slots": 0, "description": "d"}}', "got 0"),
        ('{"a": {"slots": "2", "description": "d"}}', "got '2'"),
        ('{"a": {"slots": true, "description": "d"}}', "got True"),
        ('{"a": {"slots": 2}}', "pool 'a' needs a description"),
        ('{"a": {"slots": 2, "description": "d", "include_deferred": "false"}}', "include_deferred"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "entry-not-an-object",
        "no-slots",
        "zero-slots",
        "string-slots",
        "bool-slots",
        "no-description",
        "string-include-deferred",
    ],
)
def test_a_malformed_file_is_a_spec_error_naming_it(tmp_path: Path, text: str, says: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        declared_pools(path)
    assert str(path) in str(caught.value)
    assert says in str(caught.value)


def test_include_deferred_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"a": {"slots": 3, "description": "d", "include_deferred": True}}))
    assert declared_pools(path) == {"a": Pool("a", 3, "d", True)}


def test_check_pool_on_an_unknown_name_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    include = tmp_path / "include"
    include.mkdir()
    (include / "pools.json").write_text(json.dumps({"known": {"slots": 1, "description": "d"}}))
    monkeypatch.setenv("APISYNC_INCLUDE_DIR", str(include))
    assert pools_file() == include / "pools.json"
    assert check_pool("known") == Pool("known", 1, "d")
    with pytest.raises(SpecError) as caught:
        check_pool("nope")
    message = str(caught.value)
    assert "pool 'nope' is not declared in" in message
    assert str(include / "pools.json") in message
    assert "['known']" in message


def test_sync_stream_with_an_undeclared_pool_fails_at_parse_time(tmp_path: Path) -> None:
    """The DAG file does not import: an import error naming the pool and the pools file, not a DAG
    whose tasks Airflow would log, every scheduler loop, as "will not be scheduled"."""
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags" / "customers_to_warehouse.py", dags / "customers_nope.py")
    source = (dags / "customers_nope.py").read_text()
    assert 'pool="accounts_api"' in source
    (dags / "customers_nope.py").write_text(source.replace('pool="accounts_api"', 'pool="nope"'))

    bag = DagBag(dag_folder=str(dags))
    assert bag.dags == {}
    (error,) = bag.import_errors.values()
    assert "pool 'nope' is not declared in" in error
    assert str(REPO_ROOT / "include" / "pools.json") in error


def test_the_same_dag_with_the_declared_pool_parses(tmp_path: Path) -> None:
    """The control for the test above: only the pool name differs."""
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags" / "customers_to_warehouse.py", dags / "customers.py")
    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["customers_to_warehouse"]
