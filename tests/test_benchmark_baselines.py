"""The benchmark's pandas and polars baselines compute the same marts as the pipeline (benchmarks/).

Run on the TINY sample through real ingestion and the real dbt build, plus a customer who comes back
after more than churn_after_days (the TINY window is too short to contain one) and a re-sent order,
so every rule the baselines copy is exercised. If a dbt rule changes and the baselines do not follow,
this fails, and the benchmark's speed ratios would no longer compare like with like.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from benchmarks.baselines import Rules, counts, export_inputs, floor_scan, pandas_marts, pipeline_counts, polars_marts
from benchmarks.bench import BenchError, rerun_references
from loyalist.pipeline import dbt_build, ingest_interval
from loyalist.warehouse import connect

AS_OF = date(2025, 3, 31)
HEADER = "order_id,source_customer_id,ordered_at,net_amount,transaction_type,original_order_id,status"


def _orders(landing, day: str, rows: list[str]) -> None:
    part = landing / "orders" / f"dt={day}"
    part.mkdir(parents=True, exist_ok=True)
    (part / "orders-bench.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


@pytest.fixture
def warehouse(settings):
    _orders(settings.landing_dir, "2025-03-20", [
        "BENCH-1,bench-comeback,2024-10-01 10:00:00,50,sale,,completed",
        "BENCH-2,bench-comeback,2025-03-20 10:00:00,80,sale,,completed",
    ])
    # A correction of BENCH-2 in a later partition: the latest loaded version counts.
    _orders(settings.landing_dir, "2025-03-25", ["BENCH-2,bench-comeback,2025-03-20 10:00:00,95,sale,,completed"])
    start = datetime.combine(AS_OF, datetime.min.time(), UTC)
    ingest_interval(settings, start, start + timedelta(days=1), "bench-baselines")
    dbt_build(settings, AS_OF)
    return settings


def test_baselines_give_the_pipelines_segments_and_stages(warehouse, tmp_path):
    with connect(warehouse) as con:
        inputs = export_inputs(con, tmp_path / "inputs")["transactions"].parent
        expected = pipeline_counts(con)
        per_customer = {cid: (seg, stage) for cid, seg, stage in con.execute(
            "select customer_id, rfm_segment, lifecycle_stage from marts.customer_segments").fetchall()}
        assert floor_scan(con) is not None
    assert "reactivated" in expected["lifecycle_stage"] and len(expected["rfm_segment"]) >= 8
    rules = Rules.from_dbt_project()
    for implementation in (pandas_marts, polars_marts):
        rfm, stages = implementation(inputs, AS_OF, rules)
        assert counts(rfm, stages) == expected, implementation.__name__
        if hasattr(rfm, "to_pandas"):
            rfm, stages = rfm.to_pandas(), stages.to_pandas()
        segments = dict(zip(rfm["customer_id"], rfm["rfm_segment"], strict=True))
        got = {cid: (segments.get(cid), stage)
               for cid, stage in zip(stages["customer_id"], stages["lifecycle_stage"], strict=True)}
        assert got == per_customer, implementation.__name__


def test_references_only_remeasures_a_kept_size_and_keeps_its_runs(warehouse, tmp_path, monkeypatch):
    # The bench's layout: <work dir>/<customers>/, here holding the warehouse the fixture built.
    size = tmp_path / "bench" / "400"
    shutil.copytree(warehouse.data_dir, size)
    earlier = {"customers": 400, "complete": True, "duckdb_memory_limit": "1GB", "full_run_s": 12.5,
               "as_of_incremental": AS_OF.isoformat(), "marts_s": 999.0}
    (size / "result.json").write_text(json.dumps(earlier))
    for name in ("LOYALIST_DATA_DIR", "LOYALIST_DUCKDB_MEMORY_LIMIT"):  # rerun_references sets them for its size
        monkeypatch.setenv(name, "restored after the test")

    result = rerun_references(400, SimpleNamespace(work_dir=tmp_path / "bench"))

    assert result["full_run_s"] == 12.5  # the runs' numbers stay
    assert 0 < result["marts_s"] < 999.0 and result["floor_s"] > 0 and result["pandas_s"] > 0
    with connect(warehouse) as con:
        assert result["references"]["counts"] == pipeline_counts(con)
    assert result["references"]["floor_columns"] == ["customer_id", "order_date", "transaction_type", "status",
                                                     "net_amount"]
    assert result["references_rerun"]["commit"]


def test_references_only_needs_a_complete_kept_run(tmp_path):
    (tmp_path / "400").mkdir()
    with pytest.raises(BenchError, match="no complete run with kept data"):
        rerun_references(400, SimpleNamespace(work_dir=tmp_path))
