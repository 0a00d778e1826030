-- One row per order or refund, attributed to the resolved customer.
--
-- Incremental (macros/transactions.sql): a daily run recomputes only the orders whose row may have
-- changed and deletes the ones that left staging, instead of rewriting some 20M rows at 1M
-- customers. Each row keeps the loads it was built from (the order's copy: source_file, loaded_at;
-- its lines: lines_loaded_at, lines_load_key), which is how a run finds replaced loads, and the
-- time of the run that wrote it (changed_at), which is how int_order_categories finds changed orders.
-- tests/test_incremental_transactions.py checks day-by-day runs against full builds. Spark's
-- Parquet tables cannot delete rows: there the table is rebuilt every run. A table built before
-- the load columns existed gets them (append_new_columns), and that run recomputes every order.

{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    unique_key='order_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    post_hook="{{ delete_departed_transactions() }}"
) }}

-- depends_on: {{ ref('base_crm__orders') }}, {{ ref('base_crm__order_items') }}

with

{% if is_incremental() %}

recomputed_orders as (

    {{ transactions_recomputed_orders() }}

),

{% endif %}

orders as (

    select * from {{ ref('stg_crm__orders') }}
    {%- if is_incremental() %}
    where order_id in (select recomputed_orders.order_id from recomputed_orders)
    {%- endif %}

),

order_items as (

    select * from {{ ref('stg_crm__order_items') }}
    {%- if is_incremental() %}
    where order_id in (select recomputed_orders.order_id from recomputed_orders)
    {%- endif %}

),

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

-- Refunds whose sale we never saw: the refunds this run computes, then the sales among their
-- original orders. Looking the sales up by the refunds' ids hashes the refunds; a NOT EXISTS over
-- all of staging's sales hashed the 19M sale ids of the 1M-customer sample every run (the daily
-- model's query 5.7-7.7 s against 4.3-4.5 s; the same rows). The tables, not the `orders` CTE:
-- DuckDB materializes a CTE read twice, i.e. would copy all of stg_crm__orders.
refund_orders as (

    select
        refunds.order_id,
        refunds.original_order_id
    from {{ ref('stg_crm__orders') }} as refunds
    where refunds.transaction_type = 'refund'
        {%- if is_incremental() %}
        and refunds.order_id in (select recomputed_orders.order_id from recomputed_orders)
        {%- endif %}

),

known_sales as (

    select sales.order_id
    from {{ ref('stg_crm__orders') }} as sales
    where sales.transaction_type = 'sale'
        and sales.order_id in (select refund_orders.original_order_id from refund_orders)

),

unknown_refunds as (

    select refund_orders.order_id
    from refund_orders
    where not exists (
        select 1
        from known_sales
        where known_sales.order_id = refund_orders.original_order_id
    )

),

order_item_totals as (

    select
        order_id,
        sum(quantity) as item_count,
        -- An order's lines all come from one load (base_crm__order_items), so min = max. A number, not
        -- the file's name: carrying text through the join took 20 s more at 1M customers.
        {{ load_key('min(source_file)', 'min(loaded_at)') }} as lines_load_key,
        min(loaded_at) as lines_loaded_at
    from order_items
    group by order_id

),

final as (

    select
        cast(orders.order_id as {{ type_varchar() }}) as order_id,
        cast(accounts.customer_id as {{ type_varchar() }}) as customer_id,
        cast(orders.source_system as {{ type_varchar() }}) as source_system,
        cast(orders.source_customer_id as {{ type_varchar() }}) as source_customer_id,
        cast(orders.ordered_at as {{ type_timestamptz() }}) as ordered_at,
        cast(orders.order_date as date) as order_date,
        cast(orders.transaction_type as {{ type_varchar() }}) as transaction_type,
        cast(orders.original_order_id as {{ type_varchar() }}) as original_order_id,
        cast(orders.status as {{ type_varchar() }}) as status,
        cast(orders.channel as {{ type_varchar() }}) as channel,
        cast(orders.store_id as {{ type_varchar() }}) as store_id,
        cast(orders.payment_method as {{ type_varchar() }}) as payment_method,
        cast(orders.currency as {{ type_varchar() }}) as currency,
        cast(orders.gross_amount as decimal(14, 2)) as gross_amount,
        cast(orders.discount_amount as decimal(14, 2)) as discount_amount,
        cast(orders.net_amount as decimal(14, 2)) as net_amount,
        cast(orders.points_earned as integer) as points_earned,
        cast(orders.points_redeemed as integer) as points_redeemed,
        -- refunds carry no lines in the sample; 0 rather than null keeps sums simple
        cast(coalesce(order_item_totals.item_count, 0) as integer) as item_count,
        -- A refund whose sale we never saw (lost feed, sale before our history): the money still
        -- moved, so it stays, flagged for whoever reconciles.
        (unknown_refunds.order_id is not null) as refund_of_unknown_order,
        -- lineage: the loads this row was built from (what an incremental run compares)
        cast(orders.source_file as {{ type_varchar() }}) as source_file,
        cast(orders.loaded_at as {{ type_timestamptz() }}) as loaded_at,
        cast(order_item_totals.lines_loaded_at as {{ type_timestamptz() }}) as lines_loaded_at,
        cast(order_item_totals.lines_load_key as bigint) as lines_load_key,
        -- when a run wrote the row: readers recompute the orders changed since their last run
        cast({{ transactions_changed_at() }} as {{ type_timestamptz() }}) as changed_at
    from orders
    -- left join on purpose: a missing account must fail the not_null test, not drop the order
    left join accounts
        on orders.account_key = accounts.account_key
    left join order_item_totals
        on orders.order_id = order_item_totals.order_id
    left join unknown_refunds
        on orders.order_id = unknown_refunds.order_id

)

select * from final
