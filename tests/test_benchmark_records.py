"""A benchmark size that stops part-way is recorded with what it measured (benchmarks/bench.py); the
report judges the targets from the numbers, not from their rounding (benchmarks/report.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from benchmarks.bench import FULL_STAGES, partial_result
from benchmarks.report import markdown


def _log(path, stages: list[tuple[str, float, float, float]], finished: bool) -> None:
    """A run's log as bench.run_day writes it: one process per step (start-up, the step, done)."""
    lines = []
    for i, (stage, seconds, cpu, rss) in enumerate(stages):
        lines += [{"event": "start", "stage": "startup", "t": 0.0, "cpu": 0.0},
                  {"event": "end", "stage": "startup", "t": 2.0, "cpu": 2.0},
                  {"event": "start", "stage": stage, "t": 2.0, "cpu": 2.0}]
        if i == len(stages) - 1 and not finished:
            break
        lines += [{"event": "end", "stage": stage, "t": 2.0 + seconds, "cpu": 2.0 + cpu},
                  {"event": "rss", "stage": stage, "peak_mb": rss, "runner_peak_mb": rss},
                  {"event": "done", "seconds": {stage: seconds}, "results": {}}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_a_finished_full_run_keeps_its_totals_when_the_incremental_run_stops(tmp_path):
    size = tmp_path / "1000"
    size.mkdir()
    measured = {"ingest": (10, 12, 900), "train": (50, 60, 9000), "score": (20, 25, 1200)}
    _log(size / "full.log", [(s, *measured.get(s, (1, 1, 100))) for s in FULL_STAGES], finished=True)
    _log(size / "incremental.log", [("ingest", 3, 3, 300), ("check_freshness", 1, 1, 100)], finished=False)
    args = SimpleNamespace(work_dir=tmp_path, days=10, memory_limit="1GB")

    result = partial_result(1000, args, {}, "stopped by signal 15")

    assert result["complete"] is False
    # ingest + score + 7 other steps of 1 s: start-up and the weekly training are not in a run
    assert result["full_run_s"] == 30 + 7
    assert result["full_run_cpu_s"] == 37 + 7
    assert result["peak_rss_mb"] == 1200  # training is reported on its own
    assert result["train_s"] == 50
    assert "incremental_run_s" not in result  # its steps did not all finish
    assert result["incremental"]["unfinished_stage"] == "check_freshness"
    assert result["incremental"]["stage_s"] == {"startup": 2, "ingest": 3}


def test_a_ratio_just_below_its_target_is_not_shown_as_the_target():
    # the 07:26 run of 2026-12-06: polars / marts 2.996x, which two decimals would show as 3.00x
    result = {"customers": 1_000_000, "transactions": 19_831_471, "full_run_s": 1148.1, "incremental_run_s": 733.8,
              "peak_rss_mb": 3573.9, "marts_s": 6.112, "pandas_s": 41.271, "polars_s": 18.312, "floor_s": 0.552}

    targets = markdown([result]).split("## Targets")[1]

    assert "| marts >= 3x faster than polars | 2.996x | MISSED |" in targets
    assert "| marts >= 5x faster than pandas | 6.75x | met |" in targets
    assert "| marts within 5x of the floor | 11.1x | MISSED |" in targets


def test_the_host_calibration_is_measured_and_shown_beside_the_rows():
    from benchmarks.calibrate import calibrate

    small = calibrate(repeats=2, rows=200_000, loop=100_000)
    larger = calibrate(repeats=2, rows=2_000_000, loop=1_000_000)
    assert set(small) == {"duckdb_group_by_s", "python_loop_s"}
    # the numbers are times of real work: more rows and a longer loop take longer
    assert 0 < small["duckdb_group_by_s"] < larger["duckdb_group_by_s"]
    assert 0 < small["python_loop_s"] < larger["python_loop_s"]

    machine = {"nproc": 2, "ram_gib": 23.5, "cpu": "AMD EPYC", "kernel": "6", "python": "3.11", "duckdb": "2",
               "dbt_core": "1.11", "pandas": "3", "polars": "2"}
    calibration = {"duckdb_group_by_s": 1.234, "python_loop_s": 0.5}
    rows = [{"customers": 10_000, "machine": machine, "calibration": calibration},
            {"customers": 100_000, "machine": machine}]  # a row from before the calibration existed

    machine_section = markdown(rows).split("## Machine")[1]

    assert "10,000: DuckDB group-by 1.23 s, Python loop 0.50 s." in machine_section
    assert "100,000:" not in machine_section
