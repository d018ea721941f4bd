"""kubernetes/pod_template.yaml, checked structurally against docker-compose.yaml: no cluster runs here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.test_docker_compose import SHARED_SECRETS

REPO_ROOT = Path(__file__).resolve().parents[1]
POD_TEMPLATE = REPO_ROOT / "kubernetes" / "pod_template.yaml"
REFERENCE = re.compile(r"^\$\((?P<var>[A-Z_][A-Z0-9_]*)\)$")
AIRFLOW_OWN_API = "AIRFLOW_CONN_AIRFLOW_API"  # Airflow's REST API (sync_coverage), not a rate-limited source


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    return yaml.safe_load(POD_TEMPLATE.read_text())


@pytest.fixture(scope="module")
def base(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    return container


@pytest.fixture(scope="module")
def env(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{name: entry} in the container's order (Kubernetes expands $(VAR) only from earlier entries)."""
    entries = {e["name"]: e for e in base["env"]}
    assert len(entries) == len(base["env"]), "an env var is defined twice"
    return entries


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose_env(compose: dict[str, Any]) -> dict[str, str]:
    return compose["x-airflow-common"]["environment"]


def _from_secret(entry: dict[str, Any]) -> bool:
    return "value" not in entry and bool(entry.get("valueFrom", {}).get("secretKeyRef", {}).get("name"))


def _defined_before(env: dict[str, dict[str, Any]], var: str, user: str) -> bool:
    names = list(env)
    return var in env and names.index(var) < names.index(user)


def _json_connections(env: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads(entry["value"])
        for name, entry in env.items()
        if name.startswith("AIRFLOW_CONN_") and str(entry.get("value", "")).startswith("{")
    }


def test_it_is_a_pod_with_the_base_container_first(pod: dict[str, Any]) -> None:
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert pod["spec"]["containers"][0]["name"] == "base", "the KubernetesExecutor runs the task in `base`"


def test_same_image_as_compose(base: dict[str, Any], compose: dict[str, Any]) -> None:
    image = compose["x-airflow-common"]["image"]  # ${AIRFLOW_IMAGE_NAME:-<default>}
    default = re.fullmatch(r"\$\{AIRFLOW_IMAGE_NAME:-(?P<image>[^}]+)\}", image)
    assert default, image
    assert base["image"] == default["image"]


def test_same_connection_ids_as_compose(env: dict[str, dict[str, Any]], compose_env: dict[str, str]) -> None:
    ours = {k for k in env if k.startswith("AIRFLOW_CONN_")}
    theirs = {k for k in compose_env if k.startswith("AIRFLOW_CONN_")}
    assert ours == theirs, f"only in compose: {sorted(theirs - ours)}; only here: {sorted(ours - theirs)}"


def _without_redis_url(extra: dict[str, Any]) -> dict[str, Any]:
    rate_limit = {k: v for k, v in extra.get("rate_limit", {}).items() if k != "redis_url"}
    return {**extra, "rate_limit": rate_limit} if "rate_limit" in extra else extra


def test_same_auth_and_rate_limits_as_compose(
    env: dict[str, dict[str, Any]], compose_env: dict[str, str]
) -> None:
    """Everything but the credentials, the hosts and where the Redis budget lives."""
    connections = _json_connections(env)
    assert len(connections) >= 6, sorted(connections)
    for name, conn in connections.items():
        theirs = json.loads(compose_env[name])
        assert conn["conn_type"] == theirs["conn_type"], name
        assert _without_redis_url(conn.get("extra", {})) == _without_redis_url(theirs.get("extra", {})), name


