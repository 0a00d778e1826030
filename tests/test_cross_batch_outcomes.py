"""Bad input that only shows across batches, through ingestion and the real dbt build.

Expected outcomes: an order id re-sent in a later batch is one transaction with the latest values;
an order from an account nobody has a profile for still gets a customer; a refund of a sale we never
saw is kept and flagged.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta

from loyalist.pipeline import dbt_build, ingest_interval
from loyalist.warehouse import connect

HEADER = "order_id,source_customer_id,ordered_at,net_amount,transaction_type,original_order_id"


def _day(landing, entity, day, text):
    part = landing / entity / f"dt={day}"
    part.mkdir(parents=True, exist_ok=True)
    (part / f"{entity}.csv").write_text(text, encoding="utf-8")


def test_cross_batch_duplicates_unknown_customers_and_orphan_refunds(settings):
    landing = settings.landing_dir
    for folder in landing.iterdir():  # start from an empty landing zone
        if folder.is_dir():
            shutil.rmtree(folder)
    _day(landing, "customers", "2025-03-30",
         "source_system,source_customer_id,email,created_at,updated_at\n"
         "crm,known,a@example.com,2025-03-01 00:00:00,2025-03-01 00:00:00\n")
    _day(landing, "orders", "2025-03-30", f"{HEADER}\nO1,known,2025-03-30 09:00:00,100,sale,\n"
                                          "G1,ghost,2025-03-30 10:00:00,30,sale,\n"
                                          "R9,known,2025-03-30 11:00:00,-20,refund,NOPE\n")
    _day(landing, "orders", "2025-03-31", f"{HEADER}\nO1,known,2025-03-30 09:00:00,120,sale,\n")
    for day in (date(2025, 3, 30), date(2025, 3, 31)):
        start = datetime.combine(day, datetime.min.time(), UTC)
        ingest_interval(settings, start, start + timedelta(days=1), f"batch-{day}")
    dbt_build(settings, date(2025, 3, 31))

    with connect(settings, read_only=True) as con:
        assert con.execute("select count(*), max(net_amount) from marts.transactions where order_id = 'O1'"
                           ).fetchone() == (1, 120)
        ghost = con.execute("""select t.customer_id, a.has_profile from marts.transactions t
                               join marts.customer_identity_audit a using (customer_id)
                               where t.order_id = 'G1'""").fetchone()
        assert ghost[0] is not None and ghost[1] is False
        assert con.execute("select count(*) from marts.customers where customer_id = ?", [ghost[0]]).fetchone()[0] == 1
        assert con.execute("select refund_of_unknown_order from marts.transactions where order_id = 'R9'"
                           ).fetchone() == (True,)
        assert con.execute("select count(*) from marts.transactions where refund_of_unknown_order").fetchone()[0] == 1
