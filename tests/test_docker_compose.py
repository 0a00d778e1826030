"""docker-compose.yml cannot start here (no Docker engine): check it, its Dockerfile and its docs statically.

What is checked is what would break a user's `docker compose up`: the YAML, the Airflow 3 services and
executor, pinned images, variables without a value, the image built from the lock file, and that
docs/deployment.md names only services and variables that exist.
"""

from __future__ import annotations

import re

import yaml

from loyalist.config import PROJECT_ROOT

AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"}


def _text(name: str) -> str:
    return (PROJECT_ROOT / name).read_text(encoding="utf-8")


def _compose() -> dict:
    return yaml.safe_load(_text("docker-compose.yml"))


def _env_example() -> dict[str, str]:
    return dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", _text(".env.example"), flags=re.M))


def test_compose_is_valid_yaml_with_the_airflow_3_services():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "redis"} | AIRFLOW_SERVICES
    commands = {name: " ".join(services[name]["command"]) for name in AIRFLOW_SERVICES}
    assert commands["airflow-init"] == "airflow db migrate"
    assert commands["airflow-apiserver"].startswith("airflow api-server")  # Airflow 3: no `webserver`
    assert commands["airflow-scheduler"] == "airflow scheduler"
    assert commands["airflow-dag-processor"] == "airflow dag-processor"  # a separate process in Airflow 3
    assert commands["airflow-triggerer"] == "airflow triggerer"
    assert commands["airflow-worker"].startswith("airflow celery worker")
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert {"postgres-db", "warehouse"} <= set(compose["volumes"])


def test_every_airflow_service_shares_one_configuration():
    services = _compose()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379"), name
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        # asyncpg is not in uv.lock: the async engine must name a driver that is (psycopg 3).
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "${AIRFLOW_JWT_SECRET}", name  # shared, from .env
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/loyalist/dags", name
        assert env["LOYALIST_DATA_DIR"] == "/data" and env["LOYALIST_LANDING_DIR"] == "/landing", name
        volumes = services[name]["volumes"]
        assert "warehouse:/data" in volumes and any(v.endswith(":/landing") for v in volumes), name
        assert services[name]["env_file"] == ".env", name


def test_images_are_pinned():
    services = _compose()["services"]
    for name, svc in services.items():
        image = svc.get("image", "")
        assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+[\w.-]*", image), f"{name}: image not pinned: {image!r}"
        assert "latest" not in image, name
    base = re.findall(r"^FROM\s+(\S+)", _text("Dockerfile"), flags=re.M)
    assert base and all(re.search(r":\d+\.\d+\.\d+", b) for b in base), base


def test_image_is_built_from_the_lock_file_with_the_celery_provider():
    services = _compose()["services"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name
    dockerfile = _text("Dockerfile")
    assert "COPY pyproject.toml uv.lock" in dockerfile
    syncs = re.findall(r"uv sync ([^\n\\&]*)", dockerfile)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    # the provider is pinned and cannot move locked versions (the lock is its constraints file)
    assert re.search(r"-c /tmp/constraints.txt\s*\\?\s*\"apache-airflow-providers-celery==\d+\.\d+\.\d+\" "
                     r"\"celery\[redis\]==5\.5\.\d+\"", dockerfile)
    # a later exact `uv sync` would uninstall the provider again
    assert all("--inexact" in s for s in syncs[1:]), syncs
    for folder in ("loyalist", "ml", "expectations", "dbt_project", "dags"):
        assert re.search(rf"^COPY {folder} {folder}$", dockerfile, flags=re.M), folder
    entry = _text("docker/entrypoint.sh")
    assert "AIRFLOW_ADMIN_PASSWORD" in entry and 'exec "$@"' in entry


def test_every_variable_compose_uses_is_in_env_example():
    text = _text("docker-compose.yml")
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    example = _env_example()
    assert used <= set(example), used - set(example)
    # secrets have placeholders, never real-looking values
    for secret in ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET"):
        assert example[secret] in ("change-me", ""), secret


def test_deployment_docs_name_only_real_services_variables_and_targets():
    docs = _text("docs/deployment.md")
    services = set(_compose()["services"])
    named_services = set(re.findall(r"`((?:airflow-[a-z-]+)|postgres|redis)`", docs))
    assert named_services == services, named_services ^ services  # each documented, none invented
    env_vars = set(re.findall(r"\b((?:LOYALIST|AIRFLOW|POSTGRES)_[A-Z0-9_]+)\b", docs))
    known = set(_env_example()) | {"AIRFLOW_HOME"}
    for source in ("docker-compose.yml", "scripts/e2e_airflow.py"):
        known |= set(re.findall(r"\b(AIRFLOW__[A-Z0-9_]+)\b", _text(source)))
    known |= set(re.findall(r"\"(LOYALIST_[A-Z0-9_]+)\"", _text("loyalist/config.py")))
    # `LOYALIST_PG_*` in the docs: a prefix of known variables
    unknown = {v for v in env_vars if v not in known and not (v.endswith("_") and any(k.startswith(v) for k in known))}
    assert not unknown, unknown
    makefile = _text("Makefile")
    for target in re.findall(r"`make ([a-z0-9-]+)", docs):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"docs name `make {target}`, the Makefile lacks it"
