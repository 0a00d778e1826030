"""`make bench`: generate data at several sizes, run the daily pipeline on it and measure it.

Per size (customers x DAYS days of history, plus one more day for the incremental run):

1. ``generate_s``: ``loyalist generate --workers 2`` of DAYS + 1 days ending END_DATE. The last day is
   not loaded by the full run (a run for day D loads partitions up to D only), so it is the new day
   of the incremental run, consistent with the history because it comes from the same generation.
2. Full run for day D = END_DATE - 1 on an empty warehouse: the DAG's steps (``benchmarks/stages.py``)
   in a subprocess whose whole process tree (dbt included) is sampled for RSS. ``train`` (the weekly
   retrain, which the first daily run would otherwise do inside ``score``) is timed as its own step
   and not counted in ``full_run_s``.
3. Incremental run for END_DATE on top of it (the same steps, without ``train``).
4. References on the warehouse as of END_DATE, all starting from ``marts.transactions``: the floor
   scan, pandas and polars marts (each in a fresh subprocess), and ``marts_s``: the pipeline's own SQL
   for the same marts, timed in DuckDB (see ``pipeline_marts``; ``marts_path_s`` is the cost of the
   models from raw to ``marts.transactions``). Segment and stage counts of all four must agree, or the
   bench fails.

Results: ``benchmarks/results.json`` (one object per size) and ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

from benchmarks import report
from benchmarks.baselines import TRANSACTION_COLUMNS, export_inputs, floor_scan, pipeline_counts
from benchmarks.calibrate import calibrate

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent
FULL_STAGES = ("ingest", "check_freshness", "validate_raw", "classify_feedback", "dbt_build", "train", "score",
               "rewards", "validate_outputs", "publish")
NOT_IN_RUN = ("train",)  # weekly, reported on its own
INCREMENTAL_STAGES = tuple(s for s in FULL_STAGES if s not in NOT_IN_RUN)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# Process-tree RSS sampling
# --------------------------------------------------------------------------------------------------
class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; keeps the peak per label.

    ``runner_peaks``: the peaks of the process itself (the step runner, without dbt's subprocess): what
    earlier steps left in it counts in the tree's peak of a later step, which one Airflow task per
    process would not carry.
    """

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.label = "startup"
        self.peaks: dict[str, float] = {}
        self.runner_peaks: dict[str, float] = {}
        self.stop = threading.Event()

    def tree_rss(self) -> tuple[int, int]:
        """(RSS of the whole tree, RSS of the root process) in bytes."""
        total, root = 0, 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return 0, 0
        for p in procs:
            with contextlib.suppress(psutil.Error):  # exited between listing and reading
                rss = p.memory_info().rss
                total += rss
                root = rss if p is self.proc else root
        return total, root

    def run(self) -> None:
        while not self.stop.is_set():
            total, root = self.tree_rss()
            self.peaks[self.label] = max(self.peaks.get(self.label, 0.0), total / 2**20)
            self.runner_peaks[self.label] = max(self.runner_peaks.get(self.label, 0.0), root / 2**20)
            self.stop.wait(self.interval)


