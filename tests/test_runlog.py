"""The pipeline's run log: what each step records, and which entries make up the latest run."""

from __future__ import annotations

import json

import pytest

from loyalist import runlog


class Skip(Exception):
    pass


@runlog.logged_step("ingest")
def _ingest(settings, n):
    return {"rows": n}


@runlog.logged_step("score", skipped=(Skip,))
def _score(settings):
    raise Skip("too little history")


@runlog.logged_step("validate_raw")
def _validate(settings):
    raise ValueError("raw_orders: FAILED (3 expectations)")


def test_steps_record_outcome_and_the_latest_run_starts_at_the_last_ingest(settings):
    _ingest(settings, 1)
    _ingest(settings, 2)
    with pytest.raises(Skip):
        _score(settings)
    with pytest.raises(ValueError):
        _validate(settings)
    with runlog.log_path(settings).open("a", encoding="utf-8") as fh:
        fh.write('{"step": "publi')  # a line cut short by a killed process
    run = runlog.latest_run(settings)
    assert [(e["step"], e["status"]) for e in run] == [("ingest", "success"), ("score", "skipped"),
                                                      ("validate_raw", "failed")]
    assert run[0]["detail"] == {"rows": 2} and run[1]["detail"] == "too little history"
    assert all(e["seconds"] >= 0 and e["started_at"] for e in run)
    assert len(runlog.log_path(settings).read_text(encoding="utf-8").splitlines()) == 5


def test_large_results_are_cut_to_keep_the_log_small(settings):
    _ingest(settings, "x" * 10_000)
    line = runlog.log_path(settings).read_text(encoding="utf-8").splitlines()[-1]
    assert len(line) < runlog.MAX_DETAIL_CHARS + 500 and json.loads(line)["detail"].endswith("…")
