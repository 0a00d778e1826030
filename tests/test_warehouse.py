"""loyalist.warehouse: what a connection starts with, and handing DuckDB's cached blocks back."""

from __future__ import annotations

import duckdb

from loyalist.warehouse import connect, release_cached_blocks


def _cached_mb(con: duckdb.DuckDBPyConnection) -> float:
    return con.execute("select sum(memory_usage_bytes) / 2 ^ 20 from duckdb_memory()").fetchall()[0][0]


def test_release_cached_blocks_evicts_what_a_read_cached_and_keeps_the_limit(settings):
    with connect(settings) as con:
        con.execute("create table numbers as select random() as x, i from range(12000000) t(i)")
        con.execute("checkpoint")  # on disk: a read caches its blocks instead of holding the new table
        limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    with connect(settings) as con:
        # a plain scan: DuckDB keeps the 12M random doubles' blocks (about 90 MB) cached afterwards
        assert con.execute("select count(*), sum(x) > 0 from numbers").fetchall() == [(12_000_000, True)]
        before = _cached_mb(con)
        assert release_cached_blocks(con)
        after = _cached_mb(con)
        assert before > 60 and after < 20, (before, after)
        assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == limit
        assert con.execute("select sum(i) from numbers").fetchall() == [(sum(range(12_000_000)),)]


def test_release_cached_blocks_leaves_a_connection_it_did_not_open_alone(tmp_path):
    with duckdb.connect(str(tmp_path / "other.duckdb")) as con:
        con.execute("set memory_limit = '500MB'")
        assert not release_cached_blocks(con)
        assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == "476.8 MiB"
