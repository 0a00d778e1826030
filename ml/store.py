"""The ML step's warehouse tables (schema ``ml``) and their idempotent writes.

Each write replaces one slice (a scoring date, or a model version + kind + evaluation cutoff):
delete the slice, insert the new rows, in one transaction, so a rerun leaves the same table and a
failure leaves the previous rows.
"""

from __future__ import annotations

import logging

import duckdb
import pandas as pd

log = logging.getLogger(__name__)

TABLES = {
    "churn_scores": """
        customer_id varchar not null,
        as_of_date date not null,
        churn_probability double not null,
        risk_band varchar not null,
        top_reasons varchar not null,
        model_version varchar not null,
        primary key (customer_id, as_of_date)""",
    "clv_predictions": """
        customer_id varchar not null,
        as_of_date date not null,
        expected_orders_12m double not null,
        expected_spend_12m double not null,
        expected_next_order_date date,
        model_version varchar not null,
        primary key (customer_id, as_of_date)""",
    "reward_eligibility": """
        customer_id varchar not null,
        as_of_date date not null,
        reward_type varchar not null,
        offer varchar not null,
        channel varchar not null,
        reason varchar not null,
        cost double not null,
        expected_value double not null,
        expires_on date not null,
        is_control boolean not null,
        primary key (customer_id, as_of_date)""",
    # One row per topic of each classified feedback version (ml/feedback_text.py; 'other' when none).
    "feedback_classified": """
        feedback_id varchar not null,
        updated_at timestamp with time zone not null,
        topic varchar not null,
        dimension varchar,
        sentiment varchar not null,
        sentiment_score integer not null,
        language varchar not null,
        classifier_version varchar not null,
        primary key (feedback_id, updated_at, topic)""",
    "model_evaluations": """
        model_version varchar not null,
        model_kind varchar not null,
        evaluated_at_cutoff date not null,
        label_window_end date not null,
        metric varchar not null,
        model_value double,
        baseline_recency double,
        baseline_heuristic double,
        incumbent_version varchar,
        incumbent_value double,
        n_customers integer not null,
        promoted boolean not null,
        created_at timestamp with time zone not null,
        primary key (model_version, model_kind, evaluated_at_cutoff, metric)""",
}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ml")
    for name, columns in TABLES.items():
        con.execute(f"create table if not exists ml.{name} ({columns})")


def replace_slice(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, where: str,
                  params: list) -> int:
    """Delete ``ml.<table>`` rows matching ``where`` and insert ``frame``, in one transaction."""
    ensure_tables(con)
    columns = [line.split()[0] for line in TABLES[table].strip().splitlines() if not line.strip().startswith("primary")]
    missing = set(columns) - set(frame.columns)
    if missing:
        raise ValueError(f"ml.{table}: frame lacks columns {sorted(missing)}")
    view = f"_ml_{table}_rows"
    con.register(view, frame[columns])
    try:
        con.execute("begin transaction")
        try:
            con.execute(f"delete from ml.{table} where {where}", params)
            con.execute(f"insert into ml.{table} ({', '.join(columns)}) select {', '.join(columns)} from {view}")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        con.unregister(view)
    log.info("ml.%s: replaced slice (%s %s) with %s rows", table, where, params, len(frame))
    return len(frame)


def replace_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, key: list[str],
                 stale_where: str, params: list) -> int:
    """Delete rows matching ``stale_where`` and the rows sharing a ``key`` with ``frame``, insert ``frame``.

    One transaction (an incremental upsert): returns how many rows ``stale_where`` removed.
    """
    ensure_tables(con)
    columns = [line.split()[0] for line in TABLES[table].strip().splitlines() if not line.strip().startswith("primary")]
    view = f"_ml_{table}_rows"
    con.register(view, frame[columns])
    try:
        con.execute("begin transaction")
        try:
            stale = con.execute(f"select count(*) from ml.{table} where {stale_where}", params).fetchone()[0]
            con.execute(f"delete from ml.{table} where {stale_where}", params)
            match = " and ".join(f"t.{k} = v.{k}" for k in key)
            con.execute(f"delete from ml.{table} t where exists (select 1 from {view} v where {match})")
            con.execute(f"insert into ml.{table} ({', '.join(columns)}) select {', '.join(columns)} from {view}")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        con.unregister(view)
    return stale
