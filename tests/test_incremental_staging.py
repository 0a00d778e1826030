"""The incremental base tables of the orders and their lines end in the rows a full build gives.

base_crm__orders and base_crm__order_items keep the latest load of every order (macros/latest_loads.sql)
and rank only the orders a run's loads touched. Through ingestion and real dbt runs, day by day: new
orders into empty tables; an order re-sent with new values and one line less; a day's files re-sent, one empty (its
orders are gone or fall back to their older copies), one with a line dropped and one changed; an
order re-sent in the same load as an older day's copy; a rerun of an earlier day (the base tables do
not change, orders dated after the day stay out of stg_crm__orders; stg_crm__order_items, not cut to
the day, keeps their lines for the readers to join away). After every run the incremental
tables equal a full build of them from the same raw tables (their SQL compiled with --full-refresh,
run on DuckDB). On PostgreSQL, whose delete+insert and query plans differ, the same days end in the
same rows.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from loyalist.config import Settings
from loyalist.pipeline import dbt_command, dbt_env, ingest_interval
from loyalist.targets import load_raw_for_target, postgres_conninfo
from loyalist.warehouse import connect

ORDERS = "order_id,source_customer_id,ordered_at,net_amount,transaction_type,original_order_id\n"
ITEMS = "order_id,line_no,product_id,quantity,unit_price\n"
BASE = {"base_crm__orders": "order_id", "base_crm__order_items": "order_item_id"}
STAGED = {"stg_crm__orders": "order_id", "stg_crm__order_items": "order_item_id"}
DAY1, DAY2, DAY3 = date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)
NET, LINE_AMOUNT = 15, 7  # positions of net_amount (orders) and line_amount (lines)


def _write(landing: Path, entity: str, day: date, text: str) -> None:
    part = landing / entity / f"dt={day}"
    part.mkdir(parents=True, exist_ok=True)
    (part / f"{entity}.csv").write_text(text, encoding="utf-8")


def _ingest(settings: Settings, day: date) -> None:
    start = datetime.combine(day, datetime.min.time(), UTC)
    ingest_interval(settings, start, start + timedelta(days=1), f"batch-{day}")


def _dbt(settings: Settings, as_of: date, command: str, *args: str) -> None:
    proc = subprocess.run(dbt_command(settings, command, "-s", "+stg_crm__orders", "+stg_crm__order_items", *args),
                          env=dbt_env(settings, as_of), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _rows(settings: Settings, tables: dict[str, str]) -> dict[str, list[tuple]]:
    queries = {t: f"select * from staging.{t} order by {key}" for t, key in tables.items()}
    if settings.dbt_target == "postgres":
        with psycopg.connect(postgres_conninfo()) as pg:
            return {t: pg.execute(q).fetchall() for t, q in queries.items()}
    with connect(settings, read_only=True) as con:
        return {t: con.execute(q).fetchall() for t, q in queries.items()}


class Days:
    """Runs the target's incremental build of a day and checks it against a full build."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # its own dbt target folder: a change of target between runs would make dbt parse from scratch
        self.duckdb = replace(settings, dbt_target="duckdb", data_dir=settings.data_dir / "full_build")
        self.full_build_sql: dict[str, str] = {}

    def full_build(self) -> dict[str, list[tuple]]:
        """The base tables a full build gives from the warehouse's raw tables (their SQL, compiled once:
        it depends on neither the day nor the data)."""
        if not self.full_build_sql:
            _dbt(self.duckdb, DAY1, "compile", "--full-refresh")
            compiled = self.duckdb.data_dir / "dbt" / "target" / "compiled" / "loyalist" / "models"
            self.full_build_sql = {t: (compiled / "staging" / "crm" / "base" / f"{t}.sql").read_text() for t in BASE}
        with connect(self.duckdb, read_only=True) as con:
            return {t: con.execute(f"select * from ({sql}) order by {BASE[t]}").fetchall()
                    for t, sql in self.full_build_sql.items()}

    def build(self, as_of: date) -> dict[str, list[tuple]]:
        load_raw_for_target(self.settings)  # Postgres: the raw tables are copied over, as dbt_build does
        _dbt(self.settings, as_of, "run")
        rows = _rows(self.settings, BASE | STAGED)
        assert {t: rows[t] for t in BASE} == self.full_build()
        return rows


