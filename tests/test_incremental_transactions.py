"""marts.transactions, int_order_categories and int_basket_pair_days, built incrementally day by day, hold
the rows a full build gives.

An incremental run recomputes only the orders whose row may have changed (macros/transactions.sql),
int_order_categories only the sales whose transactions row a run wrote since its own last run
(macros/order_categories.sql), and int_basket_pair_days only the days whose transactions' basket
fingerprint changed (macros/basket_pairs.sql). Through ingestion and real dbt runs of
`+int_basket_pair_days`, day by day: orders into an empty table; a refund whose sale comes a day
later; an order re-sent with another amount and other lines; an identity merge that moves an account
to another customer; tables without the load and change columns or the line counts (built by earlier
versions); a day's orders re-sent without one order and a day's lines re-sent without an order's
lines, after a clock that ran ahead wrote the stamps; a rerun of an earlier day and the later day
again; a catalogue re-sent with products in other categories. After every run each table equals its
full build's SQL (compiled with --full-refresh) run on the same warehouse, on DuckDB and on
PostgreSQL, but for the time of the run that wrote a row.
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
PRODUCTS = "product_id,product_name,category,brand,list_price,unit_cost\n"
DAY1, DAY2, DAY3, DAY4 = date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31), date(2025, 4, 1)
COLUMNS = "order_id, customer_id, net_amount, item_count, refund_of_unknown_order"
# table -> (its full build's compiled SQL, sort key, the column of the time of the run that wrote a row, if any)
MODELS = {"marts.transactions": ("marts/core/transactions.sql", "order_id", "changed_at"),
          "intermediate.int_order_categories": ("intermediate/recommendations/int_order_categories.sql",
                                                "order_id, category", "transaction_changed_at"),
          "intermediate.int_basket_pair_days": ("intermediate/recommendations/int_basket_pair_days.sql",
                                                "item_level, order_date, antecedent_item, consequent_item", None)}


def _dbt(settings: Settings, as_of: date, command: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(dbt_command(settings, command, "-s", "+int_basket_pair_days", *args),
                          env=dbt_env(settings, as_of), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc


class Days:
    """Runs the incremental build of a day on the target and compares it with a full build there."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.full_build_sql: dict[date, dict[str, str]] = {}
        self.ran_incrementally = False

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
        compiled = self.settings.data_dir / "dbt" / "target" / "compiled" / "loyalist" / "models"
        # whether the run compiled the models' incremental branches (not rebuilds of the tables)
        self.ran_incrementally = all(self._incremental_branch((compiled / path).read_text())
                                     for path, _, _ in MODELS.values())
        if as_of not in self.full_build_sql:  # the SQL holds the as-of day
            _dbt(self.settings, as_of, "compile", "--full-refresh")
            self.full_build_sql[as_of] = {table: (compiled / path).read_text()
                                          for table, (path, _, _) in MODELS.items()}
            assert not any(self._incremental_branch(sql) for sql in self.full_build_sql[as_of].values())
        for table, (_, key, run_time) in MODELS.items():
            schema, name = table.split(".")
            columns = ", ".join(c for (c,) in self._query(
                "select column_name from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position")
                if c != run_time)
            assert self._query(f"select {columns} from {table} order by {key}") == self._query(
                f"select {columns} from ({self.full_build_sql[as_of][table]}) as full_build order by {key}"), table
        # each category row was built from its sale's current transactions row
        assert self._query("select count(*) from intermediate.int_order_categories as c "
                           "left join marts.transactions as t on c.order_id = t.order_id "
                           "where c.transaction_changed_at is distinct from t.changed_at") == [(0,)]
        return {r[0]: r[1:] for r in self._query(f"select {COLUMNS} from marts.transactions order by order_id")}

    def categories(self) -> dict[str, set[str]]:
        baskets: dict[str, set[str]] = {}
        for order_id, category in self._query("select order_id, category from intermediate.int_order_categories"):
            baskets.setdefault(order_id, set()).add(category)
        return baskets

    @staticmethod
    def _incremental_branch(sql: str) -> bool:
        return "recomputed_orders" in sql or "changed.changed_at >" in sql or "days_to_count" in sql


def _customers(landing: Path, day: date, *rows: str, created: date | None = None) -> None:
    """Profiles (source_system,source_customer_id,email) updated on ``day``, created then or on ``created``."""
    _write(landing, "customers", day,
           CUSTOMERS + "".join(f"{r},{created or day} 08:00:00,{day} 08:00:00\n" for r in rows))


