"""Read the warehouse tables the ML step needs into plain frames, tolerating sparse warehouses.

Only ``marts.transactions`` (customer_id, ordered_at, net_amount) is required. Every other table or
column may be missing or empty (a warehouse built from a bare transaction log): a missing column
reads as NULL, a missing or empty table as ``None``, and the features built from it become NaN.

Times are converted to float days since 1970-01-01 UTC (column ``t`` and friends), which keeps the
point-in-time filters in ``ml.features`` simple comparisons against ``days(cutoff)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

EPOCH = date(1970, 1, 1)


def days(d: date) -> float:
    """A cutoff date (00:00 UTC) as days since the epoch, the unit of every ``t`` column."""
    return float((d - EPOCH).days)


def _epoch_days(sql_ts: str) -> str:
    return f"epoch({sql_ts}) / 86400.0"


def is_completed_sale(transactions: pd.DataFrame) -> pd.Series:
    """Rows of a transactions frame that are completed sales (not refunds, not cancelled or pending)."""
    return (transactions["transaction_type"] == "sale") & (transactions["status"] == "completed")


def completed_sales(transactions: pd.DataFrame) -> pd.DataFrame:
    return transactions[is_completed_sale(transactions)]


def among(values: pd.Series, ids: pd.Index) -> np.ndarray:
    """``values.isin(ids)`` as a boolean array, with Arrow's hash kernel (a missing value is never among them).

    pandas' ``isin`` on Arrow-backed text turns each id into a Python object first: 0.47 s to look up
    60k ids in the 2M transactions of the 100k sample, 0.04 s with Arrow (five lookups per scored block).
    """
    column = pa.array(values, from_pandas=True)
    if pa.types.is_null(column.type):  # no values, or only missing ones (an empty object column reads so)
        return np.zeros(len(values), dtype=bool)
    value_set = pa.array(ids, from_pandas=True)
    if value_set.type != column.type:
        value_set = value_set.cast(column.type)
    return pc.is_in(column, value_set=value_set).fill_null(False).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class Inputs:
    """Everything the features read. ``None`` means the source is not available in this warehouse."""

    # customer_id, t, transaction_type, status, channel, gross_amount, discount_amount, net_amount,
    # points_earned, points_redeemed (load_inputs: the three labels as categoricals; tests may use
    # plain strings)
    transactions: pd.DataFrame
    # customer_id, t (the UTC day of the sale), category: one row per completed sale and product
    # category in it (intermediate.int_order_categories)
    order_categories: pd.DataFrame | None = None
    # customer_id, feedback_type, score, status, t_created, t_resolved, t_updated; optional
    # t_first_response, text, language (the text is classified at feature time: ml.feedback_text)
    feedback: pd.DataFrame | None = None
    # customer_id, t_created, t_updated, t_birth, gender, city_tier, income_band
    profiles: pd.DataFrame | None = None
    # customer_id, t_first_seen (one row per account)
    accounts: pd.DataFrame | None = None

    @cached_property
    def coded(self) -> CodedInputs:
        """These inputs with every customer_id as an integer code (made once, then kept).

        The features group by customer some 45 times: by the text ids, hashing the text again each
        time took a third of a 1M scoring block's features (6.2 -> 4.1 s by codes, making them included).
        """
        return CodedInputs.of(self)

    @property
    def data_start(self) -> date:
        """Day of the first completed sale."""
        sales = completed_sales(self.transactions)
        if sales.empty:
            raise ValueError("no completed sales in marts.transactions")
        return date.fromordinal(EPOCH.toordinal() + int(np.floor(sales["t"].min())))


@dataclass(frozen=True)
class CodedInputs:
    """``Inputs`` whose customer ids are int64 codes into ``customer_ids`` (-1: no id).

    ``customer_ids`` is sorted, so codes sort as their ids do: group-bys, sorts and sorted id lists
    come out in the same order as by the ids themselves.
    """

    inputs: Inputs
    customer_ids: pd.Index

    @staticmethod
    def of(inputs: Inputs) -> CodedInputs:
        frames = {name: getattr(inputs, name) for name in ("transactions", "order_categories", "feedback",
                                                          "profiles", "accounts")}
        ids = {name: _as_text(frame["customer_id"]) for name, frame in frames.items() if frame is not None}
        distinct = pc.unique(pa.chunked_array(list(ids.values()), type=pa.string()))
        distinct = distinct.take(pc.array_sort_indices(distinct))
        coded = {name: frames[name].assign(customer_id=pc.fill_null(pc.index_in(values, value_set=distinct), -1)
                                           .to_numpy(zero_copy_only=False).astype(np.int64))
                 for name, values in ids.items()}
        return CodedInputs(replace(inputs, **coded), pd.Index(distinct.to_pandas(), name="customer_id"))

    def ids(self, codes: pd.Index) -> pd.Index:
        """The customer ids of ``codes`` (none may be -1)."""
        return pd.Index(self.customer_ids.take(codes.to_numpy()), name=codes.name)


def _as_text(values: pd.Series) -> pa.Array:
    column = pa.array(values, from_pandas=True)
    return column if column.type == pa.string() else column.cast(pa.string())


class MissingTransactionsError(RuntimeError):
    """marts.transactions (or one of its required columns) is not in the warehouse."""


TRANSACTION_COLUMNS = {
    "customer_id": None, "ordered_at": None,
    "transaction_type": "case when net_amount < 0 then 'refund' else 'sale' end",
    "status": "'completed'", "channel": "null", "gross_amount": "null", "discount_amount": "null",
    "net_amount": None, "points_earned": "null", "points_redeemed": "null",
}


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    rows = con.execute("select column_name from information_schema.columns where table_schema = ? "
                       "and table_name = ?", [schema, table]).fetchall()
    return {r[0] for r in rows}


def _expr(columns: set[str], name: str, default: str | None, cast: str | None = None) -> str:
    if name in columns:
        expr = name
    elif default is None:
        raise MissingTransactionsError(f"required column {name} is missing")
    else:
        expr = default
    return f"cast({expr} as {cast}) as {name}" if cast else f"{expr} as {name}"


# A block of customers: (block, blocks). Scoring reads the warehouse one block at a time so its memory
# follows the block, not the whole history (ml.pipeline.partition_features).
Block = tuple[int, int]


def in_block(column: str, block: Block | None) -> str:
    """SQL condition: the row's customer (``column``) is in ``block`` (DuckDB's hash; true without a block)."""
    if block is None or block[1] == 1:
        return "true"
    number, blocks = block
    if not 0 <= number < blocks:
        raise ValueError(f"block {number} is outside [0, {blocks})")
    return f"hash({column}) % {int(blocks)} = {int(number)}"


# The relation load_inputs registers for a sample of customers (``customers``) while it reads.
SAMPLE_RELATION = "_ml_sampled_customers"


def _transaction_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    cols = table_columns(con, "marts", "transactions")
    if not cols:
        raise MissingTransactionsError("marts.transactions is not in the warehouse: run dbt build first")
    missing = {"customer_id", "ordered_at", "net_amount"} - cols
    if missing:
        raise MissingTransactionsError(f"marts.transactions lacks required column(s) {sorted(missing)}")
    return cols


def block_count(con: duckdb.DuckDBPyConnection, rows_per_block: int) -> int:
    """How many customer blocks keep each block's transactions near ``rows_per_block``."""
    _transaction_columns(con)
    rows = con.execute("select count(*) from marts.transactions").fetchone()[0]
    return max(1, -(-rows // max(1, rows_per_block)))


# The rows load_transactions reads (the ML step's population of transactions).
_READ_TRANSACTIONS = "where customer_id is not null and ordered_at is not null"


def transaction_customers(con: duckdb.DuckDBPyConnection) -> pd.Index:
    """The ids of the customers load_inputs' transactions hold (everyone's), sorted."""
    _transaction_columns(con)
    return pd.Index(read_frame(con, f"select distinct customer_id from marts.transactions {_READ_TRANSACTIONS} "
                                    "order by 1")["customer_id"], name="customer_id")


def first_sale_day(con: duckdb.DuckDBPyConnection) -> date:
    """Day of the first completed sale of everyone's transactions: ``Inputs.data_start`` without reading them."""
    cols = _transaction_columns(con)
    kind = _expr(cols, "transaction_type", TRANSACTION_COLUMNS["transaction_type"])
    status = _expr(cols, "status", TRANSACTION_COLUMNS["status"])
    first = con.execute(f"select min({_epoch_days('ordered_at')}) from (select ordered_at, {kind}, {status} "
                        f"from marts.transactions {_READ_TRANSACTIONS}) "
                        "where transaction_type = 'sale' and status = 'completed'").fetchone()[0]
    if first is None:
        raise ValueError("no completed sales in marts.transactions")
    return date.fromordinal(EPOCH.toordinal() + int(np.floor(first)))


def last_transaction_day(con: duckdb.DuckDBPyConnection) -> date | None:
    value = con.execute("select max(ordered_at) from marts.transactions").fetchone()[0]
    return None if value is None else date.fromordinal(EPOCH.toordinal() + int(np.floor(value.timestamp() / 86400)))


def read_frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """The result of ``sql`` as a pandas frame, by way of Arrow.

    DuckDB's ``.df()`` builds text columns value by value; through Arrow they arrive whole. The five reads
    of one scoring block of the 1M-customer sample took 4.1 s with ``.df()`` and 2.5 s this way, the same
    frames; the score step of that sample, 132-135 s and 105-115 s.
    Text columns are pandas' Arrow-backed strings either way; this way also when a column holds no
    value at all (an empty result, or only missing values), where ``.df()`` gives object columns.
    """
    # one chunk per column, as .df() gives: pandas' operations on many-chunk text columns cost more
    return con.sql(sql).to_arrow_table().combine_chunks().to_pandas()


def load_transactions(con: duckdb.DuckDBPyConnection, condition: str = "true") -> pd.DataFrame:
    """The transactions whose rows meet the SQL ``condition`` (on ``customer_id``), sorted by customer and time."""
    cols = _transaction_columns(con)
    select = [
        "customer_id",
        f"{_epoch_days('ordered_at')} as t",
        _expr(cols, "transaction_type", TRANSACTION_COLUMNS["transaction_type"], "varchar"),
        _expr(cols, "status", TRANSACTION_COLUMNS["status"], "varchar"),
        _expr(cols, "channel", "null", "varchar"),
        _expr(cols, "gross_amount", "null", "double"),
        _expr(cols, "discount_amount", "null", "double"),
        _expr(cols, "net_amount", None, "double"),
        _expr(cols, "points_earned", "null", "double"),
        _expr(cols, "points_redeemed", "null", "double"),
    ]
    # the order id breaks ties: the same row order, so the same float sums, on every run
    order = "customer_id, t, order_id" if "order_id" in cols else "customer_id, t"
    return read_frame(con, f"select {', '.join(select)} from marts.transactions {_READ_TRANSACTIONS} "
                           f"and {condition} order by {order}")


def _optional(con: duckdb.DuckDBPyConnection, what: str, needs: dict[str, set[str]], sql: str,
              condition: str | None = None) -> pd.DataFrame | None:
    """Run ``sql`` if every (schema.table -> columns) it needs exists; None when absent or empty.

    ``sql`` holds ``{block}``: ``condition`` (which customers: a block, a sample) or true without one.
    With a condition, an empty result stays an empty frame when the source has rows for other
    customers: only a source empty for everyone makes the features NaN, as in a read of everyone
    (the chosen customers without rows get counts of 0 then).
    """
    for table, columns in needs.items():
        schema, name = table.split(".")
        have = table_columns(con, schema, name)
        if not have or not columns <= have:
            log.info("%s not available (%s lacks %s): those features will be NaN", what, table,
                     sorted(columns - have) if have else "the table")
            return None
    rows = read_frame(con, sql.format(block=condition or "true"))
    if rows.empty:
        if condition is not None and con.execute(f"select exists ({sql.format(block='true')})").fetchone()[0]:
            return rows
        log.info("%s: no rows: those features will be NaN", what)
        return None
    return rows


def load_inputs(con: duckdb.DuckDBPyConnection, compact: bool = True, block: Block | None = None,
                customers: pd.Index | None = None) -> Inputs:
    """Read the warehouse (as built by dbt) into ``Inputs``; ``compact=False`` keeps ids and labels as text.

    ``block``: only the customers of that block (``in_block``), each with all of their rows.
    ``customers``: only these customer ids (a sample), each with all of their rows; the database
    selects them, so memory follows the sample.
    """
    if customers is None:
        return _load_inputs(con, compact, block, None)
    # The ids are registered on a cursor of their own (a connection to the same database), which
    # also keeps a result the caller left unfetched on ``con`` from blocking the registration. A
    # cursor starts with the default time zone: it gets ``con``'s.
    zone = con.execute("select current_setting('TimeZone')").fetchall()[0][0]
    with con.cursor() as cursor:
        cursor.execute(f"set TimeZone = '{zone}'")
        cursor.register(SAMPLE_RELATION, pa.table({"customer_id": pa.array(customers, type=pa.string())}))
        return _load_inputs(cursor, compact, block, SAMPLE_RELATION)


def _load_inputs(con: duckdb.DuckDBPyConnection, compact: bool, block: Block | None,
                 sample: str | None) -> Inputs:
    def chosen(column: str) -> str | None:
        """SQL: the row's customer (``column``) is in the block and the sample (None: everyone)."""
        if block is None and sample is None:
            return None
        conditions = [in_block(column, block)]
        if sample is not None:
            conditions.append(f"{column} in (select customer_id from {sample})")
        return " and ".join(conditions)

    transactions = load_transactions(con, chosen("customer_id") or "true")
    accounts_map = {"intermediate.int_customer_accounts_resolved": {"account_key", "customer_id"}}
    # dbt's baskets carry the sale's customer and day, so a block reads its own rows: joining the order
    # lines to the block's orders scanned every order line once per block (73 s of 10 blocks at 1M)
    order_categories = _optional(
        con, "item categories",
        {"intermediate.int_order_categories": {"customer_id", "order_date", "category"}},
        f"select customer_id, {_epoch_days('cast(order_date as timestamp)')} as t, "
        "cast(category as varchar) as category from intermediate.int_order_categories "
        # no order by: only distinct counts read it (sorting 3.3M pairs cost 2 CPU s at 100k)
        "where category is not null and {block}", chosen("customer_id"))
    feedback_cols = table_columns(con, "staging", "stg_crm__feedback")
    resolved = _epoch_days("f.resolved_at") if "resolved_at" in feedback_cols else "null"
    updated = _epoch_days("f.updated_at") if "updated_at" in feedback_cols else "null"
    status = "cast(f.status as varchar)" if "status" in feedback_cols else "null"
    score = "cast(f.score as double)" if "score" in feedback_cols else "null"
    first_response = _epoch_days("f.first_response_at") if "first_response_at" in feedback_cols else "null"
    text = "cast(f.feedback_text as varchar)" if "feedback_text" in feedback_cols else "null"
    language = "cast(f.language as varchar)" if "language" in feedback_cols else "null"
    feedback = _optional(
        con, "feedback",
        {"staging.stg_crm__feedback": {"account_key", "feedback_type", "created_at"}, **accounts_map},
        f"select a.customer_id, cast(f.feedback_type as varchar) as feedback_type, {score} as score, "
        f"{status} as status, {_epoch_days('f.created_at')} as t_created, {resolved} as t_resolved, "
        f"{updated} as t_updated, {first_response} as t_first_response, {text} as text, "
        f"{language} as language "
        "from staging.stg_crm__feedback f join intermediate.int_customer_accounts_resolved a using (account_key) "
        "where f.created_at is not null and {block} order by 1, 5, 2", chosen("a.customer_id"))
    profile_cols = table_columns(con, "staging", "stg_crm__customers")

    def col(name: str, cast: str) -> str:
        return f"cast(p.{name} as {cast}) as {name}" if name in profile_cols else f"cast(null as {cast}) as {name}"

    birth = (f"{_epoch_days('cast(p.birth_date as timestamp)')} as t_birth" if "birth_date" in profile_cols
             else "cast(null as double) as t_birth")
    updated_p = _epoch_days("p.updated_at") if "updated_at" in profile_cols else _epoch_days("p.created_at")
    profiles = _optional(
        con, "profiles",
        {"staging.stg_crm__customers": {"account_key", "created_at"}, **accounts_map},
        f"select a.customer_id, {_epoch_days('p.created_at')} as t_created, {updated_p} as t_updated, {birth}, "
        f"{col('gender', 'varchar')}, {col('city_tier', 'double')}, {col('income_band', 'varchar')} "
        "from staging.stg_crm__customers p join intermediate.int_customer_accounts_resolved a using (account_key) "
        "where {block} order by 1, 2", chosen("a.customer_id"))
    accounts = _optional(
        con, "account first-seen times",
        {"intermediate.int_customer_accounts_resolved": {"customer_id", "first_seen_at"}},
        f"select customer_id, {_epoch_days('first_seen_at')} as t_first_seen "
        "from intermediate.int_customer_accounts_resolved where first_seen_at is not null and {block} "
        "order by 1, 2", chosen("customer_id"))
    if compact:
        transactions, order_categories = _compact(transactions, order_categories)
    return Inputs(transactions=transactions, order_categories=order_categories, feedback=feedback,
                  profiles=profiles, accounts=accounts)


def sampled_customers(ids: pd.Index | np.ndarray, max_customers: int, population: int | None = None
                      ) -> pd.Index | None:
    """Those of ``ids`` in the stable hash sample of about ``max_customers`` of ``population`` customers.

    ``population``: how many customers the sample is drawn from (default: ``ids`` are all of them).
    None when there are no more than ``max_customers``: everyone. Samples of one population nest: a
    smaller one is part of a larger one (the same hash, a lower cut), so drawing the smaller from the
    larger's ids, with the population's size, gives what drawing it from everyone gives.
    """
    from ml.partitions import in_sample

    population = len(ids) if population is None else population
    if population <= max_customers:
        return None
    return pd.Index(ids[in_sample(ids, max_customers / population)], name="customer_id")


def customer_sample(inputs: Inputs, max_customers: int, population: int | None = None) -> Inputs:
    """``inputs`` restricted to a stable hash sample of about ``max_customers`` customers (all if fewer).

    ``population``: the number of customers the sample is drawn from, when ``inputs`` hold a larger
    sample of them already (``sampled_customers``). Every feature of a customer reads only that
    customer's rows, so a kept customer's features and labels are exactly those of the full data.
    """
    ids = inputs.transactions["customer_id"].unique()
    keep = sampled_customers(ids, max_customers, population)
    if keep is None:
        return inputs

    def only(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame[among(frame["customer_id"], keep)]

    log.info("training sample: %s of %s customers", len(keep), len(ids) if population is None else population)
    return Inputs(transactions=only(inputs.transactions), order_categories=only(inputs.order_categories),
                  feedback=only(inputs.feedback),
                  profiles=only(inputs.profiles), accounts=only(inputs.accounts))


def _compact(transactions: pd.DataFrame,
             order_categories: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Same values in less memory: every filtered copy the features make is narrower.

    Labels with a handful of values (transaction type, status, channel, product category) become
    categoricals.
    """
    for col in ("transaction_type", "status", "channel"):
        transactions[col] = transactions[col].astype("category")
    if order_categories is not None:
        order_categories["category"] = order_categories["category"].astype("category")
    return transactions, order_categories
