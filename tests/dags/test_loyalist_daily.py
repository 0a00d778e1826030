"""End to end: the real loyalist_daily DAG run by Airflow (`airflow dags test`) on generated data."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from loyalist.config import get_settings
from loyalist.pipeline import published_path, table_counts
from loyalist.warehouse import connect

from ..conftest import TINY
from .conftest import VENV_BIN, airflow_env

RUN_DATE = "2025-04-01"  # the run at 2025-04-01 00:00 UTC covers [2025-03-31, 2025-04-01)


def _run_dag(airflow_home, tmp_path, landing, run_date=RUN_DATE):
    env = airflow_env(airflow_home, LOYALIST_DATA_DIR=str(tmp_path / "data"), LOYALIST_LANDING_DIR=str(landing),
                      LOYALIST_DUCKDB_MEMORY_LIMIT="1GB")
    proc = subprocess.run([str(VENV_BIN / "airflow"), "dags", "test", "loyalist_daily", run_date], env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "state=success" in log, log[-6000:]
    return log


def _marts_fingerprint(settings) -> dict[str, str]:
    with connect(settings, published_path(settings), read_only=True) as con:
        return {t: con.execute(f"select md5(string_agg(cast(x as varchar), '|' order by cast(x as varchar))) "
                               f"from marts.{t} x").fetchone()[0] for t in ("customers", "transactions")}


@pytest.fixture
def dag_settings(settings):
    return settings


def test_daily_dag_loads_history_builds_marts_and_reruns_idempotently(airflow_home, tmp_path, landing,
                                                                       dag_settings, monkeypatch):
    log = _run_dag(airflow_home, tmp_path, landing)
    assert "data_interval_start=2025-03-31" in log
    settings = get_settings()
    counts = table_counts(settings)
    csv_orders = sum(len(f.read_text(encoding="utf-8").splitlines()) - 1 for f in (landing / "orders").rglob("*.csv"))
    assert counts["raw.orders"] + counts["raw.orders__quarantine"] == csv_orders
    assert counts["marts.customers"] > 0.5 * TINY.customers
    with connect(settings, published_path(settings), read_only=True) as con:
        staged_orders, last_day = con.execute(
            "select count(distinct order_id), max(ordered_at)::date from raw.orders").fetchone()
        assert con.execute("select count(*) from marts.transactions").fetchone()[0] == staged_orders
        assert str(last_day) == "2025-03-31"
        assert con.execute("select count(*) from marts.transactions where customer_id is null").fetchone()[0] == 0
    first = _marts_fingerprint(settings)

    _run_dag(airflow_home, tmp_path, landing)  # same interval again
    assert table_counts(settings) == counts
    assert _marts_fingerprint(settings) == first


def test_failed_validation_stops_the_run_alerts_and_publishes_nothing(airflow_home, tmp_path, landing, dag_settings):
    day = landing / "orders" / "dt=2025-03-31"
    # A file where most rows break the contract: more than the allowed quarantine share.
    (day / "garbage.csv").write_text("order_id,source_customer_id,ordered_at,net_amount\n" +
                                     "".join(f"G-{i},c,not-a-time,1\n" for i in range(50)), encoding="utf-8")
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = airflow_env(airflow_home, LOYALIST_DATA_DIR=str(tmp_path / "data"), LOYALIST_LANDING_DIR=str(landing),
                          LOYALIST_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/hook")
        proc = subprocess.run([str(VENV_BIN / "airflow"), "dags", "test", "loyalist_daily", RUN_DATE], env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        server.shutdown()
    log = proc.stdout + proc.stderr
    assert "state=failed" in log
    assert "raw_load_manifest: FAILED" in log and "quarantine_share" in log
    assert not published_path(get_settings()).exists()
    assert [(r["dag_id"], r["task_id"]) for r in received] == [("loyalist_daily", "validate_raw")]
    assert "quarantine_share" in received[0]["error"]
