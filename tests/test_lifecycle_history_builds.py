"""The lifecycle snapshots compute the backfill month ends only when the history is built from scratch.

Through ingestion and the real dbt build on the tiny landing zone: the first build backfills the
history from 13 snapshot days; the next day's build computes the as-of day alone and the history
keeps every earlier row; a full refresh of the history without its snapshots is refused with a clear
error instead of a history without its backfill, and a full refresh of both rebuilds the first
build's history.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from loyalist.config import get_settings
from loyalist.pipeline import dbt_build, dbt_command, dbt_env, ingest_interval
from loyalist.warehouse import connect

DAY1, DAY2 = date(2025, 3, 30), date(2025, 3, 31)  # the tiny landing zone's last two days
HISTORY = "select * from marts.customer_lifecycle_history order by customer_id, valid_from"


@pytest.fixture(scope="module")
def warehouse(tiny_landing_master, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle_builds")
    return replace(get_settings(), data_dir=root, landing_dir=tiny_landing_master,
                   warehouse_path=root / "warehouse" / "loyalist.duckdb", duckdb_memory_limit="1GB")


def _snapshot_days(settings) -> list[date]:
    with connect(settings, read_only=True) as con:
        return [r[0] for r in con.execute("select distinct snapshot_date from "
                                          "intermediate.int_customer_lifecycle_snapshots order by 1").fetchall()]


def _rows(settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def _dbt(settings, as_of: date, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(dbt_command(settings, *args), env=dbt_env(settings, as_of), capture_output=True, text=True)


def test_backfill_days_only_on_a_first_build(warehouse):
    for day in (DAY1, DAY2):
        start = datetime.combine(day, datetime.min.time(), UTC)
        ingest_interval(warehouse, start, start + timedelta(days=1), f"lifecycle-{day}")

    dbt_build(warehouse, DAY1)
    first_days = _snapshot_days(warehouse)
    assert len(first_days) == 13 and first_days[-1] == DAY1 and first_days[0] == date(2024, 3, 31)
    first_history = _rows(warehouse, HISTORY)
    assert min(r[2] for r in first_history) == date(2024, 3, 31)

    dbt_build(warehouse, DAY2)
    assert _snapshot_days(warehouse) == [DAY2]
    history = _rows(warehouse, HISTORY)
    # rows started before DAY2 keep their start and stage (only the end of a changed one moves to DAY2)
    started_before = [(r[0], r[1], r[2]) for r in history if r[2] < DAY2]
    assert started_before == [(r[0], r[1], r[2]) for r in first_history]
    current = {(r[0], r[1]) for r in history if r[4]}
    assert current == set(_rows(warehouse, "select customer_id, lifecycle_stage "
                                           "from intermediate.int_customer_lifecycle_snapshots"))

    refused = _dbt(warehouse, DAY2, "build", "--full-refresh", "-s", "customer_lifecycle_history",
                   "--exclude-resource-type", "unit_test")
    assert refused.returncode != 0
    assert "holds 1 of the 13 snapshot days" in refused.stdout, refused.stdout[-3000:]
    assert _rows(warehouse, HISTORY) == history  # the refused build changed nothing

    rebuilt = _dbt(warehouse, DAY2, "build", "--full-refresh", "-s",
                   "int_customer_lifecycle_snapshots customer_lifecycle_history",
                   "--exclude-resource-type", "unit_test")
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    assert len(_snapshot_days(warehouse)) == 13
    rebuilt_history = _rows(warehouse, HISTORY)
    assert min(r[2] for r in rebuilt_history) == date(2024, 3, 31)  # same month ends as DAY1's
    assert {(r[0], r[1]) for r in rebuilt_history if r[4]} == current
