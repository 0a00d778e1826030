"""Run the daily pipeline's steps for one data interval, in this process, and report each step's wall time.

The harness (``benchmarks/bench.py``) starts this as a subprocess so it can sample the RSS of the whole
process tree (this interpreter, dbt's subprocess, DuckDB's threads) per step. It starts one process per
step, as Airflow runs each task in its own process, so a step's memory does not include what earlier
steps left behind. The steps are the same functions the ``loyalist_daily`` DAG calls
(``loyalist/pipeline.py``), in the DAG's order. The heavy imports the given steps need (GX for the
validations, scikit-learn for the ML steps) happen in the ``startup`` step, so step times are work, not
import time.

Output: one JSON line per event on stdout, ``{"event": "start"|"end", "stage": ..., "t": ...}``, and a
final ``{"event": "done", ...}`` line with per-step seconds and results.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta

T0 = time.perf_counter()

STAGES = ("ingest", "check_freshness", "validate_raw", "classify_feedback", "dbt_build", "train", "score",
          "rewards", "validate_outputs", "publish")
VALIDATION_STAGES = {"validate_raw", "validate_outputs"}
ML_STAGES = {"train", "score", "rewards"}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children (dbt), for contended machines."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def emit(**fields) -> None:
    print(json.dumps({**fields, "cpu": cpu_seconds()}, default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--day", required=True, help="the business day D (the run covers [D, D+1))")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")

    emit(event="start", stage="startup", t=time.perf_counter() - T0)
    from loyalist import pipeline
    from loyalist.config import get_settings

    if VALIDATION_STAGES & set(stages):
        from expectations import runner  # noqa: F401  (GX: ~8 s of imports)
    if ML_STAGES & set(stages):
        from ml import pipeline as ml_pipeline  # noqa: F401  (scikit-learn)

    settings = get_settings()
    emit(event="end", stage="startup", t=time.perf_counter() - T0)

    day = date.fromisoformat(args.day)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    batch = None
    results: dict[str, object] = {}
    seconds: dict[str, float] = {}
    for stage in stages:
        emit(event="start", stage=stage, t=time.perf_counter() - T0)
        t = time.perf_counter()
        if stage == "ingest":
            batch = pipeline.ingest_interval(settings, start, end, batch_id=args.run_id)
            results[stage] = batch["entities"]
        elif stage == "check_freshness":
            results[stage] = pipeline.check_sources_fresh(settings, end)
        elif stage == "validate_raw":
            results[stage] = pipeline.validate_raw_batch(settings, args.run_id, end)
        elif stage == "classify_feedback":
            results[stage] = pipeline.classify_feedback(settings)
        elif stage == "dbt_build":
            pipeline.dbt_build(settings, day)
        elif stage == "train":
            results[stage] = pipeline.retrain_models(settings, day)
        elif stage == "score":
            results[stage] = pipeline.score_customers(settings, day)
        elif stage == "rewards":
            results[stage] = pipeline.build_rewards(settings, day)
        elif stage == "validate_outputs":
            results[stage] = pipeline.validate_outputs(settings, day)
        elif stage == "publish":
            results[stage] = str(pipeline.publish(settings))
        seconds[stage] = time.perf_counter() - t
        emit(event="end", stage=stage, t=time.perf_counter() - T0)
    emit(event="done", seconds=seconds, results=results, batch=batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
