"""Build one sample on DuckDB and on another dbt target (postgres | spark) and compare the marts.

    python -m loyalist.target_parity --target postgres --data-dir /tmp/parity

Generates a small sample, ingests it into DuckDB, runs `dbt build` on DuckDB and on the target (which
first mirrors the raw tables there, see loyalist.targets), then reads the same metrics from both
through `dbt show` — row counts of every mart, segment, tier and lifecycle-stage counts, revenue and
points sums — and then every row of every mart (read from Postgres, or from the Spark warehouse's
Parquet files). Exits 1 naming every metric or mart that differs; prints each build's wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from loyalist.config import DBT_PROJECT_DIR, Settings, get_settings
from loyalist.pipeline import (
    as_of_date,
    classify_feedback,
    dbt_build,
    dbt_command,
    dbt_env,
    ingest_interval,
)
from loyalist.warehouse import connect

log = logging.getLogger(__name__)



def mart_names(project_dir: Path = DBT_PROJECT_DIR) -> tuple[str, ...]:
    """Every mart of the dbt project (the models under models/marts), so a new mart is compared too."""
    return tuple(sorted(path.stem for path in (project_dir / "models" / "marts").rglob("*.sql")))


MARTS = mart_names()
# (metric prefix, mart, group-by column or None, aggregate). Plain SQL that DuckDB, Postgres and Spark share.
AGGREGATES = (
    ("customers.revenue", "customers", None, "sum(revenue)"),
    ("customers.points_balance", "customers", None, "sum(points_balance)"),
    ("customers.orders_count", "customers", None, "sum(orders_count)"),
    ("transactions.net_amount", "transactions", None, "sum(net_amount)"),
    ("identity.customers", "customer_identity_audit", None, "count(distinct customer_id)"),
    ("segments.monetary", "customer_segments", None, "sum(monetary)"),
    ("segments.rfm_segment", "customer_segments", "rfm_segment", "count(*)"),
    ("segments.value_tier", "customer_segments", "value_tier", "count(*)"),
    ("segments.customer_level", "customer_segments", "customer_level", "count(*)"),
    ("segments.lifecycle_stage", "customer_segments", "lifecycle_stage", "count(*)"),
    ("segments.needs_segment", "customer_segments", "needs_segment", "count(*)"),
    ("lifecycle_history.stage", "customer_lifecycle_history", "lifecycle_stage", "count(*)"),
    ("lifecycle_history.current", "customer_lifecycle_history", "is_current", "count(*)"),
    ("lifecycle_transitions.to_stage", "lifecycle_transitions", "to_stage", "sum(transitions)"),
    ("lifecycle_funnel.stage", "lifecycle_funnel", "lifecycle_stage", "sum(customers)"),
    ("ledger.points", "loyalty_points_ledger", "event_type", "sum(points)"),
    ("balances.tier", "loyalty_balances", "loyalty_tier", "count(*)"),
    ("balances.points_balance", "loyalty_balances", None, "sum(points_balance)"),
    ("tier_events.type", "loyalty_tier_events", "event_type", "count(*)"),
)


class ParityError(Exception):
    """The target's marts differ from DuckDB's; the message lists the differing metrics."""


@dataclass(frozen=True)
class BuildResult:
    target: str
    seconds: list[float]  # per build
    metrics: dict[str, float]


def metrics_sql() -> str:
    """One query returning (metric, value) rows for every mart."""
    parts = [f"select 'rows.{m}' as metric, cast(count(*) as decimal(18, 2)) as value from marts.{m}" for m in MARTS]
    for name, mart, group, aggregate in AGGREGATES:
        value = f"cast({aggregate} as decimal(18, 2))"
        if group is None:
            parts.append(f"select '{name}' as metric, {value} as value from marts.{mart}")
        else:
            # cast the key to text the same way everywhere (booleans print differently per engine)
            key = f"case when {group} is null then '(null)' else cast({group} as varchar(100)) end"
            if group == "is_current":
                key = f"case when {group} then 'true' else 'false' end"
            parts.append(f"select '{name}=' || {key} as metric, {value} as value from marts.{mart} group by {group}")
    return "\nunion all\n".join(parts)


def read_metrics(settings: Settings) -> dict[str, float]:
    """Run the metrics query on the settings' dbt target through `dbt show` (the same SQL everywhere)."""
    cmd = dbt_command(settings, "show", "--inline", metrics_sql(), "--limit", "-1", "--output", "json",
                      "--log-format", "json")
    proc = subprocess.run(cmd, env=dbt_env(settings), capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("info", {}).get("name") == "ShowNode":
            rows = json.loads(event["data"]["preview"])
            return {row["metric"]: round(float(row["value"] or 0), 2) for row in rows}
    errors = [json.loads(ln).get("info", {}).get("msg", "") for ln in proc.stdout.splitlines()
              if '"level": "error"' in ln]
    raise ParityError(f"dbt show on {settings.dbt_target} failed: "
                      + " | ".join(errors[-3:] or proc.stderr.splitlines()[-3:]))


def _normalized(value):
    """One spelling per value across engines: instants in UTC, numbers as floats to 6 places."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # Spark's Parquet timestamps are UTC
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return round(float(value), 6)
    return str(value)


def _mart_rows(settings: Settings, mart: str, columns: list[str]) -> Counter:
    select = f"select {', '.join(columns)} from "
    if settings.dbt_target == "postgres":
        import psycopg

        from loyalist.targets import postgres_conninfo

        with psycopg.connect(postgres_conninfo()) as pg:
            rows = pg.execute(select + f"marts.{mart}").fetchall()
    elif settings.dbt_target == "spark":
        # the local session's managed tables are Parquet folders <warehouse>/<database>.db/<table>
        from loyalist.targets import spark_dir

        folder = spark_dir(settings) / "warehouse" / "marts.db" / mart
        with connect(settings, read_only=True) as con:
            rows = con.execute(select + f"read_parquet('{folder}/*.parquet')").fetchall()
    else:
        with connect(settings, read_only=True) as con:
            rows = con.execute(select + f"marts.{mart}").fetchall()
    return Counter(tuple(_normalized(v) for v in row) for row in rows)


# Columns each engine computes its own way (macro load_key: a different hash function per engine) or
# at its own time (the time of the run that wrote the row): compared by whether they hold a value.
ENGINE_SPECIFIC_COLUMNS = {("transactions", "lines_load_key"), ("transactions", "changed_at")}


def compare_rows(settings: Settings, target: str) -> list[str]:
    """Every mart whose rows differ between DuckDB and `target` (as multisets), with counts."""
    differences = []
    for mart in MARTS:
        with connect(settings, read_only=True) as con:
            columns = [f"({c} is not null)" if (mart, c) in ENGINE_SPECIFIC_COLUMNS else c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = ? order by ordinal_position", [mart]).fetchall()]
        expected = _mart_rows(replace(settings, dbt_target="duckdb"), mart, columns)
        actual = _mart_rows(replace(settings, dbt_target=target), mart, columns)
        if expected != actual:
            differences.append(f"marts.{mart}: {sum((expected - actual).values())} row(s) only on duckdb, "
                               f"{sum((actual - expected).values())} only on {target}")
    return differences


def compare(expected: dict[str, float], actual: dict[str, float]) -> list[str]:
    """Every metric whose value differs (or exists on one side only), as 'metric: expected != actual'."""
    return [f"{m}: duckdb {expected.get(m)} != target {actual.get(m)}"
            for m in sorted(expected.keys() | actual.keys()) if expected.get(m) != actual.get(m)]


def build(settings: Settings, days: list[date]) -> BuildResult:
    """`dbt build` as of each day in turn (later days run the incremental models incrementally)."""
    seconds = []
    for day in days:
        started = time.perf_counter()
        dbt_build(settings, day, unit_tests=True)  # the unit tests too: does the SQL hold on this target?
        seconds.append(time.perf_counter() - started)
        log.info("dbt build on %s as of %s: %.1f s", settings.dbt_target, day, seconds[-1])
    return BuildResult(settings.dbt_target, seconds, read_metrics(settings))


def prepare_sample(settings: Settings, customers: int, days: int, seed: int, end_date: date) -> date:
    """Generate and ingest a sample into a fresh DuckDB warehouse and classify its feedback texts;
    return the as-of day to build."""
    from loyalist.generate import GeneratorConfig, generate

    shutil.rmtree(settings.landing_dir, ignore_errors=True)
    settings.warehouse_path.unlink(missing_ok=True)
    generate(GeneratorConfig(customers=customers, days=days, seed=seed, end_date=end_date, dirty_rate=0.002),
             settings.landing_dir)
    start = datetime(end_date.year, end_date.month, end_date.day)
    ingest_interval(settings, start, start + timedelta(days=1), "parity")
    # as the daily DAG does between validate_raw and dbt_build: the feedback topic marts read its output
    classify_feedback(settings)
    return as_of_date(start)


def reset_target(settings: Settings) -> None:
    """Start the target empty, so the first build is a full one there too (as on the fresh DuckDB file)."""
    if settings.dbt_target == "postgres":
        import psycopg
        from psycopg import sql

        from loyalist.targets import ensure_postgres_database, postgres_conninfo

        ensure_postgres_database(os.environ.get("LOYALIST_PG_DBNAME", "postgres"))
        with psycopg.connect(postgres_conninfo()) as pg:
            for schema in ("raw", "ml", "seeds", "staging", "intermediate", "marts"):
                pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    elif settings.dbt_target == "spark":
        from loyalist.targets import spark_dir

        shutil.rmtree(spark_dir(settings), ignore_errors=True)


def run_parity(settings: Settings, target: str, days: list[date]) -> tuple[BuildResult, BuildResult, list[str]]:
    """Build on DuckDB and on `target` from the same raw data as of each of `days`; return both results
    and the differences of the marts after the last build."""
    reset_target(replace(settings, dbt_target=target))
    reference = build(replace(settings, dbt_target="duckdb"), days)
    other = build(replace(settings, dbt_target=target), days)
    return reference, other, compare(reference.metrics, other.metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, choices=["postgres", "spark"])
    parser.add_argument("--data-dir", type=Path, required=True, help="scratch folder (replaced)")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2025, 3, 31))
    parser.add_argument("--incremental-days", type=int, default=7,
                        help="first build this many days before the end date, then an incremental one at it "
                             "(0: one full build)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("loyalist.pipeline").setLevel(logging.WARNING)  # dbt's own log stays in the data dir

    os.environ["LOYALIST_DATA_DIR"] = str(args.data_dir.resolve())
    for var in ("LOYALIST_LANDING_DIR", "LOYALIST_WAREHOUSE"):
        os.environ.pop(var, None)
    settings = get_settings()
    as_of = prepare_sample(settings, args.customers, args.days, args.seed, args.end_date)
    days = [as_of - timedelta(days=args.incremental_days), as_of] if args.incremental_days else [as_of]
    reference, other, differences = run_parity(settings, args.target, days)
    for result in (reference, other):
        timings = ", ".join(f"as of {day}: {s:.1f} s" for day, s in zip(days, result.seconds, strict=True))
        print(f"dbt build on {result.target} ({timings}; raw copy included), {len(result.metrics)} metrics")
    differences += compare_rows(settings, args.target)
    if differences:
        print(f"{len(differences)} metric(s) or mart(s) differ between duckdb and {args.target}:")
        for line in differences:
            print(f"  {line}")
        return 1
    print(f"{args.target} marts match duckdb row for row and on all {len(reference.metrics)} metrics "
          f"({', '.join(f'{k}={v:g}' for k, v in reference.metrics.items() if k.startswith('rows.'))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
