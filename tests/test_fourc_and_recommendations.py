"""4C marts and category recommendations on the tiny generated data, through ingestion and the real dbt build.

One warehouse per module: ingest the tiny landing zone, ``dbt build`` (models, data tests including
the sums_match reconciliations, unit tests) as of its last day. The checks here recompute the
figures independently in pandas from marts.transactions and the order lines, so they do not share
the SQL they check.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from loyalist.config import get_settings
from loyalist.pipeline import dbt_build, dbt_command, dbt_env, dbt_unit_tests, ingest_interval
from loyalist.recommend_eval import evaluate_windows
from loyalist.warehouse import connect

AS_OF = date(2025, 3, 31)  # last day of the tiny landing zone (tests/conftest.py TINY)
VARS_FILE = Path(__file__).resolve().parents[1] / "dbt_project" / "dbt_project.yml"


def _var(name: str):
    import yaml

    return yaml.safe_load(VARS_FILE.read_text(encoding="utf-8"))["vars"][name]


@pytest.fixture(scope="module")
def built(tiny_landing_master, tmp_path_factory):
    root = tmp_path_factory.mktemp("recs_fourc")
    settings = replace(get_settings(), data_dir=root, landing_dir=tiny_landing_master,
                       warehouse_path=root / "warehouse" / "loyalist.duckdb", duckdb_memory_limit="1GB")
    start = datetime.combine(AS_OF, datetime.min.time(), UTC)
    ingest_interval(settings, start, start + timedelta(days=1), "recs-fourc")
    dbt_build(settings, AS_OF)  # raises DbtError when any model or data test fails
    # every dbt unit test of the project (the daily build leaves them out)
    assert dbt_unit_tests(settings) >= 30
    with connect(settings, read_only=True) as con:  # the day reached dbt (LOYALIST_AS_OF_DATE, not --vars)
        assert con.execute("select distinct as_of_date from marts.customers").fetchall() == [(AS_OF,)]
    return settings


def _frame(settings, sql: str) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).df()


def _lines(settings) -> pd.DataFrame:
    """(order, customer, day, category) of completed sales, from the transactions mart and the raw-ish lines."""
    return _frame(settings, """
        select distinct t.order_id, t.customer_id, t.order_date, p.category
        from marts.transactions t
        join staging.stg_crm__order_items i using (order_id)
        join staging.stg_crm__products p using (product_id)
        where t.transaction_type = 'sale' and t.status = 'completed'""")


def test_customer_4c_reconciles_with_transactions(built):
    fourc = _frame(built, "select * from marts.customer_4c").set_index("customer_id")
    tx = _frame(built, "select * from marts.transactions where status = 'completed'")
    sales = tx[tx.transaction_type == "sale"].groupby("customer_id")
    refunds = tx[tx.transaction_type == "refund"].groupby("customer_id")["net_amount"].sum()
    expected = pd.DataFrame({
        "revenue": tx.groupby("customer_id")["net_amount"].sum(),
        "orders_count": sales.size(),
        "discount_amount": sales["discount_amount"].sum(),
        "refunds_amount": -refunds,
    }).fillna(0)
    assert len(fourc) == _frame(built, "select count(*) as n from marts.customers")["n"][0]
    got = fourc.loc[expected.index, expected.columns].astype(float)
    pd.testing.assert_frame_equal(got, expected.astype(float), check_names=False, atol=0.005)
    # customers without completed transactions have nothing to reconcile: all zero
    others = fourc.drop(expected.index)
    assert (others[["revenue", "orders_count", "refunds_amount"]].astype(float) == 0).all().all()
    assert fourc["revenue"].astype(float).sum() == pytest.approx(tx["net_amount"].astype(float).sum(), abs=0.01)
    # the generator gives every product a unit cost, so margin is known and below revenue
    buyers = fourc[fourc.orders_count > 0]
    assert buyers["gross_margin"].notna().all()
    assert (buyers["gross_margin"].astype(float) < buyers["sales_net_amount"].astype(float)).all()


def test_segment_4c_adds_up_to_customers(built):
    fourc = _frame(built, "select * from marts.customer_4c")
    segments = _frame(built, "select * from marts.segment_4c")
    for segment_type in ["value_tier", "rfm_segment", "lifecycle_stage", "customer_level"]:
        by_customer = fourc.assign(segment=fourc[segment_type].fillna("none")).groupby("segment")
        rows = segments[segments.segment_type == segment_type].set_index("segment")
        assert rows["customers"].to_dict() == by_customer.size().to_dict()
        assert rows["revenue"].astype(float).round(2).to_dict() == \
            by_customer["revenue"].sum().astype(float).round(2).to_dict()
    everyone = segments[segments.segment_type == "all"].iloc[0]
    assert everyone["orders_count"] == fourc["orders_count"].sum()
    gross = fourc["sales_gross_amount"].astype(float).sum()
    assert everyone["discount_depth"] == pytest.approx(fourc["discount_amount"].astype(float).sum() / gross)


def test_reconciliation_test_catches_a_wrong_figure(built, tmp_path):
    """The sums_match data test fails when one customer's revenue no longer matches the transactions."""
    broken = replace(built, warehouse_path=tmp_path / "broken.duckdb")
    shutil.copyfile(built.warehouse_path, broken.warehouse_path)
    with connect(broken) as con:
        con.execute("update marts.customer_4c set revenue = revenue + 1 "
                    "where customer_id = (select min(customer_id) from marts.customer_4c where orders_count > 0)")
    proc = subprocess.run(dbt_command(broken, "test", "--select", "customer_4c,test_name:sums_match",
                                      "--vars", f"{{as_of_date: '{AS_OF}'}}"),
                          env={**dbt_env(broken), "DBT_TARGET_PATH": str(tmp_path / "target")},
                          capture_output=True, text=True)
    assert proc.returncode != 0
    failed = [ln.split(" FAIL ")[1].split()[1] for ln in proc.stdout.splitlines() if " FAIL " in ln]
    # the customer's revenue against marts.transactions, and the segment totals built on it
    assert any(name.startswith("sums_match_customer_4c_revenue") for name in failed), proc.stdout[-2000:]
    assert all("revenue" in name for name in failed), failed


