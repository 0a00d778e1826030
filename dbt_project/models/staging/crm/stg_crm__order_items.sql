-- Line items: the lines of every order ever loaded, from the latest load of each order's lines
-- (base_crm__order_items), whatever the order's date and whether staging keeps the order. Not cut to
-- the as-of day: every reader takes the orders it needs by joining marts.transactions (or
-- stg_crm__orders), which apply the day, so lines of later-dated or quarantined orders never count.
-- A view: as a table it cost a join of every line to its order and a write of every line each day
-- (20-26 s at 1M customers, 2-core hosts), and the readers join the orders again anyway.

{{ config(materialized='view') }}

select
    order_item_id,
    order_id,
    line_no,
    product_id,
    quantity,
    unit_price,
    discount_amount,
    line_amount,
    loaded_at,
    source_file

from {{ ref('base_crm__order_items') }}