def test_transactions_day_by_day_equal_a_full_build(target_with_empty_landing):
    target = target_with_empty_landing
    landing, days = target.landing_dir, Days(target)

    _ingest(target, DAY1 - timedelta(days=1))  # no files yet: the table starts empty
    assert days.build(DAY1 - timedelta(days=1)) == {}

    # day 1: three customers' sales, and a refund whose sale we have not seen (yet); the catalogue
    _customers(landing, DAY1, "web,w1,one@example.com", "web,w2,two@example.com", "web,w3,three@example.com")
    _write(landing, "products", DAY1, PRODUCTS + "P1,One,beauty,B,60,30\nP2,Two,home,B,40,20\n"
                                                 "P3,Three,beauty,B,10,5\nP4,Four,toys,B,70,35\n"
                                                 "P9,Nine,home,B,20,10\n")
    _write(landing, "orders", DAY1, ORDERS + "O1,web,w1,2025-03-29 09:00:00,100,sale,\n"
                                             "O2,web,w2,2025-03-29 10:00:00,50,sale,\n"
                                             "O3,web,w3,2025-03-29 11:00:00,30,sale,\n"
                                             "R9,web,w1,2025-03-29 12:00:00,-20,refund,O9\n")
    _write(landing, "order_items", DAY1, ITEMS + "O1,1,P1,1,60\nO1,2,P2,1,40\nO2,1,P1,2,25\nO3,1,P3,3,10\n")
    _ingest(target, DAY1)
    first = days.build(DAY1)
    assert days.ran_incrementally
    assert {o: (row[2], row[3]) for o, row in first.items()} == {
        "O1": (2, False), "O2": (2, False), "O3": (3, False), "R9": (0, True)}
    customer_of_w2 = first["O2"][0]
    assert days.categories() == {"O1": {"beauty", "home"}, "O2": {"beauty"}, "O3": {"beauty"}}

    # tables built before they had load and change columns, or line counts and costs (earlier versions): the next
    # run fills them
    for column in ("source_file", "loaded_at", "lines_loaded_at", "lines_load_key", "changed_at"):
        days.execute(f"alter table marts.transactions drop column {column}")
    for column in ("transaction_changed_at", "products_loaded_at", "lines", "cost_of_goods"):
        days.execute(f"alter table intermediate.int_order_categories drop column {column}")

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
    assert days.categories() == {"O1": {"beauty"}, "O2": {"beauty"}, "O3": {"beauty"}, "O4": {"toys"},
                                 "O9": {"home"}}

    # a clock that ran a day ahead wrote the stamps so far: the next run's rows must still be later
    days.execute("update marts.transactions set changed_at = changed_at + interval '1 day'")
    days.execute("update intermediate.int_order_categories "
                 "set transaction_changed_at = transaction_changed_at + interval '1 day'")

    # day 3: day 2's orders re-sent without O4 (it is gone) and with O1 as it was; day 1's lines
    # re-sent without O3's (it keeps no lines); new orders of day 3, O6 with a line
    _write(landing, "orders", DAY2, ORDERS + "O9,web,w1,2025-03-29 08:00:00,20,sale,\n")
    _write(landing, "order_items", DAY1, ITEMS + "O1,1,P1,1,60\nO1,2,P2,1,40\nO2,1,P1,2,25\n")
    _write(landing, "orders", DAY3, ORDERS + "O5,web,w2,2025-03-31 12:00:00,10,sale,\n"
                                             "O6,web,w3,2025-03-31 13:00:00,40,sale,\n")
    _write(landing, "order_items", DAY3, ITEMS + "O6,1,P2,1,40\n")
    _ingest(target, DAY3)
    third = days.build(DAY3)
    assert "O4" not in third and third["O3"][2] == 0 and third["O5"][1] == 10
    assert "O3" not in days.categories() and "O4" not in days.categories() and days.categories()["O6"] == {"home"}

    # a rerun of day 1 leaves out what happened after it, and day 3 again brings it back
    assert set(days.build(DAY1)) == {"O1", "O2", "O3", "O9", "R9"}
    assert days.build(DAY3) == third

    # day 4: the catalogue re-sent with P1 and P9 in other categories: every sale's categories follow
    _write(landing, "products", DAY4, PRODUCTS + "P1,One,garden,B,60,30\nP2,Two,home,B,40,20\n"
                                                 "P3,Three,beauty,B,10,5\nP4,Four,toys,B,70,35\n"
                                                 "P9,Nine,beauty,B,20,10\n")
    _ingest(target, DAY4)
    days.build(DAY4)
    assert days.ran_incrementally
    assert days.categories() == {"O1": {"garden", "home"}, "O2": {"garden"}, "O6": {"home"}, "O9": {"beauty"}}