def _by_id(rows: list[tuple], column: int) -> dict[str, object]:
    return {r[0]: r[column] for r in rows}


def test_base_tables_day_by_day_equal_a_full_build(target_with_empty_landing):
    target = target_with_empty_landing
    landing, days = target.landing_dir, Days(target)

    _ingest(target, DAY1 - timedelta(days=1))  # no files yet: the tables start empty
    assert days.build(DAY1 - timedelta(days=1)) == {t: [] for t in BASE | STAGED}

    _write(landing, "orders", DAY1, ORDERS + "O1,c1,2025-03-29 09:00:00,100,sale,\n"
                                             "O2,c2,2025-03-29 10:00:00,50,sale,\n"
                                             "O3,c3,2025-03-29 11:00:00,30,sale,\n")
    _write(landing, "order_items", DAY1, ITEMS + "O1,1,P1,1,60\nO1,2,P2,1,40\nO2,1,P1,1,50\nO3,1,P3,1,30\n")
    _ingest(target, DAY1)
    first = days.build(DAY1)
    assert [r[0] for r in first["stg_crm__orders"]] == ["O1", "O2", "O3"]

    # O1 re-sent with a new amount and one line less
    _write(landing, "orders", DAY2, ORDERS + "O1,c1,2025-03-29 09:00:00,120,sale,\n"
                                             "O4,c4,2025-03-30 08:00:00,70,sale,\n")
    _write(landing, "order_items", DAY2, ITEMS + "O1,1,P1,2,60\nO4,1,P4,1,70\n")
    _ingest(target, DAY2)
    second = days.build(DAY2)
    assert _by_id(second["stg_crm__orders"], NET) == {"O1": 120, "O2": 50, "O3": 30, "O4": 70}
    assert _by_id(second["stg_crm__order_items"], LINE_AMOUNT) == {"O1-1": 120, "O2-1": 50, "O3-1": 30,
                                                                  "O4-1": 70}

    # Day 2's orders re-sent empty: O4 is gone, O1 is back to its day-1 copy. Day 2's lines re-sent
    # empty and day 1's without O2's line and with O3's changed, in the same load as day 3's, which
    # re-sends O3: in one load the later day's copy wins.
    _write(landing, "orders", DAY2, ORDERS)
    _write(landing, "order_items", DAY2, ITEMS)
    _write(landing, "order_items", DAY1, ITEMS + "O1,1,P1,1,60\nO1,2,P2,1,40\nO3,1,P3,1,35\n")
    _write(landing, "orders", DAY3, ORDERS + "O3,c3,2025-03-29 11:00:00,45,sale,\n"
                                             "O5,c1,2025-03-31 12:00:00,10,sale,\n")
    _write(landing, "order_items", DAY3, ITEMS + "O3,1,P3,1,45\nO5,1,P5,1,10\n")
    _ingest(target, DAY3)
    third = days.build(DAY3)
    assert _by_id(third["stg_crm__orders"], NET) == {"O1": 100, "O2": 50, "O3": 45, "O5": 10}
    assert _by_id(third["stg_crm__order_items"], LINE_AMOUNT) == {"O1-1": 60, "O1-2": 40, "O3-1": 45,
                                                                 "O5-1": 10}

    # a rerun of an earlier day: the same base tables, stg_crm__orders holds that day's orders (not
    # O5); the lines are not cut to the day (readers join the orders)
    earlier = days.build(DAY1)
    assert {t: earlier[t] for t in BASE} == {t: third[t] for t in BASE}
    assert [r[0] for r in earlier["stg_crm__orders"]] == ["O1", "O2", "O3"]
    assert earlier["stg_crm__order_items"] == third["stg_crm__order_items"]
