"""End to end with the real DAGs: publish -> audience DAGs -> forget a person -> next day's run keeps them out.

1. ``loyalist_daily`` for 2025-03-31 publishes the tiny sample (history up to 2025-03-30).
2. ``loyalist_audiences`` (the DAG the publish asset schedules) builds the masked BI copy and exports
   every ``auto_export`` audience; ``loyalist_audience_export`` exports one audience picked by Params.
3. ``loyalist forget --phone`` (the CLI, with the phone written differently from the source) erases a
   customer who also buys on 2025-03-31; an independent search of every column of every table and view
   of the working warehouse, the published copy and the BI copy finds none of their identifiers.
4. ``loyalist_daily`` for 2025-04-01 loads 2025-03-31, which holds new rows of that person: they are
   suppressed at ingestion (counted in the manifest), and the search still finds nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb

from loyalist.audiences.bi import bi_path
from loyalist.audiences.privacy import audit_path
from loyalist.pipeline import published_path

from .conftest import VENV_BIN, airflow_env

DEFINITIONS = {
    "sms_buyers": "name: sms_buyers\ndescription: every buyer with SMS consent\nowner: test\nchannel: sms\n"
                  "filters: {is_prospect: false}\nauto_export: [csv]\n",
    "ads_buyers": "name: ads_buyers\ndescription: every buyer with ads consent\nowner: test\nchannel: ads\n"
                  "filters: {orders_count: {gte: 1}}\nauto_export: [google_ads, meta]\n",
}


def _env(airflow_home, tmp_path, landing):
    return airflow_env(airflow_home, LOYALIST_DATA_DIR=str(tmp_path / "data"), LOYALIST_LANDING_DIR=str(landing),
                       LOYALIST_DUCKDB_MEMORY_LIMIT="1GB", LOYALIST_AUDIENCES_DIR=str(tmp_path / "audiences"))


def _dag_test(env, dag_id, run_date, conf=None):
    cmd = [str(VENV_BIN / "airflow"), "dags", "test", dag_id, run_date] + (["-c", json.dumps(conf)] if conf else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    finished = [line for line in log.splitlines() if "DagRun Finished" in line]
    assert finished and "state=success" in finished[-1], log[-6000:]
    return log


def _pick_person(data_dir: Path, landing: Path) -> dict:
    """A customer with email and phone who also has orders in the not-yet-loaded 2025-03-31 partition."""
    with duckdb.connect(str(data_dir / "published" / "loyalist.duckdb"), read_only=True) as con:
        row = con.execute("""
            with next_day as (select distinct source_system || ':' || source_customer_id as account_key
                              from read_csv(?, all_varchar = true))
            select c.customer_id, c.email_normalized, c.phone_e164
            from marts.customers c join marts.customer_identity_audit a using (customer_id)
            where a.account_key in (select account_key from next_day)
              and c.email_normalized is not null and c.phone_e164 is not null
            order by c.customer_id limit 1""", [str(landing / "orders" / "dt=2025-03-31" / "*.csv")]).fetchone()
        assert row, "the sample has no suitable person"
        cid, email, phone = row
        accounts = [r[0] for r in con.execute("select source_customer_id from marts.customer_identity_audit "
                                              "where customer_id = ?", [cid]).fetchall()]
        orders = [r[0] for r in con.execute("select order_id from marts.transactions where customer_id = ?",
                                            [cid]).fetchall()]
    return {"customer_id": cid, "email": email, "phone": phone, "accounts": accounts, "orders": orders}


def _search_everything(path: Path, needles: list[str]) -> list[str]:
    """Every schema.table.column (tables and views) whose text contains any needle."""
    hits = []
    with duckdb.connect(str(path), read_only=True) as con:
        relations = con.execute("""select table_schema, table_name, list(column_name order by ordinal_position)
                                   from information_schema.columns
                                   where table_schema not in ('information_schema', 'pg_catalog')
                                   group by all""").fetchall()
        for schema, table, columns in relations:
            found = ", ".join(f'bool_or(list_bool_or([contains(cast("{c}" as varchar), x) for x in $n]))'
                              for c in columns)
            row = con.execute(f'select {found} from "{schema}"."{table}"', {"n": needles}).fetchone()
            hits += [f"{schema}.{table}.{c}" for c, hit in zip(columns, row, strict=True) if hit]
    return hits


def _needles(person: dict) -> list[str]:
    # ids, the email, the mobile's 11 digits (matches every written form), account ids and order ids
    return [person["customer_id"], person["email"], person["phone"][-11:], *person["accounts"], *person["orders"]]


def test_audience_dags_then_forget_leaves_no_trace_and_next_day_keeps_them_out(airflow_home, tmp_path, landing):
    (tmp_path / "audiences").mkdir()
    for name, text in DEFINITIONS.items():
        (tmp_path / "audiences" / f"{name}.yml").write_text(text, encoding="utf-8")
    env = _env(airflow_home, tmp_path, landing)
    data = tmp_path / "data"

    _dag_test(env, "loyalist_daily", "2025-03-31")
    log = _dag_test(env, "loyalist_audiences", "2025-03-31")
    assert "published BI copy" in log
    _dag_test(env, "loyalist_audience_export", "2025-03-31", {"audience": "sms_buyers", "format": "parquet"})
    with duckdb.connect(str(data / "privacy" / "audit.duckdb"), read_only=True) as con:
        exports = con.execute("select audience, format, row_count, split_part(triggered_by, ':', 2) "
                              "from audience_exports order by audience, format").fetchall()
    assert [(a, f, t) for a, f, _, t in exports] == [
        ("ads_buyers", "google_ads", "loyalist_audiences"), ("ads_buyers", "meta", "loyalist_audiences"),
        ("sms_buyers", "csv", "loyalist_audiences"), ("sms_buyers", "parquet", "loyalist_audience_export")]
    assert all(n > 0 for *_, n, _ in exports)

    person = _pick_person(data, landing)
    needles = _needles(person)
    assert _search_everything(published_path_for(data), needles)  # the search does find them before

    spaced = f"+86 {person['phone'][3:6]} {person['phone'][6:10]} {person['phone'][10:]}"
    proc = subprocess.run([str(VENV_BIN / "loyalist"), "forget", "--phone", spaced], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "forgot 1 customer(s)" in proc.stdout, proc.stdout + proc.stderr
    for path in (data / "warehouse" / "loyalist.duckdb", published_path_for(data), data / "published" /
                 "loyalist_bi.duckdb"):
        assert _search_everything(path, needles) == [], path
    with duckdb.connect(str(data / "privacy" / "audit.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from audience_export_members where customer_id = ?",
                           [person["customer_id"]]).fetchone()[0] == 0
        assert con.execute("select count(*) from erasure_requests where key_kind = 'phone'").fetchone()[0] == 1
        assert con.execute("select count(*) from suppression_list where reason = 'erased'").fetchone()[0] >= 4

    # The next day's run loads 2025-03-31, which carries new rows of the erased person.
    _dag_test(env, "loyalist_daily", "2025-04-01")
    for path in (data / "warehouse" / "loyalist.duckdb", published_path_for(data)):
        assert _search_everything(path, needles) == [], path
    with duckdb.connect(str(published_path_for(data)), read_only=True) as con:
        suppressed = con.execute("select coalesce(sum(rows_suppressed), 0) from raw._load_manifest "
                                 "where partition_date = '2025-03-31' and entity = 'orders'").fetchone()[0]
    assert suppressed >= 1


def published_path_for(data_dir: Path) -> Path:
    return data_dir / "published" / "loyalist.duckdb"


def test_paths_agree_with_settings(settings):
    """The test's hard-coded locations are the ones the code uses."""
    assert published_path(settings) == settings.data_dir / "published" / "loyalist.duckdb"
    assert bi_path(settings) == settings.data_dir / "published" / "loyalist_bi.duckdb"
    assert audit_path(settings) == settings.data_dir / "privacy" / "audit.duckdb"
