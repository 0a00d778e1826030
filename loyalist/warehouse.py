"""Connections to the DuckDB warehouse file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from loyalist.config import Settings


def connect(settings: Settings, path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the project's session settings (UTC, memory limit, threads)."""
    path = path or settings.warehouse_path
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
    con.execute(f"set threads = {int(settings.duckdb_threads)}")
    return con
