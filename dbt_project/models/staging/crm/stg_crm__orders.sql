-- One row per order or refund: the latest-loaded version of each order_id (base_crm__orders), kept
-- when it happened by the end of the as-of day. A view: the deduplication is kept in the base table,
-- and the filter after it is one scan in each reader, cheaper than a daily copy of the whole table.

{{ config(materialized='view') }}

select
    order_id,
    source_system,
    source_customer_id,
    account_key,

    ordered_at,
    order_date,
    transaction_type,
    original_order_id,
    status,
    channel,
    store_id,
    payment_method,

    currency,
    gross_amount,
    discount_amount,
    net_amount,
    points_earned,
    points_redeemed,

    loaded_at,
    source_file

from {{ ref('base_crm__orders') }}
-- filter after the dedupe: the latest version's time decides whether it happened by the run date
where {{ as_of_filter('ordered_at') }}
