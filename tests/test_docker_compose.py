"""docker-compose.yaml, checked structurally: no Docker engine runs here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from scripts.localstack import SANDBOX_SERVICES, connections_env

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_COMPONENTS = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_services_are_the_official_celery_shape_plus_ours(compose: dict) -> None:
    services = set(compose["services"])
    expected = {"postgres", "redis", "airflow-init", "warehouse", *AIRFLOW_COMPONENTS}
    expected |= {f"sandbox-{s.name}" for s in SANDBOX_SERVICES}
    assert expected <= services, f"missing: {sorted(expected - services)}"


def test_every_long_running_service_has_a_healthcheck(compose: dict) -> None:
    for name, service in compose["services"].items():
        if name == "airflow-init":
            continue
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no healthcheck"


def test_airflow_components_share_one_celery_config(compose: dict) -> None:
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = _env(compose["services"][name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        mounts = {v.rsplit(":", 1)[-1] for v in compose["services"][name]["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= mounts, name
    depends = compose["services"]["airflow-scheduler"]["depends_on"]
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert _env(compose["services"]["airflow-init"])["_AIRFLOW_DB_MIGRATE"] == "true"


def test_connections_match_what_the_dags_use(compose: dict) -> None:
    """Every connection `make run` defines is defined for the cluster too, pointing at compose hosts."""
    env = _env(compose["services"]["airflow-scheduler"])
    local = connections_env({s.name: f"http://127.0.0.1:{s.port}" for s in SANDBOX_SERVICES}, Path("/tmp"))
    missing = set(local) - set(env)
    assert not missing, f"compose lacks {sorted(missing)}"
    ports = {s.name: s.port for s in SANDBOX_SERVICES}
    for key in local:
        value = env[key]
        if not value.startswith("{"):
            continue
        conn = json.loads(value)
        if key == "AIRFLOW_CONN_AIRFLOW_API":  # Airflow's own API (sync_coverage), not a source
            assert conn["host"] == "http://airflow-apiserver:8080", key
            assert "airflow-apiserver" in compose["services"]
            continue
        if conn["conn_type"] == "http":
            host = conn["host"]
            service = host.split("//")[1].split(":")[0]
            assert service in compose["services"], f"{key} points at unknown service {service}"
            assert host.endswith(f":{ports[service.removeprefix('sandbox-')]}"), key
            backend = conn["extra"].get("rate_limit", {}).get("backend")
            assert backend == "redis", f"{key}: workers must share the rate budget through Redis"


def test_sandbox_services_match_the_local_stack(compose: dict) -> None:
    for svc in SANDBOX_SERVICES:
        service = compose["services"][f"sandbox-{svc.name}"]
        command = service["command"]
        assert command[command.index("--port") + 1] == str(svc.port)
        assert service["ports"] == [f"127.0.0.1:{svc.port}:{svc.port}"]


def test_published_ports_bind_loopback_only(compose: dict) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_secrets_files_are_ignored() -> None:
    for ignore in (".gitignore", ".dockerignore"):
        lines = (REPO_ROOT / ignore).read_text().split()
        assert {".env", ".venv/", "logs/", "airflow.db", "airflow.cfg"} <= set(lines), ignore
