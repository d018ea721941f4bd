"""scripts/cluster.py's shared environment: what every component of `make cluster` must agree on.

The distributed end-to-end test (tests/e2e/test_cluster.py) runs the launcher for real; these
checks pin the contract it documents without starting anything, and tie it to docker-compose.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from scripts.cluster import cluster_env, cluster_secrets, redis_db_url, worker_command, worker_hostname
from scripts.localstack import REPO_ROOT, SANDBOX_SERVICES

URLS = {s.name: f"http://127.0.0.1:{s.port}" for s in SANDBOX_SERVICES}


def _env(home: Path, **kwargs: object) -> dict[str, str]:
    return cluster_env(
        home,
        metadata_url="postgresql://postgres@127.0.0.1:5432/apisync_cluster",
        redis_url="redis://127.0.0.1:6379",
        sandbox_urls=URLS,
        api_port=18080,
        **kwargs,  # type: ignore[arg-type]
    )


def test_secrets_are_generated_once_per_home_and_kept_private(tmp_path: Path) -> None:
    first = cluster_secrets(tmp_path)
    assert set(first) == {
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    }
    assert all(len(value) >= 32 for value in first.values())
    assert cluster_secrets(tmp_path) == first, "a restart must reuse the secrets (Fernet-encrypted data)"
    assert (tmp_path / "cluster-secrets.json").stat().st_mode & 0o077 == 0
    assert cluster_secrets(tmp_path / "other") != first

    from cryptography.fernet import Fernet

    Fernet(first["AIRFLOW__CORE__FERNET_KEY"].encode())  # a valid key, not just a random string


def test_the_launcher_shares_the_secrets_compose_requires(tmp_path: Path) -> None:
    """The keys `make cluster` shares are exactly those compose makes every component take from .env."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())
    common = compose["x-airflow-common"]["environment"]
    required = {key for key, value in common.items() if isinstance(value, str) and ":?" in value}
    assert required == set(cluster_secrets(tmp_path))


def test_every_component_gets_celery_the_api_and_the_secrets(tmp_path: Path) -> None:
    env = _env(tmp_path, broker_db=3, budget_db=4, broker_prefix="p:")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/apisync_cluster"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "p:"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1", "the UI must not listen on every interface"
    for key, value in cluster_secrets(tmp_path).items():
        assert env[key] == value


def test_every_source_connection_is_on_the_redis_budget(tmp_path: Path) -> None:
    env = _env(tmp_path, budget_db=4, connection_extras={"accounts_api": {"defer_after_s": 3}})
    conns = {key: json.loads(value) for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}
    sources = {
        key: c for key, c in conns.items() if c["conn_type"] == "apisync" and "auth" in c.get("extra", {})
    }
    assert set(sources) >= {f"AIRFLOW_CONN_{s.name.upper()}_API" for s in SANDBOX_SERVICES}
    for key, conn in sources.items():
        assert conn["extra"]["rate_limit"]["backend"] == "redis", key
        assert conn["extra"]["rate_limit"]["redis_url"] == "redis://127.0.0.1:6379/4", key
    # A declared limit survives the move to Redis; extras for one connection stay on it.
    assert sources["AIRFLOW_CONN_TRACKER_API"]["extra"]["rate_limit"]["requests"] == 20
    assert sources["AIRFLOW_CONN_ACCOUNTS_API"]["extra"]["defer_after_s"] == 3
    assert "defer_after_s" not in sources["AIRFLOW_CONN_SHOP_API"]["extra"]


def test_workers_have_distinct_names(monkeypatch) -> None:
    assert worker_command(1, 2)[:5] == ["airflow", "celery", "worker", "-H", "worker-1@%h"]
    assert worker_command(2, 2)[4] == "worker-2@%h"
    monkeypatch.setenv("APISYNC_WORKER_NAME", "worker-2")
    assert worker_hostname() == "worker-2"
    monkeypatch.delenv("APISYNC_WORKER_NAME")
    assert worker_hostname()


def test_redis_db_url_replaces_the_database() -> None:
    assert redis_db_url("redis://127.0.0.1:6379", 2) == "redis://127.0.0.1:6379/2"
    assert redis_db_url("redis://127.0.0.1:6379/0", 5) == "redis://127.0.0.1:6379/5"
    assert redis_db_url("redis://:pw@host:6380/1", 0) == "redis://:pw@host:6380/0"
