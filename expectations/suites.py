"""Great Expectations 1.x suites, as code: one builder per gated table.

The raw suites check each freshly loaded batch *after* ingestion has cast it and quarantined rows
that break the input contract, so they guard what the contract cannot express row by row:
uniqueness across the batch, value sets, ranges, and how much of each file was quarantined.
Thresholds live here and nowhere else.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from loyalist.contracts import CHANNELS, CONSENT_CHANNELS, ENTITIES, FEEDBACK_TYPES, SOURCE_SYSTEMS

# A file with more than this share of rows quarantined stops the run: something upstream broke.
MAX_QUARANTINE_SHARE = 0.05


def _required_not_null(entity: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ENTITIES[entity].required_columns]


def _columns_exist(entity: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnToExist(column=c) for c in ENTITIES[entity].column_names]


def raw_suite(entity: str) -> gx.ExpectationSuite:
    """Suite for one freshly loaded batch of ``raw.<entity>``."""
    expectations: list[gxe.Expectation] = [*_columns_exist(entity), *_required_not_null(entity)]
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
