"""The GX gates of the daily run, on real ingested batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalist.pipeline import DataQualityError, ingest_interval, validate_raw_batch

from .conftest import TINY

START = datetime.combine(TINY.end_date, datetime.min.time(), UTC)
END = START + timedelta(days=1)


def test_a_normal_batch_passes_every_raw_gate(settings):
    ingest_interval(settings, START, END, "ok")
    descriptions = validate_raw_batch(settings, "ok", END)
    assert any(d.startswith("raw_volume: passed") for d in descriptions)
    assert all("passed" in d for d in descriptions)


def test_a_day_with_a_fraction_of_its_usual_volume_stops_the_run(settings, landing):
    day_file = landing / "orders" / f"dt={TINY.end_date}" / "orders.csv"
    lines = day_file.read_text(encoding="utf-8").splitlines()
    day_file.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # 2 orders instead of ~100
    ingest_interval(settings, START, END, "thin")
    with pytest.raises(DataQualityError, match=r"raw_volume: FAILED.*ratio_to_recent_median"):
        validate_raw_batch(settings, "thin", END)


@pytest.mark.parametrize("day_has_rows", [True, False])
def test_the_output_audit_stops_duplicate_orders_and_orders_without_customer(settings, day_has_rows):
    from datetime import date

    from loyalist.pipeline import validate_outputs
    from loyalist.warehouse import connect

    as_of = date(2025, 3, 31)
    day = as_of if day_has_rows else date(2025, 3, 1)  # the whole-table counts must judge either way
    with connect(settings) as con:
        con.execute("create schema if not exists marts")
        con.execute("create table marts.transactions (order_id varchar, customer_id varchar, order_date date)")
        con.execute("insert into marts.transactions values ('O1', 'C1', $day), ('O2', 'C2', $day), ('O3', 'C3', $day)",
                    {"day": day})
    assert any(d.startswith("marts_transactions: passed") for d in validate_outputs(settings, as_of))

    with connect(settings) as con:
        con.execute("insert into marts.transactions values ('O1', 'C1', date '2025-02-01'), ('O4', null, $day)",
                    {"day": day})
    with pytest.raises(DataQualityError) as failed:
        validate_outputs(settings, as_of)
    assert "marts_transactions: FAILED" in str(failed.value)
    assert "duplicate_order_ids" in str(failed.value)
    assert "transactions_without_customer" in str(failed.value)
