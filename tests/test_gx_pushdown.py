"""GX on the reduced frame (expectations/pushdown.py) reaches the same verdicts as GX on the whole batch."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import duckdb
import pytest

from expectations.pushdown import suite_columns, suspect_rows_sql
from expectations.runner import Validator
from expectations.suites import customers_suite, raw_suite
from loyalist.ingest import ensure_raw_schema

MAX_EVENT_TIME = datetime(2025, 3, 31, 1, tzinfo=UTC)
COLUMNS = "order_id, source_system, source_customer_id, ordered_at, transaction_type, status, channel, net_amount, " \
          "discount_amount, _batch_id, _source_file"


def _orders(con, rows: list[str]) -> None:
    con.execute(f"insert into raw.orders ({COLUMNS}) values " + ", ".join(rows))


GOOD = [f"('O{i}', 'crm', 'c{i}', timestamptz '2025-03-30 10:00:00+00', 'sale', 'completed', 'web', {i}.5, 0, "
        f"'b', 'f{i % 2}.csv')" for i in range(40)]
BAD = [
    "('X1', 'crm', 'x1', timestamptz '2025-03-30 10:00:00+00', 'sale', 'completed', 'fax', 1, 0, 'b', 'f0.csv')",
    "('X2', 'crm', 'x2', timestamptz '2025-03-30 10:00:00+00', 'sale', 'completed', 'web', 2000000, 0, 'b', 'f0.csv')",
    "('X3', 'crm', null, timestamptz '2025-03-30 10:00:00+00', 'sale', 'completed', 'web', 1, -1, 'b', 'f0.csv')",
    "('O3', 'crm', 'c3', timestamptz '2025-03-30 10:00:00+00', 'sale', 'completed', 'web', 1, 0, 'b', 'f1.csv')",
    "('O3', 'crm', 'c3', timestamptz '2025-03-30 11:00:00+00', 'sale', 'completed', 'web', 1, 0, 'b', 'f1.csv')",
    "('X4', 'nope', 'x4', timestamptz '2025-04-02 10:00:00+00', 'gift', 'completed', 'web', 1, 0, 'b', 'f0.csv')",
    "('X5', 'crm', 'x5', timestamptz '2025-03-30 10:00:00+00', 'sale', 'completed', 'web', 1, 0, 'other', 'f0.csv')",
]


def _verdicts(outcome) -> tuple[bool, list[str]]:
    # Same expectation, same unexpected count; the example values may come in another order.
    return outcome.success, sorted(re.sub(r" e\.g\. .*", "", f) for f in outcome.failed)


@pytest.fixture(scope="module")
def validator():
    return Validator()


@pytest.mark.parametrize("rows", [GOOD, GOOD + BAD], ids=["clean", "every-kind-of-failure"])
def test_reduced_frame_gives_the_same_verdicts(validator, rows):
    con = duckdb.connect()
    ensure_raw_schema(con)
    _orders(con, rows)
    suite = raw_suite("orders", MAX_EVENT_TIME)
    sql = suspect_rows_sql(suite, "raw.orders", "_batch_id = $batch")
    assert sql is not None
    whole = con.execute("select * from raw.orders where _batch_id = $batch", {"batch": "b"}).df()
    reduced = con.execute(sql, {"batch": "b"}).df()
    assert len(reduced) < len(whole)
    full_outcome, reduced_outcome = validator.validate(whole, suite), validator.validate(reduced, suite)
    assert _verdicts(reduced_outcome) == _verdicts(full_outcome)
    assert reduced_outcome.evaluated == full_outcome.evaluated
    if rows is not GOOD:  # every row-level failure and the future event are caught on the reduced frame too
        assert len(full_outcome.failed) >= 6 and not reduced_outcome.success


def test_unknown_expectations_fall_back_to_the_whole_batch():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="t", expectations=[gxe.ExpectColumnMeanToBeBetween(column="x", min_value=0)])
    assert suspect_rows_sql(suite, "raw.orders") is None
    mostly = gx.ExpectationSuite(name="m", expectations=[gxe.ExpectColumnValuesToNotBeNull(column="x", mostly=0.9)])
    assert suspect_rows_sql(mostly, "raw.orders") is None


def test_output_checks_read_only_the_columns_their_suite_names():
    assert suite_columns(customers_suite()) == ["customer_id", "orders_count", "refunds_amount"]
