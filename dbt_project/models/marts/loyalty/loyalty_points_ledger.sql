-- One row per loyalty points event: earn and redeem (from completed sales), adjust (a refund takes
-- back the points its sale earned, pro rata) and expire (the whole balance, after
-- loyalty_points_expire_after_days days without earning or redeeming).
--
-- Incremental (see macros/loyalty.sql): a run recomputes the events from recompute_from on, and
-- all events of customers whose accounts now resolve differently; the pre-hook deletes exactly
-- those rows first, in the same transaction. Customers that keep earlier rows continue from them:
-- their balance before the window and their last earn/redeem day before it are carried in.
-- (On Spark, which cannot delete from Parquet tables, the run rewrites the whole table to the same
-- rows instead: macros/incremental.sql.)

{{ config(
    materialized='incremental',
    unique_key='points_event_id',
    incremental_strategy=replace_rows_strategy(),
    on_schema_change='fail',
    pre_hook="{{ loyalty_ledger_delete_recomputed() }}",
    post_hook="{{ drop_previous_rows() }}"
) }}

{%- set as_of = "cast('" ~ as_of_date() ~ "' as date)" %}
{%- set expire_after_days = var('loyalty_points_expire_after_days') | int %}
{%- set recompute_from = loyalty_ledger_recompute_from() %}
{#- exact to 6 decimals before rounding, so that .5 rounds the same on every engine (DuckDB divides
    decimals in floating point) -#}
{%- set refund_share_of_points =
    'cast(sale_points_earned * (-net_amount) / sale_net_amount as decimal(18, 6))' %}

with

transactions as (

    select * from {{ ref('transactions') }}

),

accounts as (

    -- read by loyalty_ledger_is_recomputed (customers whose accounts moved) in the pre-hook, and
    -- in kept_events where the pre-hook deletes nothing
    select * from {{ ref('int_customer_accounts_resolved') }}

),

{% if is_incremental() %}

kept_events as (

    -- the rows the pre-hook keeps: on DuckDB and Postgres it has deleted the others already (filtering
    -- again would join the whole ledger, 17M rows at 1M customers, with the accounts a second time);
    -- on Spark and in unit tests the filter picks them (macros/incremental.sql)
    {{ previous_rows_kept(loyalty_ledger_is_recomputed(incremental_previous(), recompute_from)) }}

),

carried_in as (

    select
        customer_id,
        sum(points) as balance,
        max(case when event_type in ('earn', 'redeem') then event_date end) as last_activity_date
    from kept_events
    group by customer_id

),

{% else %}

carried_in as (

    -- a full build starts from nothing
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as integer) as balance,
        cast(null as date) as last_activity_date
    where false

),

{% endif %}

completed as (

    -- completed sales and refunds
    select
        *,
        source_system || ':' || source_customer_id as account_key,
        coalesce(original_order_id, order_id) as order_group
    from transactions
    where status = 'completed'
    {%- if is_incremental() %}
        -- only the orders this run can write events for (new_order_events below), each with its whole
        -- order group (a refund sees its sale, whenever that was): the windows above then cover the
        -- recomputed days, not the whole history
        and coalesce(original_order_id, order_id) in (
            select coalesce(original_order_id, order_id)
            -- the table, not the CTE: a CTE read twice is materialized by DuckDB, i.e. all of
            -- marts.transactions copied (every column, 20M rows at 1M customers) before either read
            from {{ ref('transactions') }}
            where status = 'completed'
                and (
                    order_date >= cast('{{ recompute_from }}' as date)
                    or customer_id not in (select customer_id from carried_in)
                )
        )
    {%- endif %}

),

-- The sale of each refund's order group: its points and amount, its customer and account. Grouped
-- for the refunds' groups only: the windows over every completed row's group this replaces took 11 of
-- the incremental query's 15 s at 1M customers (over 5.4M rows, partitioned by order id).
refunded_sales as (

    select
        order_group,
        max(points_earned) as sale_points_earned,
        max(net_amount) as sale_net_amount,
        max(customer_id) as sale_customer_id,
        max(account_key) as sale_account_key
    from completed
    where transaction_type = 'sale'
        and order_group in (select order_group from completed where transaction_type = 'refund')
    group by order_group

),

