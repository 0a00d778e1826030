"""Ingestion: conservation, idempotent reruns, late and re-sent files, bad input, minimal logs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from loyalist.ingest import IngestError, ingest_landing
from loyalist.warehouse import connect

from .conftest import TINY

END = TINY.end_date
NEXT = date.fromordinal(END.toordinal() + 1)
LIMIT = datetime(2025, 4, 1, 1, tzinfo=UTC)


def _ingest(settings, start=END, end=NEXT, batch="b1", entities=None):
    with connect(settings) as con:
        return ingest_landing(con, settings.landing_dir, start, end, batch, LIMIT, entities)


def _count(settings, sql):
    with connect(settings) as con:
        return con.execute(sql).fetchone()[0]


def _write(path: Path, text: str, encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_first_run_loads_all_history_and_conserves_rows(settings, landing):
    results = _ingest(settings)
    csv_rows = sum(len(f.read_text(encoding="utf-8").splitlines()) - 1 for f in (landing / "orders").rglob("*.csv"))
    orders = [r for r in results if r.entity == "orders"]
    assert len(orders) == len(list((landing / "orders").glob("dt=*/*.csv"))) >= TINY.days - 2
    assert sum(r.rows_read for r in orders) == csv_rows
    for r in results:
        assert r.rows_read == r.rows_loaded + r.rows_quarantined
    assert sum(r.rows_quarantined for r in orders) > 0  # the generator's deliberately broken rows
    assert _count(settings, "select count(*) from raw.orders") + _count(
        settings, "select count(*) from raw.orders__quarantine") == csv_rows


def test_quarantine_keeps_reason_and_original_values(settings, landing):
    _write(landing / "orders" / f"dt={END}" / "dirty.csv",
           "order_id,source_customer_id,ordered_at,net_amount\nQ-1,,2025-03-31 08:00:00,10\n"
           "Q-2,c1,2025-03-31 08:00:00,\"12,5O\"\nQ-3,c1,2025-03-31 08:00:00,10\nQ-3,c1,2025-03-31 09:00:00,11\n")
    _ingest(settings, entities=["orders"])
    with connect(settings) as con:
        rows = con.execute("""select original_values->>'order_id', original_values->>'net_amount', reasons
                              from raw.orders__quarantine where _source_file like '%dirty.csv'
                              order by _row_in_file""").fetchall()
        kept = con.execute("select net_amount from raw.orders where order_id = 'Q-3'").fetchall()
    assert rows == [("Q-1", "10", "missing source_customer_id"),
                    ("Q-2", "12,5O", 'net_amount: cannot read "12,5O" as DECIMAL(14,2)'),
                    ("Q-3", "11", "duplicate key in file")]
    assert kept == [(10,)]  # the first occurrence in the file wins


def test_rerun_of_the_same_interval_does_not_duplicate(settings):
    _ingest(settings, batch="b1")
    before = _count(settings, "select count(*) from raw.orders")
    again = _ingest(settings, batch="b2")
    assert {r.entity for r in again} >= {"orders"}  # the interval's own files are reloaded
    assert all(r.partition_date == END for r in again)  # unchanged history is not
    assert _count(settings, "select count(*) from raw.orders") == before


def test_manifest_holds_each_file_once_with_its_latest_load(settings):
    with connect(settings) as con:
        threads = con.execute("select current_setting('threads')").fetchone()[0]
        first = ingest_landing(con, settings.landing_dir, END, NEXT, "b1", LIMIT)
        again = ingest_landing(con, settings.landing_dir, END, NEXT, "b2", LIMIT)
        rows = con.execute("select source_file, batch_id, rows_read, rows_loaded, rows_quarantined "
                           "from raw._load_manifest").fetchall()
        # the scan runs on one thread; the connection's setting is restored afterwards
        assert con.execute("select current_setting('threads')").fetchone()[0] == threads
    manifest = {r[0]: r[1:] for r in rows}
    assert len(manifest) == len(rows) == len(first)
    reloaded = {r.source_file for r in again}
    for r in first:
        batch = "b2" if r.source_file in reloaded else "b1"
        assert manifest[r.source_file] == (batch, r.rows_read, r.rows_loaded, r.rows_quarantined)


def test_late_file_for_an_earlier_day_is_picked_up(settings, landing):
    _ingest(settings)
    late = _write(landing / "orders" / "dt=2025-02-10" / "late_pos_upload.csv",
                  "order_id,source_customer_id,ordered_at,net_amount\nLATE-1,C42,2025-02-10 09:00:00,88.5\n")
    results = _ingest(settings, batch="b2")
    assert [r.source_file for r in results if r.entity == "orders" and r.partition_date != END] == [str(late)]
    assert _count(settings, "select count(*) from raw.orders where order_id = 'LATE-1'") == 1


def test_resent_corrected_file_replaces_the_earlier_load(settings, landing):
    _ingest(settings)
    day_file = landing / "orders" / "dt=2025-02-10" / "orders.csv"
    lines = day_file.read_text(encoding="utf-8").splitlines()
    first_id = lines[1].split(",")[0].strip('"')
    day_file.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")  # corrected file: one row left
    _ingest(settings, batch="b2")
    assert _count(settings, "select count(*) from raw.orders where _source_file like '%dt=2025-02-10%'") == 1
    assert _count(settings, f"select count(*) from raw.orders where order_id = '{first_id}'") == 1


def test_minimal_transaction_log_loads_with_defaults(settings, landing):
    _write(landing / "orders" / f"dt={END}" / "my_log.csv",
           "source_customer_id,ordered_at,net_amount\ncust-1,2025-03-31T10:00:00+08:00,120.00\n"
           "cust-1,2025-03-31 12:00:00,-20\n")
    _ingest(settings, entities=["orders"])
    with connect(settings) as con:
        rows = con.execute("""select source_system, transaction_type, status, channel, gross_amount, currency,
                              order_id like 'gen-%', ordered_at from raw.orders
                              where source_customer_id = 'cust-1' order by ordered_at""").fetchall()
    assert [r[:7] for r in rows] == [("crm", "sale", "completed", "other", 120, "CNY", True),
                                     ("crm", "refund", "completed", "other", -20, "CNY", True)]
    assert rows[0][7] == datetime(2025, 3, 31, 2, tzinfo=UTC)  # offset honoured
    assert rows[1][7] == datetime(2025, 3, 31, 12, tzinfo=UTC)  # naive = UTC


def test_schema_drift_reordered_and_extra_columns_are_read_by_name(settings, landing):
    _write(landing / "orders" / f"dt={END}" / "drifted.csv",
           "net_amount,loyalty_tier,ordered_at,source_customer_id,order_id\n55.5,gold,2025-03-31 08:00:00,c-9,D-1\n")
    results = _ingest(settings, entities=["orders"])
    drifted = next(r for r in results if r.source_file.endswith("drifted.csv"))
    assert drifted.extra_columns == ["loyalty_tier"] and drifted.rows_loaded == 1
    assert _count(settings, "select net_amount from raw.orders where order_id = 'D-1'") == 55.5


def test_malformed_lines_are_quarantined_not_dropped(settings, landing):
    _write(landing / "orders" / f"dt={END}" / "broken.csv",
           "order_id,source_customer_id,ordered_at,net_amount\nB-1,c1,2025-03-31 08:00:00,10\n"
           "B-2,c1\nB-3,c1,2025-03-31 09:00:00,11,unexpected,extra\nB-4,c1,2025-03-31 10:00:00,12\n")
    results = _ingest(settings, entities=["orders"])
    broken = next(r for r in results if r.source_file.endswith("broken.csv"))
    assert (broken.rows_read, broken.rows_loaded, broken.rows_quarantined) == (4, 2, 2)
    assert _count(settings, "select count(*) from raw.orders__quarantine "
                            "where _source_file like '%broken.csv' and reasons like 'malformed line%'") == 2


def test_future_and_rule_breaking_rows_are_quarantined_with_reasons(settings, landing):
    _write(landing / "orders" / f"dt={END}" / "odd.csv",
           "order_id,source_customer_id,ordered_at,net_amount,transaction_type,channel\n"
           "F-1,c1,2030-01-01 00:00:00,10,sale,store\nF-2,c1,2025-03-31 00:00:00,-10,sale,store\n"
           "F-3,c1,2025-03-31 00:00:00,10,sale,teleport\nF-4,c1,2025-03-31 00:00:00,NaN,sale,store\n")
    _ingest(settings, entities=["orders"])
    with connect(settings) as con:
        reasons = dict(con.execute("select original_values->>'order_id', reasons from raw.orders__quarantine "
                                   "where _source_file like '%odd.csv'").fetchall())
    assert "in the future" in reasons["F-1"]
    assert "net_amount: breaks rule" in reasons["F-2"]
    assert "channel: breaks rule" in reasons["F-3"]
    assert "F-4" in reasons


def test_missing_required_column_fails_the_batch_with_a_clear_message(settings, landing):
    bad = _write(landing / "orders" / f"dt={END}" / "no_amount.csv",
                 "order_id,source_customer_id,ordered_at\nX,c,2025-03-31\n")
    with pytest.raises(IngestError, match=r"no_amount\.csv: required column\(s\) missing: net_amount"):
        _ingest(settings, entities=["orders"])
    assert str(bad) not in {r[0] for r in _manifest(settings)}


def test_empty_file_fails_the_batch_with_a_clear_message(settings, landing):
    _write(landing / "orders" / f"dt={END}" / "empty.csv", "")
    with pytest.raises(IngestError, match=r"empty\.csv: file is empty"):
        _ingest(settings, entities=["orders"])


def test_parquet_landing_files_load_too(settings, landing):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = landing / "orders" / f"dt={END}" / "export.parquet"
    pq.write_table(pa.table({"source_customer_id": ["p1"], "ordered_at": ["2025-03-31 07:00:00"],
                             "net_amount": [9.9]}), path)
    results = _ingest(settings, entities=["orders"])
    assert next(r for r in results if r.source_file == str(path)).rows_loaded == 1


def _manifest(settings):
    with connect(settings) as con:
        con.execute("create schema if not exists raw")
        exists = con.execute("select count(*) from information_schema.tables where table_name = '_load_manifest'")
        if not exists.fetchone()[0]:
            return []
        return con.execute("select source_file from raw._load_manifest").fetchall()


def test_history_loaded_in_small_groups_equals_one_load(settings, landing, tmp_path, monkeypatch):
    """A first load split into many transactions (loyalist.ingest.LOAD_GROUP_BYTES) stores the same rows,
    row numbers, quarantine and manifest as one load of every file."""
    from dataclasses import replace

    from loyalist import ingest

    _write(landing / "orders" / f"dt={END}" / "dirty.csv",
           "order_id,source_customer_id,ordered_at,net_amount\nQ-1,,2025-03-31 08:00:00,10\n"
           "Q-3,c1,2025-03-31 08:00:00,10\nQ-3,c1,2025-03-31 09:00:00,11\n")
    _ingest(settings, batch="one")
    grouped = replace(settings, data_dir=tmp_path / "grouped",
                      warehouse_path=tmp_path / "grouped" / "warehouse" / "loyalist.duckdb")
    monkeypatch.setattr(ingest, "LOAD_GROUP_BYTES", 4096)
    assert len(ingest.load_groups(ingest.landing_files(landing, "orders", NEXT))) > 3
    _ingest(grouped, batch="one")

    def snapshot(s, table, order):
        with connect(s) as con:
            return con.execute(f"select * exclude (_loaded_at) from raw.{table} order by {order}").fetchall()

    for table, order in (("orders", "_source_file, _row_in_file"), ("orders__quarantine", "_source_file, _row_in_file"),
                         ("order_items", "_source_file, _row_in_file"), ("customers", "_source_file, _row_in_file")):
        assert snapshot(grouped, table, order) == snapshot(settings, table, order), table
    manifest = "entity, source_file, rows_read, rows_loaded, rows_quarantined"
    with connect(settings) as a, connect(grouped) as b:
        q = f"select {manifest} from raw._load_manifest order by source_file"
        assert b.execute(q).fetchall() == a.execute(q).fetchall()


def test_row_numbers_follow_the_file_when_the_scan_runs_in_parallel(settings, landing):
    """Row numbers come from the order DuckDB inserts the scanned rows in (loyalist.ingest._stage_text_rows).
    A file of about 40 MB is parsed by several threads at once; every row must still get its own line number,
    counted from the first row of its own file."""
    day = landing / "orders" / f"dt={END}"
    big_rows = 400_000
    header = "order_id,source_customer_id,ordered_at,net_amount,payment_method\n"
    padding = "x" * 50  # rows of about 100 bytes
    _write(day / "a_small.csv", header + "".join(f"S{i:07d},c1,2025-03-31 08:00:00,1,{padding}\n"
                                                 for i in range(1, 1001)))
    _write(day / "b_big.csv", header + "".join(f"B{i:07d},c{i % 977},2025-03-31 08:00:00,{i % 500},{padding}\n"
                                               for i in range(1, big_rows + 1)))
    with connect(settings) as con:
        con.execute("set threads = 4")
        results = ingest_landing(con, settings.landing_dir, END, NEXT, "b1", LIMIT, ["orders"])
        per_file = con.execute("""select split_part(_source_file, '/', -1), count(*),
                                         count(*) filter (where _row_in_file <> cast(substr(order_id, 2) as bigint))
                                  from raw.orders
                                  where _source_file like '%/a_small.csv' or _source_file like '%/b_big.csv'
                                  group by all order by 1""").fetchall()
    assert per_file == [("a_small.csv", 1000, 0), ("b_big.csv", big_rows, 0)]  # (file, rows, misnumbered)
    assert all(r.rows_read == r.rows_loaded + r.rows_quarantined for r in results)
