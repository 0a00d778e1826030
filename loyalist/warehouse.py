"""Connections to the DuckDB warehouse file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from loyalist.config import Settings

# connect() keeps the memory limit it set in this connection variable, so that release_cached_blocks can
# set it back exactly: current_setting('memory_limit') reads back rounded ('3GB' as '2.7 GiB').
MEMORY_LIMIT_VARIABLE = "loyalist_memory_limit"


def connect(settings: Settings, path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the project's session settings (UTC, memory limit, threads)."""
    path = path or settings.warehouse_path
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
    con.execute(f"set variable {MEMORY_LIMIT_VARIABLE} = '{settings.duckdb_memory_limit}'")
    con.execute(f"set threads = {int(settings.duckdb_threads)}")
    return con


def release_cached_blocks(con: duckdb.DuckDBPyConnection) -> bool:
    """Evict the table blocks DuckDB keeps in memory after reading them, returning that memory to the system.

    DuckDB caches what it reads, up to its memory limit. A step that reads its inputs into pandas and
    then works in Python holds both: ML training at 1M customers kept 1.2 GB of blocks beside its
    frames. Lowering the limit for a moment evicts them; then the limit connect() set is set again.
    Only for a connection nobody else is querying at that moment (the limit is the database's).
    Returns False, doing nothing, for a connection connect() did not open.
    """
    limit = con.execute(f"select getvariable('{MEMORY_LIMIT_VARIABLE}')").fetchall()[0][0]
    if limit is None:
        return False
    try:
        con.execute("set memory_limit = '16MB'")
    except duckdb.Error:
        pass  # something pinned needs more: what could be evicted was
    finally:
        con.execute(f"set memory_limit = '{limit}'")
    return True


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], rows: list[list] | list[tuple],
                **computed: str) -> None:
    """Insert ``rows`` (values in ``columns`` order) in one statement, plus ``computed`` columns (SQL).

    Not ``executemany``: that runs one statement per row (about 10 ms each into the indexed load
    manifest, which made it a third of a year's first load; an audience of a million members would
    take hours).
    """
    import pyarrow as pa

    values = pa.table({c: [row[i] for row in rows] for i, c in enumerate(columns)})
    con.register("_rows_to_insert", values)
    try:
        targets = ", ".join([*columns, *computed])
        sources = ", ".join([*columns, *computed.values()])
        con.execute(f"insert into {table} ({targets}) select {sources} from _rows_to_insert")
    finally:
        con.unregister("_rows_to_insert")


def repeated_keys_sql(relation: str, keys: list[str], *aggregates: str) -> str:
    """SQL selecting each value of ``keys`` (SQL expressions) that occurs more than once in ``relation``,
    with ``aggregates`` of its rows; NULLs compare equal, as in ``group by``.

    Grouping tens of millions of rows by text keys (file names, order ids) is slow in DuckDB: strings
    longer than 12 bytes are compared through pointers. So the rows are first grouped by a 64-bit hash
    of the key, and only the rows of hashes seen more than once (the real repeats and rare collisions)
    are grouped by value. 1M customers: 19M order lines by file, order and line 3.5–5.6 → 2.1–2.3 s.
    """
    key = ", ".join(keys)
    return (f"select {', '.join([key, *aggregates])} from {relation} "
            f"where hash({key}) in (select hash({key}) from {relation} group by all having count(*) > 1) "
            f"group by all having count(*) > 1")