def _recount_rules(lines: pd.DataFrame, item: str, prefix: str) -> pd.DataFrame:
    """Support, confidence and lift of every kept rule, recounted in pandas from the basket lines."""
    window_start = AS_OF - timedelta(days=int(_var("recs_basket_window_days")))
    lines = lines[(lines.order_date > pd.Timestamp(window_start)) & (lines.order_date <= pd.Timestamp(AS_OF))]
    lines = lines[["order_id", item]].drop_duplicates()
    baskets = lines.order_id.nunique()
    per_item = lines.groupby(item).order_id.nunique()
    pairs = lines.merge(lines, on="order_id").query(f"{item}_x != {item}_y")
    pair_counts = pairs.groupby([f"{item}_x", f"{item}_y"]).size()
    expected = pd.DataFrame({"support": pair_counts / baskets})
    expected["confidence"] = pair_counts / per_item.reindex(pair_counts.index.get_level_values(0)).to_numpy()
    expected["lift"] = expected["confidence"] / (
        per_item.reindex(pair_counts.index.get_level_values(1)).to_numpy() / baskets)
    return expected[(expected.support >= _var(f"{prefix}min_support"))
                    & (expected.confidence >= _var(f"{prefix}min_confidence"))
                    & (expected.lift > _var(f"{prefix}min_lift"))].sort_index()


def test_association_rules_match_a_recount_of_the_baskets(built):
    lines = _frame(built, """
        select distinct t.order_id, t.order_date, p.category, i.product_id
        from marts.transactions t
        join staging.stg_crm__order_items i using (order_id)
        join staging.stg_crm__products p using (product_id)
        where t.transaction_type = 'sale' and t.status = 'completed'""")
    rules = _frame(built, "select * from marts.category_associations")
    got = rules.set_index(["antecedent_category", "consequent_category"])[["support", "confidence", "lift"]]
    pd.testing.assert_frame_equal(got.sort_index(), _recount_rules(lines, "category", "recs_"), check_names=False)
    # the generator's co-purchase pairs (loyalist/generate.py COMPLEMENTS) come out on top
    strongest = rules.sort_values("lift", ascending=False).iloc[0]
    assert {strongest.antecedent_category, strongest.consequent_category} == {"skincare", "makeup"}

    products = _frame(built, "select * from marts.product_associations")
    got = products.set_index(["antecedent_product_id", "consequent_product_id"])[["support", "confidence", "lift"]]
    expected = _recount_rules(lines, "product_id", "recs_product_")
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got.sort_index(), expected, check_names=False)


