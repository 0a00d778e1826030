"""Runtime settings, read from environment variables (see .env.example). One place for every path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    landing_dir: Path
    warehouse_path: Path
    dbt_target: str
    duckdb_memory_limit: str
    duckdb_threads: int
    # Rows whose event time is later than the batch end plus this tolerance are quarantined.
    future_tolerance_hours: int
    # Feeds that must deliver every day, and how old their newest day may be at run time.
    freshness_entities: tuple[str, ...] = ("orders",)
    freshness_max_age_hours: float = 48
    # Optional operational PostgreSQL source, pulled into the landing zone before each load.
    source_pg_dsn: str | None = None
    source_pg_schema: str = "public"
    # Hash partitions of customers for scoring and reward eligibility (one mapped Airflow task each).
    score_partitions: int = 2

    @property
    def dbt_project_dir(self) -> Path:
        return DBT_PROJECT_DIR


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("LOYALIST_DATA_DIR", PROJECT_ROOT / "data")).resolve()
    return Settings(
        data_dir=data_dir,
        landing_dir=Path(os.environ.get("LOYALIST_LANDING_DIR", data_dir / "landing")).resolve(),
        warehouse_path=Path(os.environ.get("LOYALIST_WAREHOUSE", data_dir / "warehouse" / "loyalist.duckdb")).resolve(),
        dbt_target=os.environ.get("LOYALIST_DBT_TARGET", "duckdb"),
        duckdb_memory_limit=os.environ.get("LOYALIST_DUCKDB_MEMORY_LIMIT", "3GB"),
        duckdb_threads=int(os.environ.get("LOYALIST_DUCKDB_THREADS", os.cpu_count() or 2)),
        future_tolerance_hours=int(os.environ.get("LOYALIST_FUTURE_TOLERANCE_HOURS", "1")),
        freshness_entities=tuple(e.strip() for e in os.environ.get("LOYALIST_FRESHNESS_ENTITIES", "orders").split(",")
                                 if e.strip()),
        freshness_max_age_hours=float(os.environ.get("LOYALIST_FRESHNESS_MAX_AGE_HOURS", "48")),
        source_pg_dsn=os.environ.get("LOYALIST_SOURCE_PG_DSN") or None,
        source_pg_schema=os.environ.get("LOYALIST_SOURCE_PG_SCHEMA", "public"),
        score_partitions=_positive_int("LOYALIST_SCORE_PARTITIONS", "2"),
    )


def _positive_int(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {raw!r}")
    return value
