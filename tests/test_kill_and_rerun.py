"""Kill a step with SIGKILL at several points, rerun it, and get exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from loyalist.config import get_settings
from loyalist.contracts import ENTITIES
from loyalist.generate import GeneratorConfig, generate
from loyalist.pipeline import dbt_command, dbt_env
from loyalist.warehouse import connect

RUN = """
import sys
from datetime import datetime, UTC
from loyalist.config import get_settings
from loyalist.pipeline import ingest_interval
ingest_interval(get_settings(), datetime(2025, 6, 30, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC), sys.argv[1])
"""


@pytest.fixture(scope="module")
def medium_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("medium")
    generate(GeneratorConfig(customers=4000, days=181, seed=11, end_date=date(2025, 6, 30)), out)
    return out


def _env(data_dir: Path, landing: Path) -> dict[str, str]:
    return {**os.environ, "LOYALIST_DATA_DIR": str(data_dir), "LOYALIST_LANDING_DIR": str(landing)}


def _ingest(data_dir: Path, landing: Path, batch: str, kill_after_s: float | None = None) -> bool:
    """Run the ingest step in its own process; with ``kill_after_s``, SIGKILL it then.

    Returns True if the process was killed while still working (not already finished).
    """
    proc = subprocess.Popen([sys.executable, "-c", RUN, batch], env=_env(data_dir, landing))
    if kill_after_s is None:
        assert proc.wait(timeout=600) == 0
        return False
    time.sleep(kill_after_s)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60) == -signal.SIGKILL


def _fingerprint(data_dir: Path, schema: str, tables: list[str], columns: dict[str, list[str]] | None = None):
    os.environ["LOYALIST_DATA_DIR"] = str(data_dir)
    settings = get_settings()
    out = {}
    with connect(settings, read_only=True) as con:
        for t in tables:
            cols = ", ".join(f'"{c}"' for c in (columns or {}).get(t, [])) or "*"
            out[t] = con.execute(f"select count(*), md5(string_agg(cast(x as varchar), '|' "
                                 f"order by cast(x as varchar))) from (select {cols} from {schema}.{t}) x").fetchone()
    return out


RAW_COLUMNS = {e.name: e.column_names + ["_source_file", "_row_in_file"] for e in ENTITIES.values()}


def test_ingest_killed_at_any_point_then_rerun_equals_uninterrupted(medium_landing, tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALIST_LANDING_DIR", str(medium_landing))
    started = time.perf_counter()
    _ingest(tmp_path / "clean", medium_landing, "clean")
    duration = time.perf_counter() - started
    expected = _fingerprint(tmp_path / "clean", "raw", list(ENTITIES), RAW_COLUMNS)
    killed_mid_run = 0
    # Kill points spread over the uninterrupted run's duration (start-up, each entity's load, commit).
    for share in (0.15, 0.35, 0.55, 0.75):
        data_dir = tmp_path / f"killed_{share}"
        killed_mid_run += _ingest(data_dir, medium_landing, "first", kill_after_s=share * duration)
        _ingest(data_dir, medium_landing, "rerun")
        assert _fingerprint(data_dir, "raw", list(ENTITIES), RAW_COLUMNS) == expected, share
    assert killed_mid_run >= 2  # timing varies by machine; most kill points must land mid-run


def test_dbt_build_killed_midway_then_rerun_equals_uninterrupted(medium_landing, tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALIST_LANDING_DIR", str(medium_landing))
    data_dir = tmp_path / "dbt"
    _ingest(data_dir, medium_landing, "b1")
    monkeypatch.setenv("LOYALIST_DATA_DIR", str(data_dir))
    settings = get_settings()
    cmd = dbt_command(settings, "build", "--vars", '{"as_of_date": "2025-06-30"}')
    assert subprocess.run(cmd, env=dbt_env(settings), capture_output=True).returncode == 0
    started = time.perf_counter()  # a second build of the same date: what a rerun costs
    assert subprocess.run(cmd, env=dbt_env(settings), capture_output=True).returncode == 0
    duration = time.perf_counter() - started
    expected = _fingerprint(data_dir, "marts", ["customers", "transactions"])
    killed_mid_run = 0
    for share in (0.4, 0.7):
        proc = subprocess.Popen(cmd, env=dbt_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(share * duration)
        proc.send_signal(signal.SIGKILL)
        killed_mid_run += proc.wait(timeout=60) == -signal.SIGKILL
        rerun = subprocess.run(cmd, env=dbt_env(settings), capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        assert _fingerprint(data_dir, "marts", ["customers", "transactions"]) == expected, share
    assert killed_mid_run >= 1
