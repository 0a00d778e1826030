"""Incremental marts through ingestion and the real dbt build on the tiny landing zone.

The daily lifecycle snapshot computes one day; only the history's first build computes the backfill:
the first build backfills the history at 12 month ends plus the day while the snapshot model holds
the day alone; the next day's build keeps every earlier history row; a rerun of that day gives the
same tables; a full refresh of the history alone rebuilds its backfill. The points ledger built day
by day holds the events a full rebuild for the last day computes.
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
FIRST_MONTH_END = date(2024, 3, 31)  # the 12th month end before either day
HISTORY = "select * from marts.customer_lifecycle_history order by customer_id, valid_from"
SNAPSHOTS = "select * from intermediate.int_customer_lifecycle_snapshots order by customer_id"
# every column but computed_as_of_date (the day of the run that wrote the row)
LEDGER = ("select * exclude (computed_as_of_date) from marts.loyalty_points_ledger "
          "order by points_event_id")


@pytest.fixture(scope="module")
def warehouse(tiny_landing_master, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle_builds")
    return replace(get_settings(), data_dir=root, landing_dir=tiny_landing_master,
                   warehouse_path=root / "warehouse" / "loyalist.duckdb", duckdb_memory_limit="1GB")


def _rows(settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def _snapshot_days(settings) -> list[date]:
    return [r[0] for r in _rows(settings, "select distinct snapshot_date "
                                          "from intermediate.int_customer_lifecycle_snapshots order by 1")]


def _current(history: list[tuple]) -> set[tuple]:
    return {(r[0], r[1]) for r in history if r[4]}


def test_lifecycle_and_ledger_day_by_day(warehouse):
    for day in (DAY1, DAY2):
        start = datetime.combine(day, datetime.min.time(), UTC)
        ingest_interval(warehouse, start, start + timedelta(days=1), f"lifecycle-{day}")

    dbt_build(warehouse, DAY1)
    assert _snapshot_days(warehouse) == [DAY1]
    first_history = _rows(warehouse, HISTORY)
    assert min(r[2] for r in first_history) == FIRST_MONTH_END
    assert len({r[2] for r in first_history}) > 2  # periods start at several backfill month ends
    assert _current(first_history) == {(r[0], r[-1]) for r in _rows(warehouse, SNAPSHOTS)}

    dbt_build(warehouse, DAY2)
    assert _snapshot_days(warehouse) == [DAY2]
    history, snapshots = _rows(warehouse, HISTORY), _rows(warehouse, SNAPSHOTS)
    # rows started before DAY2 keep their start and stage (only the end of a changed one moves to DAY2)
    assert [r[:3] for r in history if r[2] < DAY2] == [r[:3] for r in first_history]
    assert _current(history) == {(r[0], r[-1]) for r in snapshots}

    dbt_build(warehouse, DAY2)  # a rerun of the day: the same tables
    assert _rows(warehouse, HISTORY) == history and _rows(warehouse, SNAPSHOTS) == snapshots
    ledger = _rows(warehouse, LEDGER)
    assert {r[2] for r in ledger} >= {"earn", "redeem", "adjust"}

    rebuilt = subprocess.run(dbt_command(warehouse, "build", "--full-refresh", "-s",
                                         "customer_lifecycle_history loyalty_points_ledger",
                                         "--exclude-resource-type", "unit_test"),
                             env=dbt_env(warehouse, DAY2), capture_output=True, text=True)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    assert _rows(warehouse, LEDGER) == ledger
    rebuilt_history = _rows(warehouse, HISTORY)
    assert min(r[2] for r in rebuilt_history) == FIRST_MONTH_END  # same month ends as DAY1's
    assert _current(rebuilt_history) == _current(history)