order_events as (

    select
        order_id || ':earn' as points_event_id,
        customer_id,
        'earn' as event_type,
        ordered_at as event_at,
        order_date as event_date,
        order_id,
        account_key,
        points_earned as points
    from completed
    where transaction_type = 'sale' and points_earned > 0

    union all

    select
        order_id || ':redeem' as points_event_id,
        customer_id,
        'redeem' as event_type,
        ordered_at as event_at,
        order_date as event_date,
        order_id,
        account_key,
        -points_redeemed as points
    from completed
    where transaction_type = 'sale' and points_redeemed > 0

    union all

    -- a refund takes back the share of its sale's points it refunds (rounded, at most all of them),
    -- from the customer of the sale
    select
        order_id || ':adjust' as points_event_id,
        sale_customer_id as customer_id,
        'adjust' as event_type,
        ordered_at as event_at,
        order_date as event_date,
        order_id,
        sale_account_key as account_key,
        -least(
            sale_points_earned,
            cast(round({{ refund_share_of_points }}, 0) as integer)
        ) as points
    from completed
    -- inner join: a refund without its sale has no points to take back (sale_points_earned > 0)
    inner join refunded_sales
        on completed.order_group = refunded_sales.order_group
    where completed.transaction_type = 'refund'
        and sale_points_earned > 0
        and sale_net_amount > 0
        and round({{ refund_share_of_points }}, 0) > 0

),

new_order_events as (

    -- customers with carried-in rows: only the recompute window; everyone else: all history
    select * from order_events
    where event_date >= cast('{{ recompute_from }}' as date)
        or customer_id not in (select customer_id from carried_in)

),

timeline as (

    select
        customer_id,
        event_date,
        points,
        event_type in ('earn', 'redeem') as is_activity
    from new_order_events

    union all

    -- the last earn/redeem before the window still starts the expiry clock
    select
        customer_id,
        last_activity_date as event_date,
        0 as points,
        true as is_activity
    from carried_in
    where last_activity_date is not null

    union all

    -- the balance before the window, as one amount just before it
    select
        customer_id,
        {{ add_days("cast('" ~ recompute_from ~ "' as date)", -1) }} as event_date,
        balance as points,
        false as is_activity
    from carried_in

),

activity_days as (

    select distinct
        customer_id,
        event_date
    from timeline
    where is_activity

),

activity_gaps as (

    select
        customer_id,
        event_date,
        lead(event_date) over (partition by customer_id order by event_date) as next_activity_date
    from activity_days

),

expiry_days as (

    -- the balance expires on the day the inactivity period ends, unless there was activity before
    -- it (activity on that very day comes after the expiry); only days up to the as-of date
    select
        customer_id,
        {{ add_days('event_date', expire_after_days) }} as event_date
    from activity_gaps
    where (
            next_activity_date is null
            or next_activity_date >= {{ add_days('event_date', expire_after_days) }}
        )
        and {{ add_days('event_date', expire_after_days) }} <= {{ as_of }}

),

sequenced as (

    select customer_id, event_date, points, 0 as is_expiry from timeline
    union all
    select customer_id, event_date, cast(null as integer) as points, 1 as is_expiry from expiry_days

),

running_points as (

    -- points added up to each row; an expiry sorts before the events of its own day
    select
        *,
        sum(points) over (
            partition by customer_id
            order by event_date, is_expiry desc
            rows between unbounded preceding and current row
        ) as points_so_far
    from sequenced

),

expiries as (

    -- each expiry resets the balance to zero, so the balance it removes is what was added since the
    -- previous expiry
    select
        customer_id,
        event_date,
        coalesce(points_so_far, 0)
        - coalesce(lag(points_so_far) over (partition by customer_id order by event_date), 0) as balance
    from running_points
    where is_expiry = 1

),

expire_events as (

    -- a negative balance (a refund took back points already spent) is written off the same way
    select
        customer_id || ':expire:' || cast(event_date as {{ dbt.type_string() }}) as points_event_id,
        customer_id,
        'expire' as event_type,
        cast(cast(event_date as {{ dbt.type_string() }}) || ' 00:00:00+00' as {{ type_timestamptz() }}) as event_at,
        event_date,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as account_key,
        -balance as points
    from expiries
    where balance <> 0

),

new_events as (

    select * from new_order_events

    union all

    -- expiries before the window were written by earlier runs
    select * from expire_events
    where event_date >= cast('{{ recompute_from }}' as date)
        or customer_id not in (select customer_id from carried_in)

),

final as (

    -- type_varchar(), not dbt.type_string() (text on Postgres): the incremental runs compare
    -- these types with the contract's (on_schema_change = fail)
    select
        cast(points_event_id as {{ type_varchar() }}) as points_event_id,
        cast(customer_id as {{ type_varchar() }}) as customer_id,
        cast(event_type as {{ type_varchar() }}) as event_type,
        cast(event_at as {{ type_timestamptz() }}) as event_at,
        cast(event_date as date) as event_date,
        cast(order_id as {{ type_varchar() }}) as order_id,
        cast(account_key as {{ type_varchar() }}) as account_key,
        cast(points as integer) as points,
        {{ as_of }} as computed_as_of_date
    from new_events

)

select * from final
{{ incremental_kept_rows('final', 'kept_events', 'points_event_id') }}
