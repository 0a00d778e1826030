"""The references the pipeline's RFM + lifecycle marts are measured against.

The marts step is the SQL that turns the ``marts.transactions`` fact (one row per order, already
deduplicated, filtered to the as-of day and attributed to the resolved customer by staging) into the
RFM segments (``int_customer_rfm``) and the lifecycle stages (``int_customer_lifecycle_snapshots``).
The references start from the same input:

* ``floor``: one DuckDB scan of the ``marts.transactions`` columns those marts read (nothing can be
  faster than reading the input once).
* ``pandas_marts`` / ``polars_marts``: the same marts as a competent analyst would write them in pandas
  and in polars (lazy): vectorised, no Python loops over customers. They read an extract of the same
  inputs (``export_inputs``: those transaction columns, the resolved customers and the RFM segment
  seed) and apply the same rules: completed sales and refunds up to the end of the as-of day, RFM
  quintile scores with ties sharing a score, the lifecycle stages in the order the dbt model checks them.

The cost of getting from raw loads to ``marts.transactions`` (staging dedupe, account join) is measured
too, as the pipeline's ``marts_path_s`` (bench.py), and reported next to the marts step.

Thresholds are read from ``dbt_project/dbt_project.yml`` (their single home), never copied here.
Each implementation returns per-customer frames; ``counts`` reduces them to the segment and stage
counts that are compared with ``marts.customer_segments``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import yaml

from loyalist.config import DBT_PROJECT_DIR

# The marts.transactions columns the RFM and lifecycle marts read.
TRANSACTION_COLUMNS = ("customer_id", "order_date", "transaction_type", "status", "net_amount")


@dataclass(frozen=True)
class Rules:
    """The dbt vars the two marts use."""

    rfm_window_days: int
    churn_after_days: int
    active_within_days: int
    reactivated_within_days: int
    new_within_days: int
    loyal_min_orders: int
    loyal_window_days: int

    @classmethod
    def from_dbt_project(cls, project_dir: Path = DBT_PROJECT_DIR) -> Rules:
        v = yaml.safe_load((project_dir / "dbt_project.yml").read_text())["vars"]
        return cls(int(v["rfm_window_days"]), int(v["churn_after_days"]), int(v["lifecycle_active_within_days"]),
                   int(v["lifecycle_reactivated_within_days"]), int(v["lifecycle_new_within_days"]),
                   int(v["lifecycle_loyal_min_orders"]), int(v["lifecycle_loyal_window_days"]))


def export_inputs(con: duckdb.DuckDBPyConnection, out: Path) -> dict[str, Path]:
    """Write the baselines' inputs as Parquet (not timed: an analyst's extract of the warehouse).

    ``net_amount`` is written as DOUBLE (the baselines sum it in integer cents, so no float ties).
    """
    out.mkdir(parents=True, exist_ok=True)
    cols = ", ".join("cast(net_amount as double) as net_amount" if c == "net_amount" else c
                     for c in TRANSACTION_COLUMNS)
    paths = {"transactions": out / "transactions.parquet", "customers": out / "customers.parquet",
             "rfm_segments": out / "rfm_segments.parquet"}
    con.execute(f"copy (select {cols} from marts.transactions) to '{paths['transactions']}' (format parquet)")
    con.execute(f"copy (select distinct customer_id from intermediate.int_customer_accounts_resolved) "
                f"to '{paths['customers']}' (format parquet)")
    con.execute(f"copy (select r_score, fm_score, rfm_segment from seeds.rfm_segments) "
                f"to '{paths['rfm_segments']}' (format parquet)")
    return paths


def floor_scan(con: duckdb.DuckDBPyConnection) -> int:
    """One pass over the transaction columns the marts read (hashing every value so none is skipped)."""
    return con.execute(f"select sum(hash({', '.join(TRANSACTION_COLUMNS)})) from marts.transactions").fetchone()[0]


# --------------------------------------------------------------------------------------------------
# pandas
# --------------------------------------------------------------------------------------------------
def pandas_marts(inputs: Path, as_of: date, rules: Rules):
    """(rfm, stages): one row per buyer with its segment; one row per customer with its stage."""
    import numpy as np
    import pandas as pd

    # Dates as datetime64, not one Python date object per row (pandas' default for Parquet dates).
    tx = pd.read_parquet(inputs / "transactions.parquet", columns=list(TRANSACTION_COLUMNS),
                         to_pandas_kwargs={"date_as_object": False})
    # Whole UTC days since the epoch; events after the as-of day are not seen yet.
    day = tx["order_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    as_of_day = (np.datetime64(as_of, "D") - np.datetime64(0, "D")).astype(np.int64)
    keep = (day <= as_of_day) & (tx["status"] == "completed").to_numpy()
    tx = pd.DataFrame({
        "customer_id": tx["customer_id"].to_numpy()[keep],
        "day": day[keep],
        "is_sale": (tx["transaction_type"] == "sale").to_numpy()[keep],
        "cents": np.rint(tx["net_amount"].to_numpy()[keep] * 100).astype(np.int64),
    })
    customers = pd.read_parquet(inputs / "customers.parquet")

    # RFM over buyers (at least one completed sale).
    window_start = as_of_day + 1 - rules.rfm_window_days
    in_window = tx["day"].to_numpy() >= window_start
    is_sale = tx["is_sale"].to_numpy()
    g = pd.DataFrame({
        "customer_id": tx["customer_id"].to_numpy(),
        "sale_day": np.where(is_sale, tx["day"].to_numpy(), np.iinfo(np.int64).min),
        "sale": is_sale.astype(np.int64),
        "window_sale": (is_sale & in_window).astype(np.int64),
        "window_cents": np.where(in_window, tx["cents"].to_numpy(), 0),
    }).groupby("customer_id", sort=False).agg(last_day=("sale_day", "max"), lifetime_orders=("sale", "sum"),
                                               frequency=("window_sale", "sum"), monetary=("window_cents", "sum"))
    rfm = g[g["lifetime_orders"] > 0].copy()
    rfm["recency_days"] = as_of_day - rfm["last_day"]
    buyers = len(rfm)
    for score, col, ascending in (("r_score", "recency_days", False), ("f_score", "frequency", True),
                                  ("m_score", "monetary", True)):
        rank = rfm[col].rank(method="min", ascending=ascending).to_numpy(np.int64)
        rfm[score] = 1 + (5 * (rank - 1)) // buyers
    rfm["fm_score"] = (rfm["f_score"] + rfm["m_score"]) // 2
    segments = pd.read_parquet(inputs / "rfm_segments.parquet")
    rfm = rfm.reset_index().merge(segments, on=["r_score", "fm_score"], how="left")

    # Lifecycle stage on the as-of day, for every customer.
    # Sorted by day only, as the dbt model does: same-day sales have gap 0 in any order.
    sales = tx.loc[is_sale, ["customer_id", "day"]].sort_values(["customer_id", "day"])
    cust = sales["customer_id"].to_numpy()
    days = sales["day"].to_numpy()
    same = np.r_[False, cust[1:] == cust[:-1]]
    gap = np.where(same, days - np.r_[0, days[:-1]], -1)
    comeback_day = np.where(same & (gap > rules.churn_after_days), days, np.iinfo(np.int64).min)
    per = pd.DataFrame({"customer_id": cust, "day": days, "comeback_day": comeback_day,
                        "loyal": (days >= as_of_day + 1 - rules.loyal_window_days).astype(np.int64)}).groupby(
        "customer_id", sort=False).agg(first_day=("day", "min"), last_day=("day", "max"),
                                       comeback_day=("comeback_day", "max"), loyal_orders=("loyal", "sum"))
    stages = customers.merge(
        per, left_on="customer_id", right_index=True, how="left")
    since_last = as_of_day - stages["last_day"]
    since_first = as_of_day - stages["first_day"]
    since_comeback = as_of_day - stages["comeback_day"].where(stages["comeback_day"] > np.iinfo(np.int64).min)
    stages["lifecycle_stage"] = np.select(
        [stages["last_day"].isna(), since_last > rules.churn_after_days, since_last > rules.active_within_days,
         since_comeback <= rules.reactivated_within_days, since_first <= rules.new_within_days,
         stages["loyal_orders"] >= rules.loyal_min_orders],
        ["prospect", "churned", "at_risk", "reactivated", "new", "loyal"], "active")
    return rfm[["customer_id", "rfm_segment"]], stages[["customer_id", "lifecycle_stage"]]


# --------------------------------------------------------------------------------------------------
# polars (lazy)
# --------------------------------------------------------------------------------------------------
def polars_marts(inputs: Path, as_of: date, rules: Rules):
    """Same as ``pandas_marts``, as one lazy polars plan per mart (collected together)."""
    import polars as pl

    as_of_day = (as_of - date(1970, 1, 1)).days
    tx = (pl.scan_parquet(inputs / "transactions.parquet").select(TRANSACTION_COLUMNS)
          .with_columns(day=pl.col("order_date").cast(pl.Int32),  # UTC day number
                        cents=(pl.col("net_amount") * 100).round(0).cast(pl.Int64),
                        is_sale=pl.col("transaction_type") == "sale")
          .filter((pl.col("day") <= as_of_day) & (pl.col("status") == "completed"))
          .select("customer_id", "day", "cents", "is_sale"))
    window_start = as_of_day + 1 - rules.rfm_window_days
    in_window = pl.col("day") >= window_start
    buyers = (tx.group_by("customer_id")
              .agg(last_day=pl.col("day").filter(pl.col("is_sale")).max(),
                   lifetime_orders=pl.col("is_sale").sum(),
                   frequency=(pl.col("is_sale") & in_window).sum(),
                   monetary=pl.when(in_window).then(pl.col("cents")).otherwise(0).sum())
              .filter(pl.col("lifetime_orders") > 0)
              .with_columns(recency_days=as_of_day - pl.col("last_day")))
    n = pl.len()
    rfm = (buyers
           .with_columns(r_score=1 + 5 * (pl.col("recency_days").rank("min", descending=True).cast(pl.Int64) - 1) // n,
                         f_score=1 + 5 * (pl.col("frequency").rank("min").cast(pl.Int64) - 1) // n,
                         m_score=1 + 5 * (pl.col("monetary").rank("min").cast(pl.Int64) - 1) // n)
           .with_columns(fm_score=(pl.col("f_score") + pl.col("m_score")) // 2)
           .join(pl.scan_parquet(inputs / "rfm_segments.parquet")
                 .with_columns(pl.col("r_score", "fm_score").cast(pl.Int64)),
                 on=["r_score", "fm_score"], how="left")
           .select("customer_id", "rfm_segment"))

    sales = (tx.filter(pl.col("is_sale"))
             .sort(["customer_id", "day"])  # day order is enough (see pandas_marts)
             .with_columns(gap=pl.col("day") - pl.col("day").shift(1).over("customer_id")))
    per = sales.group_by("customer_id").agg(
        first_day=pl.col("day").min(), last_day=pl.col("day").max(),
        comeback_day=pl.col("day").filter(pl.col("gap") > rules.churn_after_days).max(),
        loyal_orders=(pl.col("day") >= as_of_day + 1 - rules.loyal_window_days).sum())
    since_last = as_of_day - pl.col("last_day")
    stages = (pl.scan_parquet(inputs / "customers.parquet")
              .join(per, on="customer_id", how="left")
              .with_columns(lifecycle_stage=pl.when(pl.col("last_day").is_null()).then(pl.lit("prospect"))
                            .when(since_last > rules.churn_after_days).then(pl.lit("churned"))
                            .when(since_last > rules.active_within_days).then(pl.lit("at_risk"))
                            .when(as_of_day - pl.col("comeback_day") <= rules.reactivated_within_days)
                            .then(pl.lit("reactivated"))
                            .when(as_of_day - pl.col("first_day") <= rules.new_within_days).then(pl.lit("new"))
                            .when(pl.col("loyal_orders") >= rules.loyal_min_orders).then(pl.lit("loyal"))
                            .otherwise(pl.lit("active")))
              .select("customer_id", "lifecycle_stage"))
    rfm_df, stages_df = pl.collect_all([rfm, stages])
    return rfm_df, stages_df


# --------------------------------------------------------------------------------------------------
# Counts and the pipeline side
# --------------------------------------------------------------------------------------------------
def counts(rfm, stages) -> dict[str, dict[str, int]]:
    """Segment counts over buyers and stage counts over all customers, as plain sorted dicts."""
    def value_counts(frame, column: str) -> dict[str, int]:
        if hasattr(frame, "to_pandas"):  # polars
            frame = frame.to_pandas()
        vc = frame[column].fillna("(none)").value_counts()
        return {str(k): int(v) for k, v in sorted(vc.items())}

    return {"rfm_segment": value_counts(rfm, "rfm_segment"), "lifecycle_stage": value_counts(stages, "lifecycle_stage")}


def pipeline_counts(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """The same counts from the pipeline's own mart (buyers are the customers with an RFM score)."""
    def grouped(sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(con.execute(sql).fetchall())}

    return {
        "rfm_segment": grouped("select coalesce(rfm_segment, '(none)'), count(*) from marts.customer_segments "
                               "where r_score is not null group by 1"),
        "lifecycle_stage": grouped("select lifecycle_stage, count(*) from marts.customer_segments group by 1"),
    }


def run(impl: str, inputs: Path, as_of: date) -> dict:
    rules = Rules.from_dbt_project()
    # Library imports are start-up, not work (the pipeline's marts_s excludes DuckDB's start-up too).
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    if impl == "polars":
        import polars  # noqa: F401
    t, cpu = time.perf_counter(), time.process_time()
    rfm, stages = (pandas_marts if impl == "pandas" else polars_marts)(inputs, as_of, rules)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"impl": impl, "seconds": seconds, "cpu_s": cpu, "counts": counts(rfm, stages),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it does not carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.baselines pandas|polars INPUTS_DIR AS_OF``: one timed run, JSON on stdout."""
    p = argparse.ArgumentParser()
    p.add_argument("impl", choices=["pandas", "polars"])
    p.add_argument("inputs", type=Path)
    p.add_argument("as_of", type=date.fromisoformat)
    args = p.parse_args(argv)
    print(json.dumps(run(args.impl, args.inputs, args.as_of)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
