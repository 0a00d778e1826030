"""How fast this host is: a fixed workload to set beside a bench run, so runs on different hosts compare.

The same code and data ran about 1.5x slower on one "2-core AMD EPYC" host (2026-12-07) than on
another a day earlier: the 1M sample's generation 125.0 s against 81.8 s, its dbt_build 547.5 s
against 336.5 s for the same SQL (975 CPU s against 597). The model name and core count do not tell
hosts apart. ``bench`` measures this workload just before each size's runs and stores it in the
size's row (``calibration``); to compare a row with a machine of your own, run
``python -m benchmarks.calibrate`` there.

Two numbers, each the best of ``repeats`` runs, because the pipeline's time splits between them:
- ``duckdb_group_by_s``: DuckDB, on all the cores it may use, groups 10M rows by a 17-character text
  key into 1M groups (what the marts and the dbt build mostly do: group and join by customer id);
- ``python_loop_s``: the interpreter alone, one core (scoring's and the rewards' Python code).
The inputs are generated in the query and the loop, so nothing is read from disk.
"""

from __future__ import annotations

import json
import time

GROUP_BY_SQL = """
    select count(*), sum(n) from (
        select 'C' || lpad(cast((i * 7919) % {groups} as varchar), 16, '0') as key, count(*) as n
        from range({rows}) as t(i)
        group by key
    )
"""


def _best(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return round(min(times), 3)


def calibrate(repeats: int = 3, rows: int = 10_000_000, loop: int = 5_000_000) -> dict[str, float]:
    """``{"duckdb_group_by_s", "python_loop_s"}`` of this host (smaller ``rows`` / ``loop`` for tests)."""
    import duckdb

    con = duckdb.connect()
    sql = GROUP_BY_SQL.format(rows=int(rows), groups=max(1, int(rows) // 10))

    def group_by() -> None:
        con.execute(sql).fetchone()

    def python_loop() -> None:
        sum(i * i % 7 for i in range(loop))

    result = {"duckdb_group_by_s": _best(group_by, repeats), "python_loop_s": _best(python_loop, repeats)}
    con.close()
    return result


if __name__ == "__main__":
    print(json.dumps(calibrate()))
