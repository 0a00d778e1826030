"""The `loyalist` command as a user runs it (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOYALIST = str(Path(sys.executable).with_name("loyalist"))


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOYALIST_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([LOYALIST, *args], env=env, capture_output=True, text=True, timeout=300)


def test_generate_writes_the_landing_zone_and_reports_counts(tmp_path):
    proc = _run(["generate", "--customers", "200", "--days", "10", "--seed", "5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "generated 200 customers, 2025-12-22 .. 2025-12-31 (seed 5)" in proc.stdout
    assert len(list((tmp_path / "data" / "landing" / "orders").glob("dt=*"))) == 10


def test_errors_are_one_clear_line_without_traceback(tmp_path):
    proc = _run(["summary"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no published warehouse at ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    debug = _run(["--debug", "summary"], tmp_path)
    assert "Traceback" in debug.stderr


def test_sql_reads_a_published_copy(tmp_path):
    import duckdb

    published = tmp_path / "data" / "published" / "loyalist.duckdb"
    published.parent.mkdir(parents=True)
    with duckdb.connect(str(published)) as con:
        con.execute("create schema marts; create table marts.customers as select 'C1' as customer_id")
    proc = _run(["sql", "select count(*) as n from marts.customers"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "│" in proc.stdout and " 1 " in proc.stdout


def test_help_lists_every_subcommand(tmp_path):
    proc = _run(["--help"], tmp_path)
    assert proc.returncode == 0
    for command in ("generate", "run", "score", "report", "summary", "sql", "contract"):
        assert f"    {command} " in proc.stdout, command


def test_generate_shows_a_progress_bar_on_stderr_only(tmp_path):
    proc = _run(["generate", "--customers", "120", "--days", "3", "--seed", "5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "generating 120 customers" in proc.stderr and "1/1" in proc.stderr
    assert "generating" not in proc.stdout


def test_run_rejects_bad_dates_and_ranges_in_one_line(tmp_path):
    for args, message in ((["run", "2025-13-01"], "not a date (YYYY-MM-DD)"),
                          (["run", "--start", "2025-01-02", "--end", "2025-01-01"], "is before --start"),
                          (["run"], "give a date"),
                          (["run", "2025-01-01", "--start", "2025-01-01", "--end", "2025-01-02"], "not both")):
        proc = _run(args, tmp_path)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_report_and_score_without_a_warehouse_fail_in_one_line(tmp_path):
    for args, message in ((["report"], "error: no warehouse at "), (["score"], "error: no warehouse at ")):
        proc = _run(args, tmp_path)
        assert proc.returncode == 1 and proc.stderr.startswith(message), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
