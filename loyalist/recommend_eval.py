"""Offline evaluation of the category recommendations over several later windows.

Every daily ``dbt build`` already evaluates one window (``marts.recommendation_evaluation``: recommend
as of as_of_date - recs_eval_window_days, count hits up to as_of_date). This module replays that
same model for other window ends, for reports and tests: it asks dbt to compile
``recommendation_evaluation`` with ``as_of_date`` = the window end (and optional var overrides, e.g.
another ``recs_repeat_weight``), then runs the compiled SQL on a read-only connection. It is the
mart's own SQL, not a re-implementation, so the numbers are the ones the mart would publish, and
the warehouse is never written. Every event in that SQL is filtered by date, so the windows may end
before the date the warehouse was built for.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd

from loyalist.config import Settings
from loyalist.pipeline import DbtError, dbt_command, dbt_env
from loyalist.warehouse import connect

log = logging.getLogger(__name__)

MODEL = "recommendation_evaluation"
COMPILED = Path("compiled/loyalist/models/marts/recommendations") / f"{MODEL}.sql"


def compile_evaluation_sql(settings: Settings, window_end: date, extra_vars: dict | None = None) -> str:
    """The SQL of recommendation_evaluation for ``as_of_date = window_end`` (plus ``extra_vars``)."""
    dbt_vars = {**(extra_vars or {}), "as_of_date": window_end.isoformat()}
    with tempfile.TemporaryDirectory(prefix="loyalist-recs-eval-") as target:
        env = {**dbt_env(settings), "DBT_TARGET_PATH": target}
        cmd = dbt_command(settings, "compile", "--select", MODEL, "--vars", json.dumps(dbt_vars))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stdout.splitlines() if "Error" in ln or "ERROR" in ln]
            raise DbtError(f"dbt compile {MODEL} failed: " + " | ".join(errors[-5:] or proc.stderr.splitlines()[-3:]))
        return (Path(target) / COMPILED).read_text(encoding="utf-8")


def evaluate_windows(settings: Settings, window_ends: list[date], extra_vars: dict | None = None) -> pd.DataFrame:
    """One row per (window end, method) with customers evaluated, hits and hit rate at k."""
    queries = [compile_evaluation_sql(settings, end, extra_vars) for end in window_ends]
    with connect(settings, read_only=True) as con:
        frames = [con.execute(sql).df() for sql in queries]
    result = pd.concat(frames, ignore_index=True).sort_values(["window_end_date", "method"], ignore_index=True)
    log.info("recommendation evaluation over %s windows:\n%s", len(window_ends), result.to_string(index=False))
    return result


def lift_over_popularity(result: pd.DataFrame) -> pd.DataFrame:
    """Per window: model and popularity hit rates side by side, and their difference."""
    wide = result.pivot_table(index=["cutoff_date", "window_end_date", "k", "customers_evaluated"],
                              columns="method", values="hit_rate").reset_index()
    wide["difference"] = wide["model"] - wide["popularity"]
    return wide


def markdown_table(result: pd.DataFrame) -> str:
    """The comparison as a Markdown table (for docs/recommendations.md)."""
    wide = lift_over_popularity(result)
    lines = ["| cutoff | window end | k | customers | model hit rate | popularity hit rate | difference |",
             "|---|---|---|---|---|---|---|"]
    for row in wide.itertuples(index=False):
        lines.append(f"| {row.cutoff_date:%Y-%m-%d} | {row.window_end_date:%Y-%m-%d} | {row.k} | "
                     f"{row.customers_evaluated} | {row.model:.3f} | {row.popularity:.3f} | {row.difference:+.3f} |")
    return "\n".join(lines)
