"""ml.data.read_frame: the warehouse reads of the ML step, by way of Arrow instead of DuckDB's ``.df()``."""

from __future__ import annotations

import duckdb
import pandas as pd

from ml.data import read_frame


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # more rows than two of DuckDB's row groups (122,880 rows), so the result arrives in several Arrow chunks
    con.execute("create table t as select 'C' || lpad(cast(i % 997 as varchar), 8, '0') as customer_id, "
                "i / 7.0 as t, case when i % 3 = 0 then 'refund' else 'sale' end as kind, "
                "case when i % 5 = 0 then null else 'web' end as channel, "
                "cast(null as varchar) as never_set from range(300000) r(i)")
    return con


def test_read_frame_equals_duckdb_df_where_a_text_column_has_values():
    con = _con()
    sql = "select customer_id, t, kind, channel from t order by customer_id, t"
    got = read_frame(con, sql)
    pd.testing.assert_frame_equal(got, con.execute(sql).df(), check_exact=True)
    # one chunk per text column, as .df() gives (pandas' operations on many chunks cost more)
    assert all(got[c].array._pa_array.num_chunks == 1 for c in ("customer_id", "kind", "channel"))


def test_read_frame_keeps_text_columns_text_when_they_hold_no_value():
    """Where .df() gives object columns (an empty result, a column of missing values only), read_frame keeps
    the text dtype, so a block without rows reads with the same dtypes as one with rows."""
    con = _con()
    full = read_frame(con, "select customer_id, never_set from t")
    empty = read_frame(con, "select customer_id, never_set from t where false")
    assert empty.empty and full["never_set"].isna().all()
    assert list(empty.dtypes) == list(full.dtypes) == [pd.StringDtype(na_value=float("nan"))] * 2