def run_measured(cmd: list[str], env: dict[str, str], log_path: Path) -> dict:
    """Run ``cmd``; return wall time, peak tree RSS (total and per stage) and the stages' JSON events."""
    t0 = time.perf_counter()
    with log_path.open("a") as log:
        # Own session: an interrupted bench stops the whole tree (dbt included), not just the child.
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                                start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        events, done = [], None
        try:
            for line in proc.stdout:
                log.write(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                events.append(event)
                if event.get("event") == "start":
                    sampler.label = event["stage"]
                elif event.get("event") == "end":  # the stage's peak, so an interrupted run still has it
                    peak = round(sampler.peaks.get(event["stage"], 0.0), 1)
                    runner = round(sampler.runner_peaks.get(event["stage"], 0.0), 1)
                    log.write(json.dumps({"event": "rss", "stage": event["stage"], "peak_mb": peak,
                                          "runner_peak_mb": runner}) + "\n")
                elif event.get("event") == "done":
                    done = event
                log.flush()  # follow progress with `tail -f`
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
            sampler.stop.set()
            sampler.join()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise BenchError(f"{' '.join(cmd[:4])}... failed (exit {rc}); see {log_path}")
    return {"wall_s": wall, "peak_rss_mb": max(sampler.peaks.values(), default=0.0), "stage_rss_mb": sampler.peaks,
            "stage_runner_rss_mb": sampler.runner_peaks, "events": events, "done": done}


# --------------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------------
def bench_env(data_dir: Path, memory_limit: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALIST_")}
    env.update({
        "LOYALIST_DATA_DIR": str(data_dir),
        "LOYALIST_DUCKDB_MEMORY_LIMIT": memory_limit,
        "TMPDIR": str(data_dir / "tmp"),  # DuckDB spills next to the warehouse (<file>.tmp) anyway
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "PYTHONPATH": str(ROOT),
    })
    (data_dir / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def dbt_timings(data_dir: Path) -> dict:
    """Node timings from the last dbt invocation's run_results.json (execution only, no start-up)."""
    path = data_dir / "dbt" / "target" / "run_results.json"
    rr = json.loads(path.read_text())
    nodes = {}
    for r in rr["results"]:
        name = r["unique_id"].split(".", 2)[-1]
        if r["unique_id"].startswith(("model.", "seed.", "snapshot.")):
            nodes[name] = round(r["execution_time"], 3)
    tests = sum(r["execution_time"] for r in rr["results"] if r["unique_id"].startswith(("test.", "unit_test.")))
    return {"elapsed_s": rr["elapsed_time"], "tests_s": round(tests, 3),
            "slowest_models": dict(sorted(nodes.items(), key=lambda kv: -kv[1])[:8])}


def run_totals(stage_s: dict[str, float], stage_cpu_s: dict[str, float],
               stage_rss_mb: dict[str, float]) -> tuple[float, float, float]:
    """A run's wall and CPU seconds and peak RSS: its steps without start-up and the weekly training."""
    counted = [k for k in stage_s if k not in NOT_IN_RUN and k != "startup"]
    return (round(sum(stage_s[k] for k in counted), 3), round(sum(stage_cpu_s.get(k, 0.0) for k in counted), 3),
            round(max(v for k, v in stage_rss_mb.items() if k not in NOT_IN_RUN), 1))


def run_day(data_dir: Path, env: dict[str, str], day: date, stages: tuple[str, ...], tag: str) -> dict:
    """One daily run: each step in its own process (as Airflow runs each task), all logged to ``<tag>.log``.

    Per step: wall and CPU seconds, the process tree's peak RSS, and the step process's start-up (its
    interpreter and imports), which is reported under ``startup_s`` and not counted in the run.
    """
    run_id = f"bench__{tag}__{day.isoformat()}"
    log_path = data_dir / f"{tag}.log"
    log_path.unlink(missing_ok=True)
    stage_s, stage_cpu_s, stage_rss, runner_rss, startup_s, results = {}, {}, {}, {}, {}, {}
    wall = 0.0
    cpu_before = psutil.cpu_times()
    for stage in stages:
        cmd = [PY, "-m", "benchmarks.stages", "--day", day.isoformat(), "--stages", stage, "--run-id", run_id]
        m = run_measured(cmd, env, log_path)
        if m["done"] is None:
            raise BenchError(f"{tag} run did not finish {stage}; see {log_path}")
        wall += m["wall_s"]
        times, cpu = _event_spans(m["events"])
        # The process's start: from exec to the end of its imports (the interpreter's own start included).
        startup_s[stage] = round(m["wall_s"] - times[stage], 3)
        stage_s[stage], stage_cpu_s[stage] = times[stage], cpu[stage]
        stage_rss[stage] = round(m["stage_rss_mb"].get(stage, 0.0), 1)
        runner_rss[stage] = round(m["stage_runner_rss_mb"].get(stage, 0.0), 1)
        stage_rss["startup"] = max(stage_rss.get("startup", 0.0), round(m["stage_rss_mb"].get("startup", 0.0), 1))
        results.update(m["done"]["results"])
    dbt = dbt_timings(data_dir) if "dbt_build" in stages else {}
    if dbt:
        # dbt's fixed cost: interpreter start, imports, project parse, adapter connect.
        dbt["startup_s"] = round(stage_s["dbt_build"] - dbt["elapsed_s"], 3)
    run_s, run_cpu_s, peak_rss_mb = run_totals(stage_s, stage_cpu_s, stage_rss)
    return {"stage_s": stage_s, "run_s": run_s, "wall_s": round(wall, 3), "startup_s": startup_s,
            "cpu_steal_pct": steal_pct(cpu_before, psutil.cpu_times()),
            "stage_cpu_s": stage_cpu_s, "run_cpu_s": run_cpu_s, "peak_rss_mb": peak_rss_mb,
            "stage_rss_mb": stage_rss, "stage_runner_rss_mb": runner_rss, "dbt": dbt, "results": results}


def steal_pct(before, after) -> float | None:
    """Share of the machine's CPU time the hypervisor gave to other guests between two ``psutil.cpu_times()``.

    On this virtual machine the same code ran 1.6-2.7x slower on some days than on others; steal time
    is the part of that the guest can see, so every run records it.
    """
    total = sum(after) - sum(before)
    steal = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    return round(100 * steal / total, 1) if total > 0 else None


def _event_spans(events: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds of each step from its start and end events."""
    starts = {e["stage"]: e for e in events if e.get("event") == "start"}
    ends = {e["stage"]: e for e in events if e.get("event") == "end"}
    return ({s: round(e["t"] - starts[s]["t"], 3) for s, e in ends.items()},
            {s: round(e.get("cpu", 0.0) - starts[s].get("cpu", 0.0), 3) for s, e in ends.items()})


def compiled_sql(data_dir: Path, model_path: str) -> str:
    return (data_dir / "dbt" / "target" / "compiled" / "loyalist" / "models" / model_path).read_text()


# The models between the raw loads and the marts' input (marts.transactions), in build order, each with the
# kind of relation dbt makes of it: measured as ``marts_path_s``, context for the marts step (the references
# start from marts.transactions too). The base models are incremental in the daily run; here they are
# timed as a full build from the raw loads (compiled with --full-refresh, ``compile_reference_models``).
PATH_MODELS = (
    ("staging.base_crm__orders", "staging/crm/base/base_crm__orders.sql", "table"),
    ("staging.stg_crm__orders", "staging/crm/stg_crm__orders.sql", "view"),
    ("staging.base_crm__order_items", "staging/crm/base/base_crm__order_items.sql", "table"),
    ("staging.stg_crm__order_items", "staging/crm/stg_crm__order_items.sql", "view"),
    ("marts.transactions", "marts/core/transactions.sql", "table"),
)
# The marts step itself: the RFM segments and the lifecycle stages, from marts.transactions (both start
# from the customers' activity spans, built first).
MART_MODELS = (
    ("intermediate.int_customer_activity_spans", "intermediate/activity/int_customer_activity_spans.sql", "table"),
    ("intermediate.int_customer_rfm", "intermediate/segmentation/int_customer_rfm.sql", "table"),
    ("intermediate.int_customer_lifecycle_snapshots", "intermediate/lifecycle/int_customer_lifecycle_snapshots.sql",
     "table"),
)


def _model_names(models: tuple[tuple[str, str, str], ...]) -> list[str]:
    return [path.split("/")[-1].removesuffix(".sql") for _, path, _ in models]


def compile_reference_models(env: dict[str, str], as_of: date) -> None:
    """Compile the path and marts models as of ``as_of`` with this checkout's SQL, the path's incremental
    models as a full build (``--full-refresh``: their SQL from the raw loads, not the daily delta)."""
    from loyalist.config import get_settings
    from loyalist.pipeline import dbt_command, dbt_env

    os.environ.update({k: v for k, v in env.items() if k.startswith("LOYALIST_")})
    settings = get_settings()
    proc = subprocess.run(dbt_command(settings, "compile", "--full-refresh", "--select",
                                      *_model_names(PATH_MODELS + MART_MODELS)),
                          env={**env, **dbt_env(settings, as_of)}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"dbt compile failed: {proc.stdout.strip().splitlines()[-3:]}")


def _rebuild(con, data_dir: Path, models: tuple[tuple[str, str, str], ...]) -> tuple[dict[str, float], float]:
    """Re-materialize each model from the SQL dbt compiled for it: (seconds per model, CPU seconds)."""
    seconds, cpu = {}, 0.0
    for relation, path, kind in models:
        sql = f"create or replace {kind} {relation} as ({compiled_sql(data_dir, path)})"
        t, c = time.perf_counter(), time.process_time()
        con.execute(sql)
        seconds[relation.split(".")[1]] = round(time.perf_counter() - t, 3)
        cpu += time.process_time() - c
    return seconds, cpu


def pipeline_marts(con, data_dir: Path, as_of: date) -> dict:
    """The pipeline's time for the marts the baselines build, executed as dbt does, without dbt's start-up.

    First the path to the marts' input (``PATH_MODELS``: staging dedupe + as-of filter of raw orders
    and lines, the ``transactions`` fact), then the marts step (``MART_MODELS``: the RFM model and the
    lifecycle snapshot of the as-of day), each re-materialized from the SQL ``compile_reference_models``
    compiled (same as-of date; the path's incremental base models as a full build). Identity
    resolution is an input of both sides and not timed; neither are dbt's start-up, parse and tests.
    """
    path_seconds, path_cpu = _rebuild(con, data_dir, PATH_MODELS)
    seconds, cpu = _rebuild(con, data_dir, MART_MODELS)

    def grouped(sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(con.execute(sql).fetchall())}

    counts = {"rfm_segment": grouped("select coalesce(rfm_segment, '(none)'), count(*) "
                                     "from intermediate.int_customer_rfm group by 1"),
              "lifecycle_stage": grouped("select lifecycle_stage, count(*) "
                                         "from intermediate.int_customer_lifecycle_snapshots "
                                         f"where snapshot_date = '{as_of}' group by 1")}
    return {"seconds": seconds, "total_s": round(sum(seconds.values()), 3), "cpu_s": round(cpu, 3),
            "path_seconds": path_seconds, "path_s": round(sum(path_seconds.values()), 3),
            "path_cpu_s": round(path_cpu, 3), "counts": counts}


def run_baseline(impl: str, inputs: Path, as_of: date, env: dict[str, str], log: Path) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([PY, "-m", "benchmarks.baselines", impl, str(inputs), as_of.isoformat()], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    log.write_text(proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"{impl} baseline failed: {proc.stderr.strip().splitlines()[-1:]} (see {log})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t, 3)
    return out


def references(data_dir: Path, env: dict[str, str], as_of: date, memory_limit: str) -> dict:
    import duckdb

    from loyalist.config import get_settings
    from loyalist.warehouse import connect

    compile_reference_models(env, as_of)
    settings = get_settings()
    inputs = data_dir / "baseline_inputs"
    with connect(settings) as con:
        export_inputs(con, inputs)
        transactions = con.execute("select count(*) from marts.transactions").fetchone()[0]
        customers = con.execute("select count(*) from marts.customers").fetchone()[0]
        raw_orders = con.execute("select count(*) from raw.orders").fetchone()[0]
        expected = pipeline_counts(con)
    # Floor: a fresh connection (cold DuckDB buffer cache, warm OS cache), best of 3.
    floor, floor_cpu = [], []
    for _ in range(3):
        with connect(settings, read_only=True) as con:
            t, c = time.perf_counter(), time.process_time()
            floor_scan(con)
            floor.append(time.perf_counter() - t)
            floor_cpu.append(time.process_time() - c)
    with connect(settings) as con:
        marts = pipeline_marts(con, data_dir, as_of)
    pandas = run_baseline("pandas", inputs, as_of, env, data_dir / "pandas.log")
    polars = run_baseline("polars", inputs, as_of, env, data_dir / "polars.log")
    for name, got in (("pipeline SQL (bench re-run)", marts["counts"]), ("pandas", pandas["counts"]),
                      ("polars", polars["counts"])):
        if got != expected:
            raise BenchError(f"{name} counts differ from marts.customer_segments:\n{got}\nvs\n{expected}")
    del duckdb
    return {"transactions": transactions, "customers_resolved": customers, "raw_order_rows": raw_orders,
            "floor_s": round(min(floor), 3), "floor_runs_s": [round(x, 3) for x in floor],
            "floor_columns": list(TRANSACTION_COLUMNS),
            "marts_s": marts["total_s"], "marts_breakdown_s": marts["seconds"],
            "marts_path_s": marts["path_s"], "marts_path_breakdown_s": marts["path_seconds"],
            "pandas_s": round(pandas["seconds"], 3), "pandas_peak_rss_mb": round(pandas["peak_rss_mb"], 1),
            "polars_s": round(polars["seconds"], 3), "polars_peak_rss_mb": round(polars["peak_rss_mb"], 1),
            # CPU seconds (all threads): less disturbed than wall time when other jobs share the cores.
            "cpu_s": {"floor": round(min(floor_cpu), 3), "marts": marts["cpu_s"], "marts_path": marts["path_cpu_s"],
                      "pandas": round(pandas["cpu_s"], 3),
                      "polars": round(polars["cpu_s"], 3)},
            "counts": expected}


def generate(data_dir: Path, env: dict[str, str], customers: int, days: int, end: date, seed: int) -> dict:
    cmd = [str(BIN / "loyalist"), "generate", "--customers", str(customers), "--days", str(days + 1),
           "--end-date", end.isoformat(), "--seed", str(seed), "--workers", "2",
           "--out", str(data_dir / "landing")]
    m = run_measured(cmd, env, data_dir / "generate.log")
    return {"generate_s": round(m["wall_s"], 3), "generate_peak_rss_mb": round(m["peak_rss_mb"], 1)}


def machine() -> dict:
    def cpu_model() -> str:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
        return platform.processor()

    import duckdb
    import pandas
    import polars

    dbt_version = subprocess.run([str(BIN / "dbt"), "--version"], capture_output=True, text=True).stdout
    dbt_core = next((ln.split(":")[-1].strip() for ln in dbt_version.splitlines() if "installed" in ln), "?")
    return {"nproc": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "cpu": cpu_model(),
            "kernel": platform.release(), "python": platform.python_version(), "duckdb": duckdb.__version__,
            "dbt_core": dbt_core, "pandas": pandas.__version__, "polars": polars.__version__}


def prepare(customers: int, args) -> tuple[Path, dict[str, str], dict]:
    """An empty data dir for one size with generated landing data (reused if generated with the same settings)."""
    data_dir = args.work_dir / str(customers)
    spec = {"customers": customers, "days": args.days + 1, "end_date": args.end_date.isoformat(), "seed": args.seed}
    marker = data_dir / "generate.json"
    reuse = args.reuse_landing and marker.exists() and json.loads(marker.read_text())["spec"] == spec
    if reuse:
        for child in data_dir.iterdir():
            if child.name not in ("landing", "generate.json"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = bench_env(data_dir, args.memory_limit)
    if not reuse:
        print(f"[{customers:,}] generating {args.days + 1} days ...", flush=True)
        generated = generate(data_dir, env, customers, args.days, args.end_date, args.seed)
        generated["load_avg"] = [round(x, 2) for x in os.getloadavg()]
        marker.write_text(json.dumps({"spec": spec, "result": generated}))
    return data_dir, env, json.loads(marker.read_text())["result"]


def bench_size(customers: int, args, host: dict) -> dict:
    data_dir, env, generated = prepare(customers, args)
    new_day = args.end_date
    full_day = new_day - timedelta(days=1)
    result: dict = {"customers": customers, "days": args.days, "as_of_full": full_day.isoformat(),
                    "as_of_incremental": new_day.isoformat(), "duckdb_memory_limit": args.memory_limit,
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "load_avg_start": [round(x, 2) for x in os.getloadavg()], "machine": host}
    result.update({k: v for k, v in generated.items() if k != "load_avg"})
    result["load_avg_generate"] = generated.get("load_avg")
    result["calibration"] = calibrate()  # this host's speed, to compare rows measured on different hosts
    print(f"[{customers:,}] generated in {result['generate_s']:.1f}s; full run for {full_day} ...", flush=True)
    full = run_day(data_dir, env, full_day, FULL_STAGES, "full")
    print(f"[{customers:,}] full run {full['run_s']:.1f}s (+ train {full['stage_s'].get('train', 0):.1f}s), "
          f"peak RSS {full['peak_rss_mb']:.0f} MB; incremental run for {new_day} ...", flush=True)
    inc = run_day(data_dir, env, new_day, INCREMENTAL_STAGES, "incremental")
    print(f"[{customers:,}] incremental {inc['run_s']:.1f}s; references ...", flush=True)
    refs = references(data_dir, env, new_day, args.memory_limit)
    result.update(reference_fields(refs))
    result.update({
        "full_run_s": full["run_s"],
        "incremental_run_s": inc["run_s"],
        "full_run_cpu_s": full["run_cpu_s"], "incremental_run_cpu_s": inc["run_cpu_s"],
        "peak_rss_mb": max(full["peak_rss_mb"], inc["peak_rss_mb"]),
        "train_s": full["stage_s"].get("train"),
        # Per-step process start-up (interpreter + imports), summed over each run's steps, and dbt's own.
        "startup_s": {"steps_full": round(sum(full["startup_s"].values()), 3),
                      "steps_incremental": round(sum(inc["startup_s"].values()), 3),
                      "dbt_full": full["dbt"].get("startup_s"), "dbt_incremental": inc["dbt"].get("startup_s")},
        "cpu_steal_pct": {"full": full["cpu_steal_pct"], "incremental": inc["cpu_steal_pct"]},
        "full": full, "incremental": inc,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    print(f"[{customers:,}] floor {refs['floor_s']:.2f}s marts {refs['marts_s']:.2f}s "
          f"pandas {refs['pandas_s']:.2f}s polars {refs['polars_s']:.2f}s", flush=True)
    if not args.keep_data:
        if not args.reuse_landing:
            shutil.rmtree(data_dir / "landing", ignore_errors=True)
        shutil.rmtree(data_dir / "baseline_inputs", ignore_errors=True)
        for big in ("warehouse", "published"):
            shutil.rmtree(data_dir / big, ignore_errors=True)
    return result


def reference_fields(refs: dict) -> dict:
    """A size's top-level reference numbers, and all of them under ``references``."""
    return {"transactions": refs["transactions"], "floor_s": refs["floor_s"], "pandas_s": refs["pandas_s"],
            "polars_s": refs["polars_s"], "marts_s": refs["marts_s"], "marts_path_s": refs["marts_path_s"],
            "references": refs}


def rerun_references(customers: int, args) -> dict:
    """The references again on a size's kept warehouse (``--keep-data``), with this checkout's SQL and baselines.

    For a change to the marts' SQL or to the baselines, without rerunning the pipeline: ``references``
    compiles the models first, so ``marts_s`` times the current SQL. The runs' numbers
    stay those of the earlier run; ``references_rerun`` says when and with which commit the references
    were measured.
    """
    data_dir = args.work_dir / str(customers)
    kept = data_dir / "result.json"
    result = json.loads(kept.read_text()) if kept.exists() else {}
    if not result.get("complete") or not (data_dir / "warehouse").is_dir():
        raise BenchError(f"no complete run with kept data in {data_dir}: run `bench --keep-data` for this size first")
    env = bench_env(data_dir, result["duckdb_memory_limit"])
    as_of = date.fromisoformat(result["as_of_incremental"])
    print(f"[{customers:,}] references again on the kept warehouse as of {as_of} ...", flush=True)
    refs = references(data_dir, env, as_of, result["duckdb_memory_limit"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result.update(reference_fields(refs))
    result["references_rerun"] = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "commit": commit.stdout.strip() or None,
                                  "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    print(f"[{customers:,}] floor {refs['floor_s']:.2f}s marts {refs['marts_s']:.2f}s "
          f"pandas {refs['pandas_s']:.2f}s polars {refs['polars_s']:.2f}s", flush=True)
    return result


def partial_result(customers: int, args, host: dict, reason: str) -> dict:
    """What an interrupted or failed size measured so far, from its logs (stage times, CPU, RSS peaks)."""
    data_dir = args.work_dir / str(customers)
    marker = data_dir / "generate.json"
    result: dict = {"customers": customers, "days": args.days, "complete": False, "stopped_because": reason,
                    "duckdb_memory_limit": args.memory_limit, "machine": host,
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()],
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if marker.exists():
        result.update({k: v for k, v in json.loads(marker.read_text())["result"].items() if k != "load_avg"})
    for tag in ("full", "incremental"):
        log = data_dir / f"{tag}.log"
        if not log.exists():
            continue
        events = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith('{"event"')]
        started = [e["stage"] for e in events if e["event"] == "start"]
        stage_s, stage_cpu_s = _event_spans(events)
        result[tag] = {
            "stage_s": stage_s,
            "stage_cpu_s": stage_cpu_s,
            "stage_rss_mb": {e["stage"]: e["peak_mb"] for e in events if e["event"] == "rss"},
            "stage_runner_rss_mb": {e["stage"]: e["runner_peak_mb"] for e in events
                                    if e["event"] == "rss" and "runner_peak_mb" in e},
            "unfinished_stage": next((k for k in started if k not in stage_s), None),
        }
        if set(FULL_STAGES if tag == "full" else INCREMENTAL_STAGES) <= set(stage_s):  # finished: totals measured
            run = result[tag]
            run_s, run_cpu_s, peak = run_totals(run["stage_s"], run["stage_cpu_s"], run["stage_rss_mb"])
            result[f"{tag}_run_s"], result[f"{tag}_run_cpu_s"] = run_s, run_cpu_s
            result["peak_rss_mb"] = max(result.get("peak_rss_mb", 0.0), peak)
            if tag == "full":
                result["train_s"] = run["stage_s"].get("train")
    return result


def write_results(args, result: dict) -> None:
    """Merge one size's result into the results on disk (other sizes stay) and rewrite BENCHMARKS.md."""
    n = result["customers"]
    (args.work_dir / str(n)).mkdir(parents=True, exist_ok=True)
    (args.work_dir / str(n) / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    previous = json.loads(args.results.read_text()) if args.results.exists() else []
    by_size = {r["customers"]: r for r in previous} | {n: result}
    results = [by_size[k] for k in sorted(by_size)]
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.write_text(report.markdown(results))


def _stop(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="customers per size, comma-separated")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--end-date", type=date.fromisoformat, default=date(2025, 12, 31),
                   help="the incremental day; the full run is for the day before")
    p.add_argument("--seed", type=int, default=42)
    # The pipeline's default (Settings): with 4GB dbt's process alone reached 4.7 GB at 1M customers, above the
    # 4 GiB RSS target; with 3GB every step of the whole 1M bench stayed below it (2026-12-03).
    p.add_argument("--memory-limit", default="3GB", help="LOYALIST_DUCKDB_MEMORY_LIMIT for every run")
    p.add_argument("--work-dir", type=Path, default=ROOT / ".bench")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--keep-data", action="store_true", help="keep landing files and warehouses")
    p.add_argument("--reuse-landing", action="store_true",
                   help="reuse landing data generated earlier with the same settings (its generate_s is reported)")
    p.add_argument("--generate-only", action="store_true", help="only generate the sizes' landing data")
    p.add_argument("--references-only", action="store_true",
                   help="measure only the references again, on the sizes' kept warehouses (--keep-data)")
    p.add_argument("--record-partial", metavar="REASON",
                   help="record what the sizes' logs hold (an interrupted run) as incomplete results")
    args = p.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.generate_only:
        for n in sizes:
            args.reuse_landing = True
            prepare(n, args)
        return 0
    host = machine()
    if args.record_partial:
        for n in sizes:
            write_results(args, partial_result(n, args, host, args.record_partial))
        return 0
    signal.signal(signal.SIGTERM, _stop)
    if args.references_only:
        for n in sizes:
            write_results(args, rerun_references(n, args))
        return 0
    for n in sizes:
        try:
            result = bench_size(n, args, host)
        except (BenchError, SystemExit, KeyboardInterrupt) as exc:
            print(f"bench stopped at {n:,} customers: {exc}", file=sys.stderr)
            write_results(args, partial_result(n, args, host, str(exc) or type(exc).__name__))
            return 1
        result["complete"] = True
        # Merge into the results on disk now: a quick `SIZES=10000` run replaces only that size's row.
        write_results(args, result)
    print(f"wrote {args.results} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
