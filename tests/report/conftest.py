"""One real pipeline run (no Airflow: the same task functions the DAG calls) on the SEASON sample,
ending with the DAG's report step; the report tests read what it wrote."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from loyalist import pipeline
from loyalist.config import Settings

AS_OF = date(2025, 3, 31)  # SEASON ends on this day


@dataclass(frozen=True)
class ReportedRun:
    settings: Settings
    report: Path


def make_settings(root: Path, landing: Path) -> Settings:
    data_dir = root / "data"
    return Settings(data_dir=data_dir, landing_dir=landing, warehouse_path=data_dir / "warehouse" / "loyalist.duckdb",
                    dbt_target="duckdb", duckdb_memory_limit="1GB", duckdb_threads=2, future_tolerance_hours=1)


@pytest.fixture(scope="session")
def reported_run(tmp_path_factory, season_landing) -> ReportedRun:
    root = tmp_path_factory.mktemp("reported_run")
    landing = root / "landing"
    shutil.copytree(season_landing, landing)
    settings = make_settings(root, landing)
    start, end = datetime(2025, 3, 31, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    batch = pipeline.ingest_interval(settings, start, end, batch_id="report-test")
    pipeline.validate_raw_batch(settings, batch["batch_id"], end)
    pipeline.classify_feedback(settings)
    pipeline.dbt_build(settings, AS_OF)
    pipeline.score_customers(settings, AS_OF)
    pipeline.build_rewards(settings, AS_OF)
    pipeline.validate_outputs(settings, AS_OF)
    pipeline.publish(settings)
    report = pipeline.write_run_report(settings, AS_OF)
    return ReportedRun(settings, report)
