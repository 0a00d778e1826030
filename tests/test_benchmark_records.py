"""A benchmark size that stops part-way is recorded with what it measured (benchmarks/bench.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from benchmarks.bench import partial_result


def _log(path, stages: list[tuple[str, float, float, float]], done: bool) -> None:
    lines = []
    t = 0.0
    for stage, seconds, cpu, rss in stages:
        lines.append({"event": "start", "stage": stage, "t": t, "cpu": t})
        t += seconds
        lines.append({"event": "end", "stage": stage, "t": t, "cpu": t + cpu - seconds})
        lines.append({"event": "rss", "stage": stage, "peak_mb": rss, "runner_peak_mb": rss})
    if done:
        lines.append({"event": "done", "seconds": {}, "results": {}})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_a_finished_full_run_keeps_its_totals_when_the_incremental_run_stops(tmp_path):
    size = tmp_path / "1000"
    size.mkdir()
    _log(size / "full.log", [("startup", 5, 5, 300), ("ingest", 10, 12, 900), ("train", 50, 60, 9000),
                             ("score", 20, 25, 1200)], done=True)
    _log(size / "incremental.log", [("startup", 5, 5, 300)], done=False)
    args = SimpleNamespace(work_dir=tmp_path, days=10, memory_limit="1GB")

    result = partial_result(1000, args, {}, "stopped by signal 15")

    assert result["complete"] is False
    assert result["full_run_s"] == 30  # ingest + score: start-up and the weekly training are not in a run
    assert result["full_run_cpu_s"] == 37
    assert result["peak_rss_mb"] == 1200  # training is reported on its own
    assert result["train_s"] == 50
    assert "incremental_run_s" not in result
    assert result["incremental"]["stage_s"] == {"startup": 5}
