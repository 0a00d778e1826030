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
