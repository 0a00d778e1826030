"""Great Expectations 1.x suites, as code: one builder per gated table.

The raw suites check each freshly loaded batch *after* ingestion has cast it and quarantined rows
that break the input contract, so they guard what the contract cannot express row by row:
uniqueness across the batch, value sets, ranges, and how much of each file was quarantined.
Thresholds live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import great_expectations as gx
import great_expectations.expectations as gxe

from loyalist.contracts import CHANNELS, CONSENT_CHANNELS, ENTITIES, FEEDBACK_TYPES, SOURCE_SYSTEMS

# A file with more than this share of rows quarantined stops the run: something upstream broke.
MAX_QUARANTINE_SHARE = 0.05
# Per file only from this many rows on (one bad row in a 17-row file is not a broken feed); every
# entity's whole batch is judged regardless of size.
MIN_ROWS_FOR_FILE_SHARE = 200
# A day's volume outside [min, max] x the median of the previous days' volumes stops the run
# (shopping festivals reach ~4x an ordinary day; a feed cut in half or doubled is a problem).
VOLUME_RATIO_RANGE = (0.25, 6.0)
VOLUME_LOOKBACK_DAYS = 7


def _required_not_null(entity: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ENTITIES[entity].required_columns]


def _columns_exist(entity: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnToExist(column=c) for c in ENTITIES[entity].column_names]


def raw_suite(entity: str, max_event_time: datetime | None = None) -> gx.ExpectationSuite:
    """Suite for one freshly loaded batch of ``raw.<entity>``.

    ``max_event_time``: the batch's interval end plus the tolerance; no event may be later.
    """
    expectations: list[gxe.Expectation] = [*_columns_exist(entity), *_required_not_null(entity)]
    event_time = ENTITIES[entity].event_time
    if event_time and max_event_time is not None:
        expectations.append(gxe.ExpectColumnMaxToBeBetween(column=event_time, max_value=max_event_time))
    if "source_system" in ENTITIES[entity].column_names:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="source_system", value_set=list(SOURCE_SYSTEMS)))
    expectations += _ENTITY_SPECIFIC.get(entity, list)()
    return gx.ExpectationSuite(name=f"raw_{entity}", expectations=expectations)


def _orders() -> list[gxe.Expectation]:
    return [
        # Unique per file: a re-sent order may legitimately sit in two files (staging keeps the latest).
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["_source_file", "order_id"]),
        gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
        gxe.ExpectColumnValuesToBeInSet(column="transaction_type", value_set=["sale", "refund"]),
        gxe.ExpectColumnValuesToBeBetween(column="net_amount", min_value=-1_000_000, max_value=1_000_000),
        gxe.ExpectColumnValuesToBeBetween(column="discount_amount", min_value=0, max_value=1_000_000),
    ]


def _order_items() -> list[gxe.Expectation]:
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["_source_file", "order_id", "line_no"]),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, max_value=1000),
    ]


def _feedback() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(column="feedback_type", value_set=list(FEEDBACK_TYPES)),
        gxe.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=10),
    ]


def _consent_events() -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToBeInSet(column="consent_channel", value_set=list(CONSENT_CHANNELS))]


def _products() -> list[gxe.Expectation]:
    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=["_source_file", "product_id"])]


_ENTITY_SPECIFIC = {
    "orders": _orders,
    "order_items": _order_items,
    "feedback": _feedback,
    "consent_events": _consent_events,
    "products": _products,
}


def load_manifest_suite() -> gx.ExpectationSuite:
    """Suite over ``raw._load_manifest`` rows of one batch: conservation and quarantine share."""
    return gx.ExpectationSuite(name="raw_load_manifest", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="quarantine_share", min_value=0, max_value=MAX_QUARANTINE_SHARE),
        gxe.ExpectColumnValuesToBeBetween(column="unaccounted_rows", min_value=0, max_value=0),
    ])


def volume_suite() -> gx.ExpectationSuite:
    """Suite over one row per daily entity: the interval day's rows vs the median of recent days."""
    low, high = VOLUME_RATIO_RANGE
    return gx.ExpectationSuite(name="raw_volume", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="ratio_to_recent_median", min_value=low, max_value=high),
    ])


