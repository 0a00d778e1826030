"""Backfilling day by day ends in the same published tables as one catch-up run for the last day."""

from __future__ import annotations

import subprocess

from loyalist.config import get_settings
from loyalist.contracts import ENTITIES
from loyalist.pipeline import published_path
from loyalist.warehouse import connect

from .conftest import TRANSACTIONS_WITHOUT_LOAD_TIMES, VENV_BIN, airflow_env

RAW_COLUMNS = {e.name: e.column_names + ["_source_file", "_row_in_file"] for e in ENTITIES.values()}


def _run(airflow_home, data_dir, landing, run_date):
    env = airflow_env(airflow_home, LOYALIST_DATA_DIR=str(data_dir), LOYALIST_LANDING_DIR=str(landing))
    proc = subprocess.run([str(VENV_BIN / "airflow"), "dags", "test", "loyalist_daily", run_date], env=env,
                          capture_output=True, text=True, timeout=600)
    finished = [line for line in (proc.stdout + proc.stderr).splitlines() if "DagRun Finished" in line]
    assert finished and "state=success" in finished[-1], (proc.stdout + proc.stderr)[-5000:]


def _fingerprint(data_dir, monkeypatch) -> dict[str, tuple]:
    monkeypatch.setenv("LOYALIST_DATA_DIR", str(data_dir))
    settings = get_settings()
    tables = {f"raw.{e}": ", ".join(f'"{c}"' for c in cols) for e, cols in RAW_COLUMNS.items()}
    tables |= {"marts.customers": "*", "marts.transactions": TRANSACTIONS_WITHOUT_LOAD_TIMES,
               "marts.satisfaction_monthly": "*",
               "marts.complaints": "*", "marts.feedback_topics_monthly": "*",
               "ml.feedback_classified": "feedback_id, updated_at, topic, sentiment, classifier_version"}
    with connect(settings, published_path(settings), read_only=True) as con:
        return {t: con.execute(f"select count(*), md5(string_agg(cast(x as varchar), '|' "
                               f"order by cast(x as varchar))) "
                               f"from (select {cols} from {t}) x").fetchone() for t, cols in tables.items()}


def test_day_by_day_backfill_equals_one_catch_up_run(airflow_home, tmp_path, landing, monkeypatch):
    # Two day-by-day runs are enough to prove it: the second one builds on the first one's state.
    for run_date in ("2025-03-31", "2025-04-01"):
        _run(airflow_home, tmp_path / "backfill", landing, run_date)
    _run(airflow_home, tmp_path / "catch_up", landing, "2025-04-01")
    assert _fingerprint(tmp_path / "backfill", monkeypatch) == _fingerprint(tmp_path / "catch_up", monkeypatch)
