"""The steps of the daily pipeline, as plain functions. Airflow tasks only call these.

Keeping the work here (not in the DAG file) means each step runs the same from the DAG, the CLI and
the tests, and the DAG file stays cheap to parse.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from loyalist.config import Settings
from loyalist.contracts import ENTITIES
from loyalist.runlog import logged_step
from loyalist.warehouse import connect

log = logging.getLogger(__name__)


class DataQualityError(Exception):
    """A validation gate failed; the message lists every failed expectation."""


class DbtError(Exception):
    """dbt build failed; the message carries dbt's own summary of what broke."""


def as_of_date(interval_start: datetime) -> date:
    """The business day a run covers: the (daily) data interval's first day."""
    return interval_start.date()


@logged_step("check_freshness")
def check_sources_fresh(settings: Settings, end: datetime) -> list[str]:
    """Fail (FreshnessError) when a daily feed has not delivered recently enough."""
    from loyalist.freshness import check_freshness

    results = check_freshness(settings.landing_dir, list(settings.freshness_entities), end,
                              settings.freshness_max_age_hours)
    return [r.describe() for r in results]


@logged_step("ingest")
def ingest_interval(settings: Settings, start: datetime, end: datetime, batch_id: str) -> dict:
    """Pull configured sources into the landing zone, then load the files due for [start, end).

    Returns counts per entity (and per extracted source table, if a PostgreSQL source is set).
    """
    from loyalist.ingest import ingest_landing

    extracted = {}
    if settings.source_pg_dsn:
        from loyalist.sources.postgres import extract_to_landing

        for r in extract_to_landing(settings.source_pg_dsn, settings.source_pg_schema, settings.landing_dir,
                                    start, end):
            extracted[r.entity] = r.rows
    from loyalist.audiences.privacy import Suppression

    max_event_time = end + timedelta(hours=settings.future_tolerance_hours)
    suppression = Suppression.load(settings)  # erased people stay out of every future load
    with connect(settings) as con:
        results = ingest_landing(con, settings.landing_dir, start.date(), end.date(), batch_id, max_event_time,
                                 suppression=suppression)
    summary: dict[str, dict[str, int]] = {}
    for r in results:
        s = summary.setdefault(r.entity, {"files": 0, "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0})
        s["files"] += 1
        s["rows_read"] += r.rows_read
        s["rows_loaded"] += r.rows_loaded
        s["rows_quarantined"] += r.rows_quarantined
    return {"batch_id": batch_id, "entities": summary, "extracted_from_postgres": extracted}


def gx_project_root(settings: Settings) -> Path:
    """Where GX keeps its file context and the Data Docs site (``gx/uncommitted/data_docs``)."""
    return settings.data_dir / "gx"


def _report(outcomes: list, what: str) -> list[str]:
    descriptions = [o.describe() for o in outcomes]
    for d in descriptions:
        log.info(d)
    failed = [o.describe() for o in outcomes if not o.success]
    if failed:
        raise DataQualityError(f"{what} failed validation: " + " | ".join(failed))
    return descriptions


def daily_volumes(con, entities: list[str], day: date, lookback_days: int):
    """Rows read per entity on ``day`` and the median over the previous ``lookback_days`` partitions."""
    return con.execute("""
        with per_day as (
            select entity, partition_date, sum(rows_read) as rows_read from raw._load_manifest
            where entity in (select unnest(?)) and partition_date between ? - ? and ? group by all)
        select entity, max(rows_read) filter (where partition_date = ?) as day_rows,
               median(rows_read) filter (where partition_date < ?) as recent_median,
               count(*) filter (where partition_date < ?) as recent_days,
               day_rows / nullif(recent_median, 0) as ratio_to_recent_median
        from per_day group by entity""",
        [entities, day, lookback_days, day, day, day, day]).df()


@logged_step("validate_raw")
def validate_raw_batch(settings: Settings, batch_id: str, interval_end: datetime) -> list[str]:
    """Validate every raw table's rows of this batch, the day's volume and the batch's manifest with GX.

    Raises DataQualityError naming each failed expectation; returns the per-suite descriptions.
    """
    from expectations.pushdown import suspect_rows_sql
    from expectations.runner import Validator
    from expectations.suites import (
        MIN_ROWS_FOR_FILE_SHARE,
        VOLUME_LOOKBACK_DAYS,
        load_manifest_suite,
        raw_suite,
        volume_suite,
    )

    validator = Validator(gx_project_root(settings))
    outcomes = []
    max_event_time = interval_end + timedelta(hours=settings.future_tolerance_hours)
    with connect(settings) as con:
        for entity in ENTITIES:
            suite = raw_suite(entity, max_event_time)
            # Only the rows that can decide the suite go to GX (pandas): the first load is the whole history.
            sql = (suspect_rows_sql(suite, f"raw.{entity}", "_batch_id = $batch")
                   or f"select * from raw.{entity} where _batch_id = $batch")
            frame = con.execute(sql, {"batch": batch_id}).df()
            if len(frame):
                outcomes.append(validator.validate(frame, suite))
        day = interval_end.date() - timedelta(days=1)
        volumes = daily_volumes(con, list(settings.freshness_entities), day, VOLUME_LOOKBACK_DAYS)
        # Judge volume only with enough history, and only for days that delivered (freshness judges the rest).
        volumes = volumes[(volumes.recent_days >= 3) & volumes.day_rows.notna()]
        if len(volumes):
            outcomes.append(validator.validate(volumes, volume_suite()))
        manifest = con.execute("""
            select source_file as scope, rows_quarantined / greatest(rows_read, 1) as quarantine_share,
                   rows_read - rows_loaded - rows_quarantined - coalesce(rows_suppressed, 0) as unaccounted_rows
            from raw._load_manifest where batch_id = $batch and rows_read >= $min_rows
            union all
            select 'all ' || entity || ' files of the batch',
                   sum(rows_quarantined) / greatest(sum(rows_read), 1),
                   sum(rows_read - rows_loaded - rows_quarantined - coalesce(rows_suppressed, 0))
            from raw._load_manifest where batch_id = $batch group by entity""",
            {"batch": batch_id, "min_rows": MIN_ROWS_FOR_FILE_SHARE}).df()
    if len(manifest):
        outcomes.append(validator.validate(manifest, load_manifest_suite()))
    return _report(outcomes, "raw batch")


def _existing_tables(con) -> set[str]:
    rows = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
    return {r[0] for r in rows}


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@logged_step("validate_outputs")
def validate_outputs(settings: Settings, as_of: date) -> list[str]:
    """Validate marts and model outputs (the audit in write-audit-publish) before publishing."""
    from expectations.pushdown import suite_columns
    from expectations.runner import Validator
    from expectations.suites import OUTPUT_CHECKS

    validator = Validator(gx_project_root(settings))
    outcomes = []
    with connect(settings, read_only=True) as con:
        tables = _existing_tables(con)
        for check in OUTPUT_CHECKS:
            if check.table in tables:
                suite = check.suite()
                sql = check.sql.format(as_of=as_of.isoformat())
                columns = suite_columns(suite)
                if columns:  # only what the suite reads reaches pandas (marts.customers is wide and long)
                    sql = f"select {', '.join(_quoted(c) for c in columns)} from ({sql}) as checked"
                outcomes.append(validator.validate(con.execute(sql).df(), suite))
    descriptions = _report(outcomes, "outputs")
    log.info("GX Data Docs: %s", validator.docs_index())
    return descriptions


@logged_step("classify_feedback")
def classify_feedback(settings: Settings) -> dict:
    """Classify new or changed feedback texts into ``ml.feedback_classified`` (topics, 4C, sentiment).

    Incremental by (feedback_id, updated_at) and idempotent; jieba's dictionary cache lives in the data dir.
    """
    from ml.feedback_text import FeedbackClassifier, classify_new_feedback

    with connect(settings) as con:
        if "raw.feedback" not in _existing_tables(con):
            log.info("no raw.feedback yet: nothing to classify")
            return {"feedback_versions": 0, "topic_rows": 0}
        return classify_new_feedback(con, FeedbackClassifier(cache_dir=settings.data_dir / "cache" / "jieba"))


def dbt_command(settings: Settings, *args: str) -> list[str]:
    dbt = Path(sys.executable).with_name("dbt")
    return [str(dbt) if dbt.exists() else "dbt", *args, "--project-dir", str(settings.dbt_project_dir),
            "--profiles-dir", str(settings.dbt_project_dir), "--target", settings.dbt_target]


def dbt_env(settings: Settings, as_of: date | None = None) -> dict[str, str]:
    """The environment of a dbt process; ``as_of`` sets the run's day (LOYALIST_AS_OF_DATE, macros/as_of.sql).

    Without ``as_of`` an inherited LOYALIST_AS_OF_DATE is removed, so ``--vars as_of_date`` decides.
    """
    from loyalist.targets import spark_dir

    dbt_dir = settings.data_dir / "dbt"
    env = {k: v for k, v in os.environ.items() if k != "LOYALIST_AS_OF_DATE"}
    if as_of is not None:
        env["LOYALIST_AS_OF_DATE"] = as_of.isoformat()
    return {
        **env,
        "LOYALIST_WAREHOUSE": str(settings.warehouse_path),
        "LOYALIST_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "LOYALIST_SPARK_DIR": str(spark_dir(settings)),
        "DBT_TARGET_PATH": str(dbt_dir / "target"),
        "DBT_LOG_PATH": str(dbt_dir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_USE_COLORS": "False",
    }


@logged_step("dbt_build")
def dbt_build(settings: Settings, as_of: date, *, unit_tests: bool = False) -> None:
    """Run ``dbt build`` (seeds, models, snapshots, data tests) as of ``as_of``.

    Unit tests check the models' SQL against fixed inputs, not the day's data, so the daily build
    leaves them out (dbt's advice for production: ``--exclude-resource-type unit_test``; they cost a
    fixed ~10 s per run); ``unit_tests=True`` or ``dbt_unit_tests`` runs them (the test suite does).
    On a Postgres or Spark target the raw tables are first mirrored there from DuckDB (loyalist.targets).
    """
    if settings.dbt_target != "duckdb":
        from loyalist.targets import load_raw_for_target

        load_raw_for_target(settings)
    skip = [] if unit_tests else ["--exclude-resource-type", "unit_test"]
    # The day as an environment variable, not --vars: changed vars make dbt re-parse the whole project
    # (macros/as_of.sql says why).
    _run_dbt(settings, "build", *skip, as_of=as_of)


def dbt_unit_tests(settings: Settings) -> int:
    """Run every dbt unit test (the parents' tables must exist: run after a build); return how many ran."""
    _run_dbt(settings, "test", "--select", "test_type:unit")
    results = json.loads((settings.data_dir / "dbt" / "target" / "run_results.json").read_text())["results"]
    return sum(r["unique_id"].startswith("unit_test.") for r in results)


def _run_dbt(settings: Settings, *args: str, as_of: date | None = None) -> None:
    cmd = dbt_command(settings, *args)
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, env=dbt_env(settings, as_of), capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        log.info("dbt | %s", line)
    if proc.returncode != 0:
        failures = [ln for ln in proc.stdout.splitlines() if "ERROR" in ln or "FAIL" in ln]
        raise DbtError(f"dbt {args[0]} failed (exit {proc.returncode}): " + " | ".join(failures[-10:] or
                                                                                    proc.stderr.splitlines()[-5:]))


DBT_DOCS_FILES = ("static_index.html", "index.html", "manifest.json", "catalog.json")


@logged_step("dbt_docs")
def dbt_docs(settings: Settings, as_of: date) -> Path:
    """``dbt docs generate --static`` and copy the site to ``data/docs/dbt``.

    ``static_index.html`` carries the manifest and catalog inside it, so it opens from file:// (the
    plain ``index.html`` fetches its JSON and needs an HTTP server). ``--no-compile`` in the build's
    target folder reuses its partial parse and skips compiling every model again (≈3x faster measured;
    the docs then show each model's source SQL, not the compiled SQL).
    """
    from loyalist.report import dbt_docs_dir

    cmd = dbt_command(settings, "docs", "generate", "--static", "--no-compile")
    log.info("running %s", " ".join(cmd))
    env = dbt_env(settings, as_of)  # the same parse inputs as the build's, so its saved parse is reused
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stdout.splitlines() if "Error" in ln or "ERROR" in ln]
        raise DbtError(f"dbt docs generate failed (exit {proc.returncode}): "
                       + " | ".join(errors[-5:] or proc.stderr.splitlines()[-5:]))
    target = dbt_docs_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    for name in DBT_DOCS_FILES:
        tmp = target / f".{name}.tmp"
        shutil.copyfile(Path(env["DBT_TARGET_PATH"]) / name, tmp)
        os.replace(tmp, target / name)
    return target / "static_index.html"


def dbt_project_fingerprint(settings: Settings) -> str:
    """What the dbt docs depend on besides the data: the project's files, the target and the warehouse.

    The docs describe models, columns and tests; a daily load changes none of them, so the daily run
    rebuilds the docs only when this changes (a dbt docs build costs 10-45 s on this machine).
    """
    import hashlib

    h = hashlib.sha256(f"{settings.dbt_target}|{settings.warehouse_path}".encode())
    skip = {"target", "logs", "dbt_packages"}
    for path in sorted(settings.dbt_project_dir.rglob("*")):
        rel = path.relative_to(settings.dbt_project_dir)
        if path.is_file() and rel.parts[0] not in skip:
            stat = path.stat()
            h.update(f"{rel}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def write_run_report(settings: Settings, as_of: date) -> Path:
    """The daily run's last step: dbt docs (when the project changed), then the HTML run report.

    A dbt docs failure still writes the report (its link is then marked as not built) and fails the step
    afterwards, so the alert fires and readers still get the day's report.
    """
    from loyalist.report import dbt_docs_dir, write_report

    docs_error = None
    stamp = dbt_docs_dir(settings) / ".project-fingerprint"
    fingerprint = dbt_project_fingerprint(settings)
    current = (dbt_docs_dir(settings) / "static_index.html").exists() and stamp.exists() and \
        stamp.read_text(encoding="utf-8") == fingerprint
    try:
        if current:
            log.info("dbt docs are up to date with the project: not rebuilt")
        else:
            dbt_docs(settings, as_of)
            stamp.write_text(fingerprint, encoding="utf-8")
    except DbtError as exc:
        docs_error = exc
    path = write_report(settings)
    log.info("run report: %s", path)
    if docs_error is not None:
        raise docs_error
    return path


def published_path(settings: Settings) -> Path:
    return settings.data_dir / "published" / settings.warehouse_path.name


@logged_step("publish")
def publish(settings: Settings) -> Path:
    """Copy the validated warehouse to the readers' file atomically.

    DuckDB lets no other process open a file while the pipeline writes it, so BI tools and exports
    read this copy. ``os.replace`` swaps it in one step: open readers keep their snapshot, new
    connections see the new version, nobody ever sees a half-written file.
    """
    target = published_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(settings.warehouse_path, tmp)
    os.replace(tmp, target)
    log.info("published %s", target)
    return target


def table_counts(settings: Settings, path: Path | None = None) -> dict[str, int]:
    """Row count of every table and view in the warehouse (schema.table -> rows)."""
    with connect(settings, path or published_path(settings), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog') order by 1, 2").fetchall()
        return {f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables}


def models_dir(settings: Settings) -> Path:
    """Model artifacts (skops + metadata) and the promotion pointer."""
    return settings.data_dir / "models"


class ScoringUnavailable(Exception):
    """Scoring cannot run yet (too little history, no model promoted); the message says why."""


@logged_step("score", skipped=(ScoringUnavailable,))
def score_customers(settings: Settings, as_of: date) -> dict:
    """Churn scores and CLV for ``as_of`` with the promoted models (trains first if none is promoted)."""
    from ml.config import NotEnoughHistoryError
    from ml.pipeline import NoPromotedModelError, score

    with connect(settings) as con:
        try:
            return score(con, as_of, models_dir(settings))
        except (NotEnoughHistoryError, NoPromotedModelError) as exc:
            log.warning("scoring skipped: %s", exc)
            raise ScoringUnavailable(str(exc)) from exc


@logged_step("rewards")
def build_rewards(settings: Settings, as_of: date) -> dict:
    """Reward eligibility for ``as_of`` from the marts and model outputs (rules: ml/reward_rules.yml)."""
    from ml.rewards import build_reward_eligibility

    with connect(settings) as con:
        return build_reward_eligibility(con, as_of)


def retrain_models(settings: Settings, as_of: date) -> dict:
    """Train, evaluate against baselines and the promoted model, promote if better."""
    from ml.pipeline import train_evaluate_promote

    with connect(settings) as con:
        return train_evaluate_promote(con, as_of, models_dir(settings))


# What `loyalist summary` shows of the customer base: (title, table, column to count by).
DISTRIBUTIONS = (
    ("RFM segments", "marts.customer_segments", "rfm_segment"),
    ("Lifecycle stages", "marts.customers", "lifecycle_stage"),
    ("Value tiers", "marts.customer_segments", "value_tier"),
    ("Customer levels", "marts.customer_segments", "customer_level"),
    ("Loyalty tiers", "marts.loyalty_balances", "loyalty_tier"),
    ("Churn risk bands (latest scoring)", "ml.churn_scores", "risk_band"),
    ("Rewards (latest run; includes the control group)", "ml.reward_eligibility", "reward_type"),
)


def distributions(settings: Settings, path: Path | None = None) -> dict[str, list[tuple[str, int]]]:
    """Counts per value of each DISTRIBUTIONS column that exists in the (published) warehouse."""
    out = {}
    with connect(settings, path or published_path(settings), read_only=True) as con:
        columns = {(f"{s}.{t}", c) for s, t, c in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns").fetchall()}
        for title, table, column in DISTRIBUTIONS:
            if (table, column) not in columns:
                continue
            # Model outputs keep one slice per scoring date: show the latest.
            latest = f" where as_of_date = (select max(as_of_date) from {table})" if table.startswith("ml.") else ""
            out[title] = con.execute(f"select coalesce(cast({column} as varchar), '(none: no purchase yet)'), count(*) "
                                     f"from {table}{latest} group by 1 order by 2 desc").fetchall()
        if ("ml.model_evaluations", "metric") in columns:
            out["Churn model vs baselines (latest evaluation, ROC AUC)"] = [
                (f"model {v} / recency {r} / heuristic {h}", n) for v, r, h, n in con.execute("""
                    select round(model_value, 3), round(baseline_recency, 3), round(baseline_heuristic, 3),
                           n_customers
                    from ml.model_evaluations where model_kind = 'churn' and metric = 'roc_auc'
                    order by created_at desc limit 1""").fetchall()]
    return out
