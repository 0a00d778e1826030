"""End to end: the real loyalist_daily DAG run by Airflow (`airflow dags test`) on generated data.

One scenario, in order: a first run loads all history and publishes; a rerun of the same interval,
with a BI-like reader querying the published copy from another process throughout, publishes
identical tables; a run fed garbage fails its gate, alerts the webhook, and leaves the published
copy untouched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from loyalist.pipeline import gx_project_root, published_path, table_counts
from loyalist.warehouse import connect

from ..conftest import SEASON
from .conftest import TRANSACTIONS_WITHOUT_LOAD_TIMES, VENV_BIN, airflow_env

RUN_DATE = "2025-04-01"  # the run at 2025-04-01 00:00 UTC covers [2025-03-31, 2025-04-01)

READER = """
import sys, time, duckdb
path, stop_file = sys.argv[1], sys.argv[2]
ok = errors = 0
import os
while not os.path.exists(stop_file):
    try:
        with duckdb.connect(path, read_only=True) as con:
            con.execute("select count(*), sum(revenue) from marts.customers").fetchone()
        ok += 1
    except Exception as exc:
        errors += 1
        print("reader error:", exc, file=sys.stderr)
    time.sleep(0.05)
print(ok, errors)
"""


def _run_dag(airflow_home, tmp_path, landing, **env_extra):
    env = airflow_env(airflow_home, LOYALIST_DATA_DIR=str(tmp_path / "data"), LOYALIST_LANDING_DIR=str(landing),
                      LOYALIST_DUCKDB_MEMORY_LIMIT="1GB", **env_extra)
    proc = subprocess.run([str(VENV_BIN / "airflow"), "dags", "test", "loyalist_daily", RUN_DATE], env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.stdout + proc.stderr


def _succeeded(log: str) -> bool:
    finished = [line for line in log.splitlines() if "DagRun Finished" in line]
    return bool(finished) and "state=success" in finished[-1]


def _marts_fingerprint(settings) -> dict[str, str]:
    with connect(settings, published_path(settings), read_only=True) as con:
        return {t: con.execute(f"select md5(string_agg(cast(x as varchar), '|' order by cast(x as varchar))) "
                               f"from ({sql}) x").fetchone()[0]
                for t, sql in (("customers", "select * from marts.customers"),
                               ("transactions", f"select {TRANSACTIONS_WITHOUT_LOAD_TIMES} from marts.transactions"))}


class _Webhook:
    def __init__(self):
        received = self.received = []

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def test_daily_dag_runs_reruns_under_readers_and_fails_safely(airflow_home, tmp_path, season_landing, settings):
    landing = tmp_path / "season"
    shutil.copytree(season_landing, landing)
    # 1. First run: all history, gates pass, published.
    log = _run_dag(airflow_home, tmp_path, landing)
    assert _succeeded(log), log[-6000:]
    assert "data_interval_start=2025-03-31" in log
    assert "marts_customers: passed" in log and "raw_load_manifest: passed" in log
    counts = table_counts(settings)
    csv_orders = sum(len(f.read_text(encoding="utf-8").splitlines()) - 1 for f in (landing / "orders").rglob("*.csv"))
    assert counts["raw.orders"] + counts["raw.orders__quarantine"] == csv_orders
    assert counts["marts.customers"] > 0.5 * SEASON.customers
    assert counts["ml.churn_scores"] > 0 and "ml_churn_scores: passed" in log
    assert counts["ml.reward_eligibility"] > 0 and "ml_reward_consent: passed" in log
    assert "marts_current_lifecycle: passed" in log
    with connect(settings, published_path(settings), read_only=True) as con:
        staged_orders, last_day = con.execute(
            "select count(distinct order_id), max(ordered_at)::date from raw.orders").fetchone()
        assert con.execute("select count(*) from marts.transactions").fetchone()[0] == staged_orders
        assert str(last_day) == "2025-03-31"
    assert (gx_project_root(settings) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
    # The report task wrote the day's run report and the dbt docs it links to.
    report = settings.data_dir / "reports" / "run-2025-03-31.html"
    assert report.exists() and (settings.data_dir / "reports" / "latest.html").exists()
    assert "Run health" in report.read_text(encoding="utf-8")
    assert (settings.data_dir / "docs" / "dbt" / "static_index.html").exists()
    first = _marts_fingerprint(settings)

    # 2. Rerun of the same interval while another process keeps reading the published copy.
    stop = tmp_path / "stop-reader"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(published_path(settings)), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = _run_dag(airflow_home, tmp_path, landing)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert _succeeded(log), log[-6000:]
    queries, errors = map(int, out.split())
    assert errors == 0 and queries > 50, err[-2000:]
    assert table_counts(settings) == counts
    assert _marts_fingerprint(settings) == first

    # 3. The weekly retrain DAG trains on the same warehouse and records its evaluation.
    env = airflow_env(airflow_home, LOYALIST_DATA_DIR=str(tmp_path / "data"), LOYALIST_LANDING_DIR=str(landing))
    proc = subprocess.run([str(VENV_BIN / "airflow"), "dags", "test", "loyalist_retrain", RUN_DATE], env=env,
                          capture_output=True, text=True, timeout=600)
    assert _succeeded(proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-5000:]
    with connect(settings, read_only=True) as con:
        kinds = {r[0] for r in con.execute("select distinct model_kind from ml.model_evaluations").fetchall()}
    assert kinds == {"churn", "clv"}

    # 4. A batch full of garbage: the gate fails, the alert fires, the published copy is untouched.
    published_bytes = hashlib.sha256(published_path(settings).read_bytes()).hexdigest()
    (landing / "orders" / "dt=2025-03-31" / "garbage.csv").write_text(
        "order_id,source_customer_id,ordered_at,net_amount\n" + "".join(f"G-{i},c,not-a-time,1\n" for i in range(80)),
        encoding="utf-8")
    hook = _Webhook()
    try:
        time.sleep(0.1)
        log = _run_dag(airflow_home, tmp_path, landing, LOYALIST_ALERT_WEBHOOK_URL=hook.url)
    finally:
        hook.server.shutdown()
    assert not _succeeded(log) and "state=failed" in log
    assert "raw_load_manifest: FAILED" in log and "quarantine_share" in log
    assert hashlib.sha256(published_path(settings).read_bytes()).hexdigest() == published_bytes
    assert [(r["dag_id"], r["task_id"]) for r in hook.received] == [("loyalist_daily", "validate_raw")]
    assert "quarantine_share" in hook.received[0]["error"]
