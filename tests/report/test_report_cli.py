"""`loyalist report` and `loyalist summary` on the session's real run (subprocesses, as a user runs them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loyalist.pipeline import published_path

LOYALIST = str(Path(sys.executable).with_name("loyalist"))


def _run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LOYALIST, *args], env={**os.environ, "LOYALIST_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=300)


def test_report_command_writes_a_report_for_a_given_database(reported_run, tmp_path):
    out = tmp_path / "elsewhere"
    proc = _run(["report", "--database", str(published_path(reported_run.settings)), "--out", str(out)],
                reported_run.settings.data_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Run report: {out / 'run-2025-03-31.html'}")
    assert (out / "latest.html").read_text(encoding="utf-8").count("Plotly.newPlot") >= 12


def test_summary_prints_where_the_report_and_the_docs_are(reported_run):
    proc = _run(["summary"], reported_run.settings.data_dir)
    assert proc.returncode == 0, proc.stderr
    data_dir = reported_run.settings.data_dir
    assert f"Run report: {data_dir / 'reports' / 'latest.html'}" in proc.stdout
    assert f"dbt docs (models, columns, tests, lineage): {data_dir / 'docs' / 'dbt' / 'static_index.html'}" \
        in proc.stdout
