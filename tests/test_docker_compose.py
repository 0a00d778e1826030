"""docker-compose.yml cannot start here (no Docker engine): check it statically."""

from __future__ import annotations

import re

import yaml

from loyalist.config import PROJECT_ROOT


def _compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_has_the_airflow_3_services_and_pinned_images():
    services = _compose()["services"]
    assert {"postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker"} <= set(services)
    for name, svc in services.items():
        image = svc.get("image", "")
        assert re.search(r":\d", image), f"{name}: image not pinned: {image!r}"
    assert services["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_every_variable_compose_uses_is_in_env_example():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.M))
    assert used <= defined, used - defined
