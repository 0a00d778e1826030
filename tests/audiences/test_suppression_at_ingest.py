"""The suppression list is honoured by ingestion: erased people's rows never reach raw or quarantine.

Real landing files (the tiny sample), the real loader; the phone is suppressed in E.164 while the
source writes it another way, so the SQL normalisation twin of dbt's macro is exercised.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from loyalist.audiences import privacy
from loyalist.audiences.normalize import phone_e164
from loyalist.pipeline import ingest_interval
from loyalist.warehouse import connect


def _landing_rows(landing, entity: str, where: str, params: list) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(f"select * from read_csv(?, all_varchar = true, union_by_name = true) where {where}",
                           [str(landing / entity / "*" / "*.csv"), *params]).fetchall()


def test_suppressed_people_are_dropped_and_counted(settings, landing):
    # A person whose phone is written '0086-...' or '+86 ...' in the source, with orders.
    with duckdb.connect() as con:
        system, sid, phone = con.execute(
            "select c.source_system, c.source_customer_id, c.phone "
            "from read_csv(?, all_varchar = true) c join read_csv(?, all_varchar = true) o using "
            "(source_system, source_customer_id) where c.phone like '0086%' or c.phone like '+86 %' "
            "order by 2 limit 1",
            [str(landing / "customers" / "*" / "*.csv"), str(landing / "orders" / "*" / "*.csv")]).fetchone()
    e164 = phone_e164(phone)
    assert e164 and e164 != phone
    # Suppress by phone only: their profile rows must go; their account's orders by account key.
    privacy.add_suppressions(settings, [("phone", e164), ("account", f"{system}:{sid}")], reason="erased")

    orders = _landing_rows(landing, "orders", "source_system = ? and source_customer_id = ?", [system, sid])
    order_ids = [r[0] for r in orders]
    ingest_interval(settings, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "b1")

    with connect(settings, read_only=True) as con:
        profiles = con.execute("select count(*) from raw.customers where regexp_replace(phone, '[^0-9]', '', 'g') "
                               "like ?", ["%" + e164[-11:]]).fetchone()[0]
        their_orders = con.execute("select count(*) from raw.orders where order_id in (select unnest(?))",
                                   [order_ids]).fetchone()[0]
        their_items = con.execute("select count(*) from raw.order_items where order_id in (select unnest(?))",
                                  [order_ids]).fetchone()[0]
        quarantined = con.execute("select count(*) from raw.orders__quarantine "
                                  "where contains(original_values::varchar, ?)", [sid]).fetchone()[0]
        manifest = dict(con.execute("select entity, sum(rows_suppressed) from raw._load_manifest group by all")
                        .fetchall())
        unaccounted = con.execute("select sum(rows_read - rows_loaded - rows_quarantined - rows_suppressed) "
                                  "from raw._load_manifest").fetchone()[0]
    assert (profiles, their_orders, their_items, quarantined) == (0, 0, 0, 0)
    assert manifest["orders"] == len(orders) and manifest["customers"] >= 1
    items = _landing_rows(landing, "order_items", "order_id in (select unnest(?))", [order_ids])
    assert manifest["order_items"] == len(items) > 0
    assert unaccounted == 0
    # Their order ids are now suppressed too (hashed), for order lines that arrive later.
    assert len(privacy.suppressed_hashes(settings)["order"]) == len(set(order_ids))


def test_no_suppression_list_changes_nothing(settings):
    ingest_interval(settings, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "b1")
    with connect(settings, read_only=True) as con:
        assert con.execute("select sum(rows_suppressed) from raw._load_manifest").fetchone()[0] == 0
    assert not privacy.audit_path(settings).exists()