def test_recommendations_skip_recent_purchases_and_cover_everyone(built):
    recs = _frame(built, "select * from marts.customer_recommendations")
    customers = _frame(built, "select customer_id, orders_count from marts.customers")
    k = int(_var("recs_top_k"))
    assert set(recs.customer_id) == set(customers.customer_id)
    assert recs.groupby("customer_id").size().max() == k
    lines = _lines(built)
    recent_from = pd.Timestamp(AS_OF - timedelta(days=int(_var("recs_exclude_bought_within_days"))))
    recent = lines[lines.order_date > recent_from][["customer_id", "category"]].drop_duplicates()
    assert recs.merge(recent, on=["customer_id", "category"]).empty
    # prospects get the popularity list; buyers mostly a personal one
    prospects = recs.merge(customers[customers.orders_count == 0], on="customer_id")
    assert (prospects.basis == "popularity").all() and prospects.customer_id.nunique() > 0
    buyers = recs.merge(customers[customers.orders_count > 0], on="customer_id")
    assert (buyers[buyers.recommendation_rank == 1].basis == "history").mean() > 0.5


def test_recommendations_beat_popularity_in_the_daily_evaluation(built):
    mart = _frame(built, "select * from marts.recommendation_evaluation").set_index("method")
    assert mart.loc["model", "cutoff_date"] == pd.Timestamp(AS_OF - timedelta(days=int(_var("recs_eval_window_days"))))
    assert mart.loc["model", "customers_evaluated"] == mart.loc["popularity", "customers_evaluated"] >= 50
    assert mart.loc["model", "hit_rate"] > mart.loc["popularity", "hit_rate"], mart.to_string()


def test_replayed_evaluation_equals_the_mart(built):
    """loyalist.recommend_eval runs the mart's own compiled SQL: same window, same numbers."""
    mart = _frame(built, "select * from marts.recommendation_evaluation order by method")
    replayed = evaluate_windows(built, [AS_OF])
    pd.testing.assert_frame_equal(replayed[mart.columns].reset_index(drop=True), mart)
    earlier = evaluate_windows(built, [AS_OF - timedelta(days=7)])
    assert (earlier.cutoff_date < mart.cutoff_date.min()).all() and earlier.customers_evaluated.min() > 0


# the marts whose figures are sums or means of non-integers: exact_sum / average_hours (macros/cross_db.sql)
SUMMING_MARTS = ["customer_4c", "segment_4c", "customer_recommendations"]


def test_summed_marts_do_not_depend_on_the_order_of_their_input_rows(built, tmp_path):
    """Rebuilt from the same tables stored in reverse row order, the marts are equal to the last bit.

    DuckDB's threads hand rows to an aggregate in varying order; a sum of doubles would then differ
    between reruns of the same day. Reversing every input table reproduces that on data this small
    (the 4C averages and segment totals did differ before their sums were made exact).
    """
    rebuilt = replace(built, warehouse_path=tmp_path / "reversed.duckdb")
    shutil.copyfile(built.warehouse_path, rebuilt.warehouse_path)
    with connect(rebuilt) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_type = 'BASE TABLE' and table_schema in ('staging', 'intermediate', 'marts')"
                             ).fetchall()
        for schema, table in tables:
            con.execute(f'create temp table reversed as select * from "{schema}"."{table}" order by rowid desc')
            con.execute(f'delete from "{schema}"."{table}"')
            con.execute(f'insert into "{schema}"."{table}" select * from reversed')
            con.execute("drop table reversed")
    proc = subprocess.run(dbt_command(rebuilt, "run", "--select", *SUMMING_MARTS),
                          env={**dbt_env(rebuilt, AS_OF), "DBT_TARGET_PATH": str(tmp_path / "target")},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]
    with connect(built, read_only=True) as con:
        con.execute(f"attach '{rebuilt.warehouse_path}' as rebuilt (read_only)")
        for mart in SUMMING_MARTS:
            for left, right in [(f"marts.{mart}", f"rebuilt.marts.{mart}"), (f"rebuilt.marts.{mart}", f"marts.{mart}")]:
                differing = con.execute(f"select count(*) from (select * from {left} except all select * from {right})")
                assert differing.fetchone()[0] == 0, f"{left} has rows {right} has not"
