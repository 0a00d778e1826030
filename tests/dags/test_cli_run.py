"""`loyalist run` as a user runs it: the real loyalist_daily DAG through `airflow dags test`, one run per day.

A DAG run takes 30-60 s here; the range test runs two.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import airflow_env

LOYALIST = str(Path(sys.executable).with_name("loyalist"))


def _run(args: list[str], airflow_home: Path, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = airflow_env(airflow_home, LOYALIST_DATA_DIR=str(tmp_path / "data"), LOYALIST_DUCKDB_MEMORY_LIMIT="1GB",
                      **extra)
    return subprocess.run([LOYALIST, *args], env=env, capture_output=True, text=True, timeout=1800)


def test_run_a_range_runs_the_dag_for_each_day_and_writes_the_report(airflow_home, tmp_path, landing):
    proc = _run(["run", "--start", "2025-03-30", "--end", "2025-03-31"], airflow_home, tmp_path,
                LOYALIST_LANDING_DIR=str(landing))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ran loyalist_daily for 2 day(s), 2025-03-30 .. 2025-03-31" in proc.stdout
    assert "2/2" in proc.stderr  # the progress bar's last state
    for logical in ("2025-03-31", "2025-04-01"):
        assert (airflow_home / "runs" / f"loyalist_daily-{logical}.log").exists()
    assert (tmp_path / "data" / "reports" / "run-2025-03-31.html").exists()
    assert f"Run report: {tmp_path / 'data' / 'reports' / 'latest.html'}" in proc.stdout


def test_run_names_the_failed_day_and_its_log(airflow_home, tmp_path):
    # An empty landing zone: the freshness gate fails the run.
    (tmp_path / "empty").mkdir()
    proc = _run(["run", "2025-03-31"], airflow_home, tmp_path, LOYALIST_LANDING_DIR=str(tmp_path / "empty"))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the run for 2025-03-31 failed"), proc.stderr[-2000:]
    assert str(airflow_home / "runs" / "loyalist_daily-2025-04-01.log") in last
    assert "Traceback" not in proc.stderr
