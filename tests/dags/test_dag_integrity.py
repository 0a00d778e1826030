"""DagBag integrity: every DAG imports cleanly, cheaply, and follows the project's conventions."""

from __future__ import annotations

import subprocess
import sys

from loyalist.config import PROJECT_ROOT

from .conftest import airflow_env

CHECK = """
import json, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=%r)
took = time.perf_counter() - started
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "parse_s": took, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
        "retries": [t.retries for t in dag.tasks], "tasks": sorted(t.task_id for t in dag.tasks),
        "timetable": type(dag.timetable).__name__,
        "params": sorted(dag.params.keys()),
        "outlets": {t.task_id: [a.name for a in t.outlets] for t in dag.tasks if t.outlets},
        "schedule_assets": [a.name for a in getattr(getattr(dag.timetable, "asset_condition", None), "objects", [])],
        "mapped": sorted(t.task_id for t in dag.tasks if t.is_mapped),
        "modules": sorted(m for m in __import__("sys").modules if m.split(".")[0] in
                          ("pandas", "great_expectations", "sklearn", "duckdb", "dbt")),
    }
print(json.dumps(out))
"""


def _dagbag(airflow_home):
    proc = subprocess.run([sys.executable, "-c", CHECK % str(PROJECT_ROOT / "dags")], env=airflow_env(airflow_home),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dags_import_without_errors_and_follow_conventions(airflow_home):
    bag = _dagbag(airflow_home)
    assert bag["errors"] == {}
    daily = bag["dags"]["loyalist_daily"]
    assert daily["tasks"] == ["check_freshness", "classify_feedback", "collect_scores", "dbt_build", "ingest",
                              "partitions", "prepare_scoring", "publish", "report", "reward_candidates", "rewards",
                              "score", "score_features", "validate_outputs", "validate_raw"]
    # one task per partition of customers
    assert daily["mapped"] == ["reward_candidates", "score", "score_features"]
    assert "loyalist" in daily["tags"]
    assert daily["catchup"] is False and daily["max_active_runs"] == 1
    assert all(r >= 1 for r in daily["retries"])
    assert daily["timetable"] == "CronDataIntervalTimetable"  # a run covers a real [start, end) interval
    # Parsing must stay cheap: no heavy library is imported at DAG parse time.
    assert daily["modules"] == []
    retrain = bag["dags"]["loyalist_retrain"]
    assert retrain["tasks"] == ["train_evaluate_promote"] and retrain["modules"] == []
    assert retrain["timetable"] == "CronDataIntervalTimetable" and "ml" in retrain["tags"]
    # Audiences: run after every successful publish (the asset the daily publish emits) ...
    audiences = bag["dags"]["loyalist_audiences"]
    assert audiences["timetable"] == "AssetTriggeredTimetable"
    assert audiences["schedule_assets"] == daily["outlets"]["publish"] == ["loyalist_published_warehouse"]
    assert audiences["tasks"] == ["export_auto_audiences", "publish_bi"] and audiences["modules"] == []
    assert all(r >= 1 for r in audiences["retries"]) and audiences["catchup"] is False
    # ... and on demand, with a trigger form.
    manual = bag["dags"]["loyalist_audience_export"]
    assert manual["timetable"] == "NullTimetable" and manual["params"] == ["as_of", "audience", "format"]
    assert manual["modules"] == [] and "audiences" in manual["tags"]
