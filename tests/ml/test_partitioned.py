"""Scoring and reward eligibility on hash partitions give the same tables as one partition.

One real warehouse (the SEASON sample: ingest + the real dbt project, its tests skipped for speed),
models trained once; then the one-partition path (what `loyalist` ran before partitioning) and the
partitioned path the DAG maps (prepare -> per-partition Parquet -> collect) write the ml.* tables,
and the tables are compared row for row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from loyalist import partitioned
from loyalist.config import DBT_PROJECT_DIR, get_settings
from loyalist.ingest import ingest_landing
from loyalist.pipeline import build_rewards, models_dir, score_customers
from loyalist.warehouse import connect
from ml.partitions import hash_partition, in_partition
from ml.rewards import DEFAULT_RULES, allocate, build_reward_eligibility, reward_candidates

AS_OF = date(2025, 3, 31)  # the SEASON sample's last day
TABLES = ("churn_scores", "clv_predictions", "reward_eligibility")


def _tables(settings) -> dict[str, pd.DataFrame]:
    with connect(settings, read_only=True) as con:
        return {t: con.execute(f"select * from ml.{t} where as_of_date = ? order by customer_id", [AS_OF]).df()
                for t in TABLES}


@pytest.fixture(scope="module")
def warehouse(season_landing, tmp_path_factory):
    root = tmp_path_factory.mktemp("partitioned")
    settings = replace(get_settings(), data_dir=root, landing_dir=season_landing,
                       warehouse_path=root / "warehouse" / "loyalist.duckdb", duckdb_memory_limit="1GB")
    end = AS_OF + timedelta(days=1)
    with connect(settings) as con:
        ingest_landing(con, season_landing, AS_OF, end, "partition-test",
                       datetime(end.year, end.month, end.day, 1, tzinfo=UTC))
    env = {**os.environ, "LOYALIST_WAREHOUSE": str(settings.warehouse_path), "LOYALIST_DUCKDB_MEMORY_LIMIT": "1GB",
           "DBT_TARGET_PATH": str(root / "dbt_target"), "DBT_LOG_PATH": str(root / "dbt_logs"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DBT_USE_COLORS": "False"}
    proc = subprocess.run([str(Path(sys.executable).with_name("dbt")), "build", "--project-dir", str(DBT_PROJECT_DIR),
                           "--profiles-dir", str(DBT_PROJECT_DIR), "--target", "duckdb",
                           "--vars", json.dumps({"as_of_date": str(AS_OF)}),
                           "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # One partition: the path the CLI and earlier DAG versions use (trains and promotes on first call).
    single_summary = score_customers(settings, AS_OF)
    single_rewards = build_rewards(settings, AS_OF)
    return {"settings": settings, "single": _tables(settings), "single_summary": single_summary,
            "single_rewards": single_rewards}


def test_hash_partition_is_stable_and_covers_every_customer_once():
    # A fixed value: changing the hash would silently move customers between partitions.
    assert [hash_partition(c, 7) for c in ("C0000001", "C0000002", "x")] == [5, 6, 1]
    assert hash_partition("C0000001", 1) == 0
    ids = pd.Series([f"C{i:07d}" for i in range(2000)])
    masks = [in_partition(ids, p, 4) for p in range(4)]
    assert (sum(m.astype(int) for m in masks) == 1).all()
    assert all(300 < m.sum() < 700 for m in masks)  # roughly even
    with pytest.raises(ValueError, match="outside"):
        in_partition(ids, 4, 4)


@pytest.mark.parametrize("partitions", [3])
def test_partitioned_scoring_and_rewards_equal_one_partition(warehouse, partitions):
    settings, single = warehouse["settings"], warehouse["single"]
    assert len(single["churn_scores"]) > 300 and len(single["reward_eligibility"]) > 20
    # Wipe the slices so the partitioned run has to write every row itself.
    with connect(settings) as con:
        for t in TABLES:
            con.execute(f"delete from ml.{t} where as_of_date = ?", [AS_OF])

    versions = partitioned.prepare_scoring(settings, AS_OF)
    assert versions["churn"] == warehouse["single_summary"]["churn_model_version"]
    featured = [partitioned.feature_partition(settings, AS_OF, p, partitions)["customers"] for p in range(partitions)]
    sizes = [partitioned.score_partition(settings, AS_OF, p, partitions)["customers"] for p in range(partitions)]
    assert all(n > 0 for n in sizes) and sizes == featured and sum(sizes) == len(single["churn_scores"])
    summary = partitioned.collect_scores(settings, AS_OF, partitions)
    assert summary["risk_bands"] == warehouse["single_summary"]["risk_bands"]
    for p in range(partitions):
        partitioned.reward_partition(settings, AS_OF, p, partitions)
    rewards = partitioned.collect_rewards(settings, AS_OF, partitions)
    assert rewards["rows"] == warehouse["single_rewards"]["rows"]

    got = _tables(settings)
    for t in TABLES:
        pd.testing.assert_frame_equal(got[t], single[t], check_exact=True, obj=f"ml.{t}")


def test_scoring_and_collect_refuse_a_missing_partition(warehouse):
    settings = warehouse["settings"]
    partitioned.prepare_scoring(settings, AS_OF)  # clears the run's partition folder
    partitioned.feature_partition(settings, AS_OF, 0, 2)
    # the population's typical values need every partition's features
    with pytest.raises(partitioned.MissingPartitionError, match="features: .*0001-of-0002"):
        partitioned.score_partition(settings, AS_OF, 0, 2)
    partitioned.feature_partition(settings, AS_OF, 1, 2)
    partitioned.score_partition(settings, AS_OF, 0, 2)
    with pytest.raises(partitioned.MissingPartitionError, match="churn_scores: .*0001-of-0002"):
        partitioned.collect_scores(settings, AS_OF, 2)


def test_global_budget_is_allocated_over_all_partitions(warehouse, tmp_path):
    """With a budget that funds only some rows, partitions must still fund exactly the same rows."""
    settings = warehouse["settings"]
    raw = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    with connect(settings, read_only=True) as con:
        best = reward_candidates(con, AS_OF, rules_path=DEFAULT_RULES)
    treated_cost = float(best.loc[~best["is_control"], "cost"].sum())
    raw["budget_cny"] = round(treated_cost / 3, 2)  # a third of what the candidates would cost
    rules = tmp_path / "tight.yml"
    rules.write_text(yaml.safe_dump(raw), encoding="utf-8")

    with connect(settings) as con:
        single = build_reward_eligibility(con, AS_OF, rules)
        single_rows = con.execute("select * from ml.reward_eligibility where as_of_date = ? order by customer_id",
                                  [AS_OF]).df()
    assert single["excluded_by_budget"] > 0
    with connect(settings) as con:
        parts = pd.concat([reward_candidates(con, AS_OF, p, 4, rules) for p in range(4)], ignore_index=True)
        split = allocate(con, AS_OF, parts, rules)
        split_rows = con.execute("select * from ml.reward_eligibility where as_of_date = ? order by customer_id",
                                 [AS_OF]).df()
    assert split == single
    pd.testing.assert_frame_equal(split_rows, single_rows, check_exact=True)
    # leave the default-rules slice behind for other tests in this module
    with connect(settings) as con:
        build_reward_eligibility(con, AS_OF)
    assert models_dir(settings).exists()
    shutil.rmtree(partitioned.partition_dir(settings, AS_OF), ignore_errors=True)


@pytest.mark.parametrize("raw", ["0", "-2", "two"])
def test_partition_count_setting_is_validated(monkeypatch, raw):
    monkeypatch.setenv("LOYALIST_SCORE_PARTITIONS", raw)
    with pytest.raises(ValueError, match="LOYALIST_SCORE_PARTITIONS must be a whole number >= 1"):
        get_settings()
    monkeypatch.setenv("LOYALIST_SCORE_PARTITIONS", "3")
    assert get_settings().score_partitions == 3
