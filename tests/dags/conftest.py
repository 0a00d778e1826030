"""Airflow for tests: a private AIRFLOW_HOME (SQLite metadata DB) created once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loyalist.config import PROJECT_ROOT

VENV_BIN = Path(sys.executable).parent
# marts.transactions' load metadata: when ingestion loaded each order (and a key made from that time)
# and when a dbt run wrote its row, which a rerun or a backfill changes while every other column stays
# the same
TRANSACTIONS_WITHOUT_LOAD_TIMES = "* exclude (loaded_at, lines_loaded_at, lines_load_key, changed_at)"


def airflow_env(airflow_home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        **extra,
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    proc = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=airflow_env(home),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home
