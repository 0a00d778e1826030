"""marts.transactions, built incrementally day by day, holds the rows a full build gives.

An incremental run recomputes only the orders whose row may have changed (macros/transactions.sql).
Through ingestion and real dbt runs of `+transactions`, day by day: orders into an empty table; a
refund whose sale comes a day later; an order re-sent with another amount and other lines; an
identity merge that moves an account to another customer; a table without the load columns (built
by an earlier version); a day's orders re-sent without one order and a day's lines re-sent without
an order's lines; a rerun of an earlier day and the later day again. After every run the table
equals its full build's SQL (compiled with --full-refresh) run on the same warehouse, on DuckDB and
on PostgreSQL.
"""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import psycopg

from loyalist.config import Settings
from loyalist.pipeline import dbt_command, dbt_env
from loyalist.targets import load_raw_for_target, postgres_conninfo
from loyalist.warehouse import connect
from tests.test_incremental_staging import _ingest, _write

CUSTOMERS = "source_system,source_customer_id,email,created_at,updated_at\n"
ORDERS = "order_id,source_system,source_customer_id,ordered_at,net_amount,transaction_type,original_order_id\n"
ITEMS = "order_id,line_no,product_id,quantity,unit_price\n"
DAY1, DAY2, DAY3 = date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)
COLUMNS = "order_id, customer_id, net_amount, item_count, refund_of_unknown_order"


def _dbt(settings: Settings, as_of: date, command: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(dbt_command(settings, command, "-s", "+transactions", *args),
                          env=dbt_env(settings, as_of), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc


class Days:
    """Runs the incremental build of a day on the target and compares it with a full build there."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.full_build_sql = ""

    def _query(self, sql: str) -> list[tuple]:
        if self.settings.dbt_target == "postgres":
            with psycopg.connect(postgres_conninfo()) as pg:
                return pg.execute(sql).fetchall()
        with connect(self.settings, read_only=True) as con:
            return con.execute(sql).fetchall()

    def execute(self, sql: str) -> None:
        if self.settings.dbt_target == "postgres":
            with psycopg.connect(postgres_conninfo()) as pg:
                pg.execute(sql)
            return
        with connect(self.settings) as con:
            con.execute(sql)

    def build(self, as_of: date) -> dict[str, tuple]:
        load_raw_for_target(self.settings)  # Postgres: the raw tables are copied over, as dbt_build does
        _dbt(self.settings, as_of, "run")
        if not self.full_build_sql:  # the same SQL whatever the day: the as-of day is in the staging views
            _dbt(self.settings, as_of, "compile", "--full-refresh")
            compiled = self.settings.data_dir / "dbt" / "target" / "compiled" / "loyalist" / "models"
            self.full_build_sql = (compiled / "marts" / "core" / "transactions.sql").read_text()
            assert "recomputed_orders" not in self.full_build_sql
        table = self._query("select * from marts.transactions order by order_id")
        assert table == self._query(f"select * from ({self.full_build_sql}) as full_build order by order_id")
        return {r[0]: r[1:] for r in self._query(f"select {COLUMNS} from marts.transactions order by order_id")}

    def ran_incrementally(self) -> bool:
        """Whether the last run compiled the model's incremental branch (not a rebuild of the table)."""
        compiled = self.settings.data_dir / "dbt" / "target" / "compiled" / "loyalist" / "models" / "marts"
        return "recomputed_orders" in (compiled / "core" / "transactions.sql").read_text()


def _customers(landing: Path, day: date, *rows: str, created: date | None = None) -> None:
    """Profiles (source_system,source_customer_id,email) updated on ``day``, created then or on ``created``."""
    _write(landing, "customers", day,
           CUSTOMERS + "".join(f"{r},{created or day} 08:00:00,{day} 08:00:00\n" for r in rows))


def test_transactions_day_by_day_equal_a_full_build(target_with_empty_landing):
    target = target_with_empty_landing
    landing, days = target.landing_dir, Days(target)

    _ingest(target, DAY1 - timedelta(days=1))  # no files yet: the table starts empty
    assert days.build(DAY1 - timedelta(days=1)) == {}

    # day 1: three customers' sales, and a refund whose sale we have not seen (yet)
    _customers(landing, DAY1, "web,w1,one@example.com", "web,w2,two@example.com", "web,w3,three@example.com")
    _write(landing, "orders", DAY1, ORDERS + "O1,web,w1,2025-03-29 09:00:00,100,sale,\n"
                                             "O2,web,w2,2025-03-29 10:00:00,50,sale,\n"
                                             "O3,web,w3,2025-03-29 11:00:00,30,sale,\n"
                                             "R9,web,w1,2025-03-29 12:00:00,-20,refund,O9\n")
    _write(landing, "order_items", DAY1, ITEMS + "O1,1,P1,1,60\nO1,2,P2,1,40\nO2,1,P1,2,25\nO3,1,P3,3,10\n")
    _ingest(target, DAY1)
    first = days.build(DAY1)
    assert days.ran_incrementally()
    assert {o: (row[2], row[3]) for o, row in first.items()} == {
        "O1": (2, False), "O2": (2, False), "O3": (3, False), "R9": (0, True)}
    customer_of_w2 = first["O2"][0]

    # a table built before it had load columns (an earlier version): the next run fills them
    days.execute("alter table marts.transactions drop column source_file")
    days.execute("alter table marts.transactions drop column loaded_at")
    days.execute("alter table marts.transactions drop column lines_loaded_at")
    days.execute("alter table marts.transactions drop column lines_load_key")

    # day 2: O9 arrives late (dated day 1), so R9's sale is known; O1 re-sent with another amount and
    # one line; a new order O4; an older account with w2's email appears and becomes the root of w2's
    # customer, whose id changes (identity resolution names a customer after its first-seen account)
    _customers(landing, DAY2, "pos,p0,TWO@example.com", created=date(2025, 1, 1))
    _write(landing, "orders", DAY2, ORDERS + "O9,web,w1,2025-03-29 08:00:00,20,sale,\n"
                                             "O1,web,w1,2025-03-29 09:00:00,120,sale,\n"
                                             "O4,web,w3,2025-03-30 08:00:00,70,sale,\n")
    _write(landing, "order_items", DAY2, ITEMS + "O9,1,P9,1,20\nO1,1,P1,4,30\nO4,1,P4,1,70\n")
    _ingest(target, DAY2)
    second = days.build(DAY2)
    assert second["R9"][3] is False and second["O1"][1:3] == (120, 4) and "O4" in second
    assert second["O2"][0] != customer_of_w2

    # day 3: day 2's orders re-sent without O4 (it is gone) and with O1 as it was; day 1's lines
    # re-sent without O3's (it keeps no lines); a new order of day 3
    _write(landing, "orders", DAY2, ORDERS + "O9,web,w1,2025-03-29 08:00:00,20,sale,\n")
    _write(landing, "order_items", DAY1, ITEMS + "O1,1,P1,1,60\nO1,2,P2,1,40\nO2,1,P1,2,25\n")
    _write(landing, "orders", DAY3, ORDERS + "O5,web,w2,2025-03-31 12:00:00,10,sale,\n")
    _ingest(target, DAY3)
    third = days.build(DAY3)
    assert "O4" not in third and third["O3"][2] == 0 and third["O5"][1] == 10

    # a rerun of day 1 leaves out what happened after it, and day 3 again brings it back
    assert set(days.build(DAY1)) == {"O1", "O2", "O3", "O9", "R9"}
    assert days.build(DAY3) == third
