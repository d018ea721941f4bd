"""docker-compose.yaml, checked structurally: no Docker engine runs here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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


# Secrets Airflow 3.3.2 must see identical in every component, else each generates its own:
# [api_auth] jwt_secret signs the execution-API tokens the scheduler hands to tasks (a worker with
# another one gets "Invalid auth token"); [core] fernet_key encrypts connections and variables in the
# metadata DB; [api] secret_key signs the api-server's requests for logs served by the workers.
SHARED_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY")
REQUIRED_FROM_ENV_FILE = re.compile(r"^\$\{(?P<var>[A-Z][A-Z0-9_]*):\?[^}]+\}$")
POOLS_IN_CONTAINER = "/opt/airflow/include/pools.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def pools_the_dags_use() -> dict[str, set[str]]:
    """{pool: {dag_id.task_id, …}} over every task of every DAG in dags/, parsed by Airflow's DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert dagbag.import_errors == {}, "\n".join(f"{k}: {v}" for k, v in dagbag.import_errors.items())
    assert dagbag.dags, "dags/ parsed to no DAGs"
    used: dict[str, set[str]] = {}
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.pool and task.pool != "default_pool":
                used.setdefault(task.pool, set()).add(f"{dag.dag_id}.{task.task_id}")
    return used


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
        if conn["conn_type"] == "apisync":
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
    """Like `make run`, the compose stack answers this machine only (issue 13 case 6)."""
    published = {}
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", f"{name} shares the host's network: every interface"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"
            published[str(port)] = name
    assert published.get("127.0.0.1:8080:8080") == "airflow-apiserver", published  # not vacuous


def test_secrets_files_are_ignored() -> None:
    for ignore in (".gitignore", ".dockerignore"):
        lines = (REPO_ROOT / ignore).read_text().split()
        assert {".env", ".venv/", "logs/", "airflow.db", "airflow.cfg"} <= set(lines), ignore


def _env_file_keys() -> set[str]:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}


@pytest.mark.parametrize("key", SHARED_SECRETS)
def test_every_component_gets_the_same_required_secret(compose: dict, key: str) -> None:
    """One value from .env for all, and `docker compose up` refuses to start without it."""
    values = {
        name: _env(compose["services"][name]).get(key) for name in (*AIRFLOW_COMPONENTS, "airflow-init")
    }
    assert len(set(values.values())) == 1, f"{key} differs between components: {values}"
    value = values["airflow-scheduler"]
    match = REQUIRED_FROM_ENV_FILE.match(str(value))
    assert match, (
        f"{key} is {value!r}: take it from .env as ${{VAR:?message}} so compose refuses to start without it"
    )
    assert match["var"] in _env_file_keys(), f".env.example does not list {match['var']} (for {key})"


def test_env_example_says_how_to_generate_each_secret(compose: dict) -> None:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    for key in SHARED_SECRETS:
        match = REQUIRED_FROM_ENV_FILE.match(str(_env(compose["services"]["airflow-scheduler"])[key]))
        assert match, key
        commands = [
            line for line in lines if line.startswith("#") and match["var"] in line and "python" in line
        ]
        assert commands, f".env.example gives no command generating {match['var']}"


def test_init_service_imports_the_pools_file(compose: dict) -> None:
    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert f"airflow pools import {POOLS_IN_CONTAINER}" in script, "airflow-init creates no pools"
    include_mount = [v for v in init["volumes"] if v.endswith(":/opt/airflow/include")]
    assert include_mount and include_mount[0].rsplit(":", 1)[0].endswith("/include"), init["volumes"]


def test_every_pool_a_dag_uses_is_declared(pools_the_dags_use: dict[str, set[str]]) -> None:
    from apisync.pools import declared_pools

    declared = declared_pools(REPO_ROOT / "include" / "pools.json")
    undeclared = {pool: sorted(tasks) for pool, tasks in pools_the_dags_use.items() if pool not in declared}
    assert not undeclared, f"pools used by DAGs but not in include/pools.json: {undeclared}"


def test_the_dags_use_the_accounts_api_pool(pools_the_dags_use: dict[str, set[str]]) -> None:
    """The collection above really finds pools: the mapped customers extract runs in one."""
    assert "customers_to_warehouse.sync_customers.extract" in pools_the_dags_use.get("accounts_api", set())


def test_pools_file_is_valid() -> None:
    from apisync.pools import declared_pools

    pools = declared_pools(REPO_ROOT / "include" / "pools.json")
    assert pools, "include/pools.json declares no pools"
    assert "default_pool" not in pools, "default_pool is Airflow's own: do not redeclare it"


def test_airflow_api_connection_logs_in_as_an_admin_the_api_server_knows(compose: dict) -> None:
    """sync_coverage calls the api-server as `airflow_api`; SimpleAuthManager (Airflow 3.3.2's default)
    would otherwise know only `admin`, with a password generated inside the api-server's container."""
    api = _env(compose["services"]["airflow-apiserver"])
    init = compose["services"]["airflow-init"]
    conn = json.loads(_env(compose["services"]["airflow-worker"])["AIRFLOW_CONN_AIRFLOW_API"])
    assert "AIRFLOW__CORE__AUTH_MANAGER" not in api, "the checks below are for SimpleAuthManager"
    users = dict(u.rsplit(":", 1) for u in api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
    assert users.get(conn["login"]) == "admin", f"{conn['login']} is not an admin in {users}"
    assert _env(init)["_AIRFLOW_WWW_USER_USERNAME"] == conn["login"]
    assert _env(init)["_AIRFLOW_WWW_USER_PASSWORD"] == conn["password"]
    passwords_file = Path(api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert _env(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(passwords_file)
    script = "\n".join(init["command"])
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script and "_AIRFLOW_WWW_USER_PASSWORD" in script, (
        "airflow-init does not write the login's password into the passwords file"
    )

    def volume_at(service: dict, path: Path) -> str | None:
        mounts = dict(reversed(v.rsplit(":", 1)) for v in service["volumes"])
        return mounts.get(str(path))

    shared = volume_at(init, passwords_file.parent)
    assert shared in compose["volumes"], f"{passwords_file.parent} is not on a named volume in airflow-init"
    assert volume_at(compose["services"]["airflow-apiserver"], passwords_file.parent) == shared


def test_simple_auth_manager_keeps_a_password_written_before_it_starts(tmp_path: Path) -> None:
    """What the init service relies on: the api-server reads the passwords file, it does not regenerate."""
    passwords_file = tmp_path / "passwords.json"
    passwords_file.write_text(json.dumps({"airflow": "from-the-env-file"}))
    probe = (
        "import json\n"
        "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager\n"
        "manager = SimpleAuthManager(); manager.init()\n"
        "print(json.dumps(manager.get_passwords()))\n"
    )
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "airflow:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
    }
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"airflow": "from-the-env-file"}


def test_the_image_installs_what_make_install_installs() -> None:
    """The Celery stack is a supported install: the image installs requirements-cluster.txt too."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    requirements = next(line for line in makefile.splitlines() if line.startswith("REQUIREMENTS :="))
    files = requirements.split(":=", 1)[1].split()
    assert "requirements-cluster.txt" in files
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for name in files:
        assert f"-r /opt/apisync/{name}" in dockerfile, f"the image does not install {name}"
    assert "-c /opt/apisync/constraints.txt" in dockerfile
    lock = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    for line in (REPO_ROOT / "requirements-cluster.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line in lock, f"{line} is not what constraints.txt locks"
