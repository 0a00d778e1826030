"""PostgreSQL source: seed from generated data, extract to landing Parquet, ingest with the file pipeline.

Runs for real against the local server (127.0.0.1:5432, database ``test``); every test works in its
own schema, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from loyalist.config import get_settings
from loyalist.contracts import ENTITIES
from loyalist.generate import GeneratorConfig, generate
from loyalist.ingest import ingest_landing
from loyalist.sources.postgres import (
    SOURCE_ENTITIES,
    SourceError,
    extract_to_landing,
    landing_path,
    lower_bound,
    read_watermarks,
    seed_source_database,
    state_path,
)
from loyalist.warehouse import connect

pytestmark = pytest.mark.postgres

DSN = os.environ.get("LOYALIST_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
DAY1 = datetime(2025, 1, 30, tzinfo=UTC)  # last generated day: first extraction interval
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY2 + timedelta(days=1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    # dirty_rate=0: the source is typed; broken values are the file feeds' business, not an OLTP's.
    generate(GeneratorConfig(customers=300, days=30, seed=1, end_date=date(2025, 1, 30), dirty_rate=0), out)
    return out


@pytest.fixture
def pg_schema() -> Iterator[str]:
    name = f"loyalist_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


@pytest.fixture
def seeded(pg_schema: str, sample: Path) -> str:
    seed_source_database(DSN, pg_schema, sample)
    return pg_schema


def pg_scalar(query: sql.Composable, params: tuple = ()) -> object:
    with psycopg.connect(DSN) as conn:
        return conn.execute(query, params).fetchone()[0]


def pg_count(schema: str, table: str) -> int:
    return pg_scalar(sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


def ingest(landing: Path, warehouse: Path, start: datetime, end: datetime, batch_id: str):
    """Load the interval's landing files into the warehouse, as the pipeline's ingest step does."""
    settings = get_settings()
    con = connect(settings, warehouse)
    try:
        results = ingest_landing(con, landing, start.date(), end.date(), batch_id,
                                 end + timedelta(hours=settings.future_tolerance_hours), list(SOURCE_ENTITIES))
        counts = {e: (con.execute(f"select count(*) from raw.{e}").fetchone()[0],
                      con.execute(f"select count(*) from raw.{e}__quarantine").fetchone()[0])
                  for e in SOURCE_ENTITIES}
    finally:
        con.close()
    return results, counts


def test_seed_loads_every_generated_row(seeded: str, sample: Path) -> None:
    for entity in SOURCE_ENTITIES:
        csv_rows = sum(pacsv.read_csv(f).num_rows for f in sample.glob(f"{entity}/dt=*/*.csv"))
        assert pg_count(seeded, entity) == csv_rows, entity
    # Items carry their order's time as watermark.
    mismatched = pg_scalar(sql.SQL("select count(*) from {s}.order_items i join {s}.orders o using (order_id) "
                                   "where i.updated_at <> o.ordered_at").format(s=sql.Identifier(seeded)))
    assert mismatched == 0


def test_first_extraction_is_full_load_and_conserves_rows(seeded: str, tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    results = {r.entity: r for r in extract_to_landing(DSN, seeded, landing, DAY1, DAY2)}

    assert set(results) == set(SOURCE_ENTITIES)
    marks = read_watermarks(landing)
    for entity, r in results.items():
        assert r.lower is None  # no watermark yet: all history
        assert r.rows == pg_count(seeded, entity), entity
        assert r.path == landing / entity / "dt=2025-01-30" / f"postgres__{seeded}.parquet"
        assert pq.read_metadata(r.path).num_rows == r.rows
        assert pq.read_schema(r.path).names == ENTITIES[entity].column_names
        max_updated = pg_scalar(sql.SQL("select max(updated_at) from {}.{}").format(
            sql.Identifier(seeded), sql.Identifier(entity)))
        assert marks[f"{seeded}.{entity}"] == max_updated == r.watermark

    loads, counts = ingest(landing, warehouse, DAY1, DAY2, "b1")
    assert {(lr.entity, lr.source_file) for lr in loads} == {(e, str(r.path)) for e, r in results.items()}
    for entity, (loaded, quarantined) in counts.items():
        assert loaded + quarantined == results[entity].rows, entity  # conservation
    orders_loaded, orders_quarantined = counts["orders"]
    assert orders_loaded == pg_count(seeded, "orders") - orders_quarantined
    assert orders_loaded > 0


def test_rerunning_an_interval_does_not_duplicate(seeded: str, tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    first = extract_to_landing(DSN, seeded, landing, DAY1, DAY2)
    _, counts_first = ingest(landing, warehouse, DAY1, DAY2, "b1")
    marks_first = json.loads(state_path(landing).read_text())

    again = extract_to_landing(DSN, seeded, landing, DAY1, DAY2)
    _, counts_again = ingest(landing, warehouse, DAY1, DAY2, "b1-rerun")

    # Same bounds (the rerun reuses the full-load lower bound, it does not shrink to "since watermark").
    assert [(r.entity, r.rows, r.lower, r.path) for r in again] == [(r.entity, r.rows, r.lower, r.path) for r in first]
    assert counts_again == counts_first
    assert json.loads(state_path(landing).read_text()) == marks_first
    for entity in SOURCE_ENTITIES:
        assert len(list((landing / entity).glob("dt=*/*"))) == 1, entity  # no stray temp files


def test_update_is_picked_up_by_next_interval(seeded: str, tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    extract_to_landing(DSN, seeded, landing, DAY1, DAY2)
    ingest(landing, warehouse, DAY1, DAY2, "b1")
    marks_before = read_watermarks(landing)

    orders = sql.SQL("{}.orders").format(sql.Identifier(seeded))
    changed_at = DAY2 + timedelta(hours=12)
    with psycopg.connect(DSN) as conn:
        order_id, old_net = conn.execute(
            sql.SQL("select order_id, net_amount from {} where transaction_type = 'sale' and status = 'completed' "
                    "order by order_id limit 1").format(orders)).fetchone()
        new_net = old_net + Decimal("1.23")
        conn.execute(sql.SQL("update {} set net_amount = %s, gross_amount = gross_amount + 1.23, updated_at = %s "
                             "where order_id = %s").format(orders), (new_net, changed_at, order_id))

    results = {r.entity: r for r in extract_to_landing(DSN, seeded, landing, DAY2, DAY3)}
    r = results["orders"]
    assert r.lower == marks_before[f"{seeded}.orders"]  # catch up from the watermark, not from DAY2
    assert r.path == landing_path(landing, "orders", seeded, DAY2)
    pulled = pq.read_table(r.path).to_pylist()
    assert order_id in {row["order_id"] for row in pulled}
    assert r.watermark == changed_at
    for table, mark in marks_before.items():  # never backwards
        assert read_watermarks(landing)[table] >= mark

    ingest(landing, warehouse, DAY2, DAY3, "b2")
    con = connect(get_settings(), warehouse)
    try:
        newest = con.execute("select net_amount from raw.orders where order_id = ? "
                             "order by _partition_date desc, _loaded_at desc limit 1", [order_id]).fetchone()[0]
        versions = con.execute("select count(*) from raw.orders where order_id = ?", [order_id]).fetchone()[0]
    finally:
        con.close()
    assert newest == new_net
    assert versions == 2  # old version from the first file, new one from the second


def test_missing_table_is_a_clear_source_error(pg_schema: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    with pytest.raises(SourceError) as err:
        extract_to_landing(DSN, pg_schema, landing, DAY1, DAY2, entities=["orders"])
    message = str(err.value)
    assert f"{pg_schema}.orders" in message
    assert "127.0.0.1:5432/test" in message
    assert not landing.exists()  # nothing written, no watermark


def test_unreachable_database_is_a_clear_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1/test"):
        extract_to_landing("postgresql://postgres@127.0.0.1:1/test", "crm", tmp_path, DAY1, DAY2)


def test_missing_watermark_column_is_a_clear_source_error(pg_schema: str, tmp_path: Path) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("create table {}.consent_events (source_system text)").format(sql.Identifier(pg_schema)))
    with pytest.raises(SourceError, match=rf"{pg_schema}\.consent_events .* lacks column\(s\) updated_at"):
        extract_to_landing(DSN, pg_schema, tmp_path, DAY1, DAY2, entities=["consent_events"])


def test_lower_bound_rules() -> None:
    start = DAY2
    assert lower_bound(None, start, (False, None)) is None  # first run: full load
    assert lower_bound(DAY1, start, (False, None)) == DAY1  # lagging watermark: catch up
    assert lower_bound(DAY3, start, (False, None)) == start  # watermark ahead (backfill): the interval
    assert lower_bound(DAY3, start, (True, None)) is None  # rerun of the full load stays a full load
    assert lower_bound(DAY3, start, (True, DAY1)) == DAY1  # rerun reuses its bound


def test_daily_ingest_step_pulls_the_configured_postgres_source(sample, pg_schema, tmp_path, monkeypatch):
    """With LOYALIST_SOURCE_PG_DSN set, the DAG's ingest step extracts first, then loads the extract."""
    from loyalist.pipeline import ingest_interval

    seeded = seed_source_database(DSN, pg_schema, sample)
    monkeypatch.setenv("LOYALIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOYALIST_SOURCE_PG_DSN", DSN)
    monkeypatch.setenv("LOYALIST_SOURCE_PG_SCHEMA", pg_schema)
    settings = get_settings()
    summary = ingest_interval(settings, DAY1, DAY2, batch_id="pg-run")
    assert summary["extracted_from_postgres"]["orders"] == seeded["orders"]
    orders = summary["entities"]["orders"]
    assert orders["rows_read"] == seeded["orders"] == orders["rows_loaded"] + orders["rows_quarantined"]
    with connect(settings) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == orders["rows_loaded"]
