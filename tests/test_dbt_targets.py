"""The dbt project on PostgreSQL: the raw copy, a real `dbt build`, and marts equal to DuckDB's.

Spark runs the same check in CI through `make dbt-spark` (a JVM start and a slower build).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import psycopg
import pytest

from loyalist.contracts import ENTITIES
from loyalist.pipeline import classify_feedback, ingest_interval
from loyalist.target_parity import MARTS, compare, compare_rows, metrics_sql, run_parity
from loyalist.targets import (
    TargetLoadError,
    copy_raw_to_postgres,
    dbt_sources,
    postgres_conninfo,
    raw_tables,
)
from loyalist.warehouse import connect

pytestmark = pytest.mark.postgres

AS_OF = date(2025, 3, 31)


@pytest.fixture
def ingested(settings):
    ingest_interval(settings, datetime(2025, 3, 31), datetime(2025, 4, 1), "b1")
    return settings


def test_sources_and_marts_come_from_the_dbt_project():
    assert raw_tables() == list(ENTITIES)
    assert "ml.feedback_classified" in {s.name for s in dbt_sources()}
    assert {"customers", "loyalty_points_ledger", "feedback_topics_monthly", "complaints", "customer_4c",
            "segment_4c", "customer_recommendations", "recommendation_evaluation"} <= set(MARTS)


def test_raw_copy_keeps_rows_nulls_and_instants(ingested, pg_database):
    copied = {c.table: c.rows for c in copy_raw_to_postgres(replace(ingested, dbt_target="postgres"))}
    assert set(copied) == {s.name for s in dbt_sources()}
    with connect(ingested, read_only=True) as con, psycopg.connect(postgres_conninfo()) as pg:
        for table in raw_tables():
            assert copied[f"raw.{table}"] == con.execute(f"select count(*) from raw.{table}").fetchone()[0] > 0
        # the classify step has not run: its table is there with the declared columns and no rows
        assert copied["ml.feedback_classified"] == 0
        assert [c for (c,) in pg.execute(
            "select column_name from information_schema.columns where table_schema = 'ml' "
            "and table_name = 'feedback_classified' order by ordinal_position").fetchall()] == \
            [c for s in dbt_sources() if s.name == "ml.feedback_classified" for c, _ in s.columns]
        query = ("select count(*), count(email), count(phone), min(updated_at), max(updated_at), "
                 "sum(case when email = '' then 1 else 0 end) from raw.customers")
        assert pg.execute(query).fetchone() == con.execute(query).fetchone()
        money = "select sum(net_amount), min(ordered_at), count(original_order_id) from raw.orders"
        assert pg.execute(money).fetchone() == con.execute(money).fetchone()


def test_dbt_build_on_postgres_gives_duckdbs_marts(ingested, pg_database):
    classify_feedback(ingested)  # as the DAG does before dbt_build: the feedback topic marts read it
    reference, postgres, differences = run_parity(ingested, "postgres", [AS_OF])

    assert differences == []
    assert reference.metrics == postgres.metrics
    assert compare_rows(ingested, "postgres") == []  # row for row
    # not a vacuous match: the sample fills every mart and the rule outputs
    assert all(reference.metrics[f"rows.{mart}"] > 0 for mart in ("customers", "customer_segments",
                                                                  "customer_lifecycle_history",
                                                                  "loyalty_points_ledger", "lifecycle_funnel",
                                                                  "feedback_topics_monthly", "complaints",
                                                                  "customer_4c", "customer_recommendations"))
    assert reference.metrics["transactions.net_amount"] > 0
    assert sum(v for k, v in reference.metrics.items() if k.startswith("segments.rfm_segment=")) == \
        reference.metrics["rows.customer_segments"]

    # and the comparison sees a difference when there is one (the metrics query is plain SQL)
    with psycopg.connect(postgres_conninfo()) as pg:
        pg.execute("delete from marts.loyalty_balances where loyalty_tier = 'bronze'")
        after = {metric: round(float(value or 0), 2) for metric, value in pg.execute(metrics_sql()).fetchall()}
    changed = compare(reference.metrics, after)
    assert any(line.startswith("rows.loyalty_balances:") for line in changed)
    assert any(line.startswith("balances.tier=bronze:") for line in changed)
    assert [line.split(":")[0] for line in compare_rows(ingested, "postgres")] == ["marts.loyalty_balances"]


def test_unreachable_postgres_is_one_clear_error(ingested, monkeypatch):
    monkeypatch.setenv("LOYALIST_PG_PORT", "1")
    with pytest.raises(TargetLoadError, match="cannot reach the Postgres dbt target"):
        copy_raw_to_postgres(replace(ingested, dbt_target="postgres"))