# --------------------------------------------------------------------------------------------------
# Outputs: marts and model results, validated before the warehouse is published.
# Each check names the table it needs, the SQL giving the frame to validate (``{as_of}`` is the run
# date) and the suite. A check whose table does not exist yet is skipped by the runner.
# --------------------------------------------------------------------------------------------------
def _unique_key(*columns: str) -> list[gxe.Expectation]:
    if len(columns) == 1:
        return [gxe.ExpectColumnValuesToNotBeNull(column=columns[0]),
                gxe.ExpectColumnValuesToBeUnique(column=columns[0])]
    return [*(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))]


def customers_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="marts_customers", expectations=[
        *_unique_key("customer_id"),
        gxe.ExpectColumnValuesToBeBetween(column="orders_count", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="refunds_amount", min_value=0),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ])


def transactions_day_suite() -> gx.ExpectationSuite:
    """The as-of day's transactions, plus whole-table duplicate and orphan counts computed in SQL."""
    return gx.ExpectationSuite(name="marts_transactions", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="customer_id"),
        gxe.ExpectColumnValuesToBeBetween(column="duplicate_order_ids", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="transactions_without_customer", min_value=0, max_value=0),
    ])


def current_lifecycle_suite() -> gx.ExpectationSuite:
    """Every customer has exactly one current lifecycle stage."""
    return gx.ExpectationSuite(name="marts_current_lifecycle", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="current_stages", min_value=1, max_value=1),
    ])


def churn_scores_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="ml_churn_scores", expectations=[
        *_unique_key("customer_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="churn_probability"),
        gxe.ExpectColumnValuesToBeBetween(column="churn_probability", min_value=0, max_value=1),
    ])


def reward_consent_suite() -> gx.ExpectationSuite:
    """Consent is absolute: no reward row without consent for its channel."""
    return gx.ExpectationSuite(name="ml_reward_consent", expectations=[
        *_unique_key("customer_id"),
        gxe.ExpectColumnValuesToBeInSet(column="has_consent", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="cost", min_value=0),
    ])


@dataclass(frozen=True)
class OutputCheck:
    table: str
    sql: str
    suite: Callable[[], gx.ExpectationSuite]


OUTPUT_CHECKS = (
    OutputCheck("marts.customers", "select * from marts.customers", customers_suite),
    # The whole-table counts once, in one scan: written as scalar subqueries in both branches, DuckDB
    # counted the 20M distinct order ids of the 1M sample twice (5.1 s for this check).
    OutputCheck("marts.transactions", """
        with whole_table as materialized (
            select count(*) - count(distinct order_id) as duplicate_order_ids,
                   count(*) filter (where customer_id is null) as transactions_without_customer
            from marts.transactions
        )
        select t.customer_id, w.duplicate_order_ids, w.transactions_without_customer
        from marts.transactions t cross join whole_table w where t.order_date = date '{as_of}'
        union all  -- one summary row even on a day without transactions
        select 'summary', duplicate_order_ids, transactions_without_customer from whole_table""",
                transactions_day_suite),
    OutputCheck("marts.customer_lifecycle_history", """
        select c.customer_id, count(h.customer_id) as current_stages
        from marts.customers c
        left join marts.customer_lifecycle_history h on h.customer_id = c.customer_id and h.is_current
        group by c.customer_id""", current_lifecycle_suite),
    OutputCheck("ml.churn_scores", "select * from ml.churn_scores where as_of_date = date '{as_of}'",
                churn_scores_suite),
    OutputCheck("ml.reward_eligibility", """
        select r.customer_id, r.cost,
               coalesce(case r.channel when 'email' then c.consent_email when 'sms' then c.consent_sms
                                       when 'ads' then c.consent_ads end, false) as has_consent
        from ml.reward_eligibility r left join marts.customers c using (customer_id)
        where r.as_of_date = date '{as_of}'""", reward_consent_suite),
)