def test_every_http_connection_is_on_one_redis_budget(env: dict[str, dict[str, Any]]) -> None:
    """Pods share no disk: a SQLite budget would be one per pod, so N pods would send N times the rate."""
    urls = {}
    for name, conn in _json_connections(env).items():
        if conn["conn_type"] != "apisync" or name == AIRFLOW_OWN_API:
            continue
        rate_limit = conn.get("extra", {}).get("rate_limit", {})
        assert rate_limit.get("backend") == "redis", f"{name}: pods must share the rate budget through Redis"
        urls[name] = rate_limit.get("redis_url")
    assert len(urls) >= 5, urls
    assert len(set(urls.values())) == 1, f"the connections use different Redis budgets: {urls}"
    (url,) = set(urls.values())
    reference = REFERENCE.match(str(url))
    if reference:
        var = reference["var"]
        assert all(_defined_before(env, var, name) for name in urls), f"{var} must be defined before use"
        entry = env[var]
        assert _from_secret(entry) or str(entry["value"]).startswith("redis://"), entry
    else:
        assert str(url).startswith("redis://"), url


def test_the_airflow_keys_come_from_one_secret(env: dict[str, dict[str, Any]]) -> None:
    secrets = set()
    for key in SHARED_SECRETS:
        assert key in env, f"{key} missing: every component needs the same value"
        assert _from_secret(env[key]), f"{key} must come from a Secret, not a literal value"
        secrets.add(env[key]["valueFrom"]["secretKeyRef"]["name"])
    assert len(secrets) == 1, f"the Airflow keys come from several Secrets: {secrets}"


def test_no_credential_is_written_in_the_template(
    env: dict[str, dict[str, Any]], compose_env: dict[str, str]
) -> None:
    """A connection is either a Secret as a whole, or JSON whose login/password are $(VAR) from a Secret."""
    for name, entry in env.items():
        if not name.startswith("AIRFLOW_CONN_"):
            continue
        if "value" not in entry:
            assert _from_secret(entry), f"{name}: neither a value nor a Secret"
            continue
        value = str(entry["value"])
        assert value.startswith("{"), f"{name}: a URI holds its credentials inline; take it from a Secret"
        conn = json.loads(value)
        for field in ("login", "password"):
            if field not in conn:
                continue
            reference = REFERENCE.match(str(conn[field]))
            assert reference, f"{name}.{field} is a literal; reference a Secret-backed variable as $(VAR)"
            var = reference["var"]
            assert _defined_before(env, var, name), f"{name}.{field}: {var} must be defined above it"
            assert _from_secret(env[var]), f"{name}.{field}: {var} does not come from a Secret"
    text = POD_TEMPLATE.read_text()
    for name, value in compose_env.items():
        if name.startswith("AIRFLOW_CONN_") and value.startswith("{"):
            password = json.loads(value).get("password", "")
        elif name.startswith("AIRFLOW_CONN_"):
            password = urlparse(value).password or ""
        else:
            continue
        if password and not password.startswith("${"):
            assert f'"{password}"' not in text and f":{password}@" not in text, (
                f"compose's {name} password is here"
            )


def test_staging_is_shared_by_every_pod(
    base: dict[str, Any], pod: dict[str, Any], env: dict[str, Any]
) -> None:
    url = urlparse(env["APISYNC_STAGING_URL"]["value"])
    if url.scheme in {"s3", "gs", "gcs", "abfs", "az"}:
        return
    assert url.scheme == "file", url
    mounts = [m for m in base["volumeMounts"] if Path(url.path).is_relative_to(m["mountPath"])]
    assert mounts, f"{url.path} is on no volume: each pod would stage to its own disk"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    volume = volumes[max(mounts, key=lambda m: len(m["mountPath"]))["name"]]
    assert "persistentVolumeClaim" in volume, f"staging volume {volume} is not a shared claim"


def test_same_code_paths_and_python_path_as_compose(
    base: dict[str, Any], env: dict[str, Any], compose_env: dict[str, str], compose: dict[str, Any]
) -> None:
    compose_mounts = {v.rsplit(":", 1)[-1] for v in compose["x-airflow-common"]["volumes"]}
    ours = {m["mountPath"] for m in base["volumeMounts"]}
    code = {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"}
    assert code <= compose_mounts and code <= ours, ours
    for key in ("PYTHONPATH", "GX_ANALYTICS_ENABLED", "AIRFLOW__CORE__LOAD_EXAMPLES"):
        assert env[key]["value"] == compose_env[key], key
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]["value"].endswith("/execution/")
    assert env["AIRFLOW__CORE__EXECUTOR"]["value"] == "KubernetesExecutor"
