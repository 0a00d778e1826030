{#-
    The days the first build of customer_lifecycle_history computes the stage for: the month ends of
    the `lifecycle_backfill_months` months before the as-of date, and the as-of date. Returned oldest
    first as 'YYYY-MM-DD' strings.
-#}
{% macro lifecycle_snapshot_dates() -%}
    {%- set as_of = modules.datetime.date.fromisoformat(as_of_date()) -%}
    {%- set one_day = modules.datetime.timedelta(days=1) -%}
    {%- set dates = [] -%}
    {%- set state = {'first_of_month': as_of.replace(day=1)} -%}
    {%- for _ in range(var('lifecycle_backfill_months') | int) -%}
        {%- set month_end = state['first_of_month'] - one_day -%}
        {%- do dates.insert(0, month_end.isoformat()) -%}
        {%- do state.update({'first_of_month': month_end.replace(day=1)}) -%}
    {%- endfor -%}
    {%- do dates.append(as_of.isoformat()) -%}
    {{ return(dates) }}
{%- endmacro %}


{#- Pre-hook of customer_lifecycle_history: a run for day D replaces what runs for D or later wrote. -#}
{% macro lifecycle_history_delete_from_as_of() -%}
    {{ delete_replaced_rows("valid_from >= cast('" ~ as_of_date() ~ "' as date)") }}
{%- endmacro %}


{#-
    The lifecycle stage of every customer on each of ``snapshot_dates`` ('YYYY-MM-DD' strings): a
    select of (customer_id, snapshot_date, first_order_date, last_order_date, days_since_first_order,
    days_since_last_order, orders_in_loyal_window, last_comeback_date, lifecycle_stage). The one
    place of the stage rules: int_customer_lifecycle_snapshots runs it for the as-of date, the first
    build of customer_lifecycle_history for its backfill month ends and the as-of date. Rules and
    their order: the header of int_customer_lifecycle_snapshots.sql.
-#}
{% macro lifecycle_stages(snapshot_dates) -%}
    with

    accounts as (

        select * from {{ ref('int_customer_accounts_resolved') }}

    ),

    transactions as (

        select * from {{ ref('transactions') }}

    ),

    snapshot_dates as (

        {% for snapshot_date in snapshot_dates -%}
        select cast('{{ snapshot_date }}' as date) as snapshot_date
        {% if not loop.last %}union all
        {% endif -%}
        {%- endfor %}

    ),

    sales as (

        select
            customer_id,
            order_date
        from transactions
        where transaction_type = 'sale' and status = 'completed'

    ),

    sales_with_gaps as (

        select
            *,
            -- Ordered by day only: of a day's sales, the first in any order gets the previous day
            -- with a sale and the others the same day (gap 0), so the comeback days are the same as
            -- in time order, and the sort is on a date instead of a timestamp and an order id.
            lag(order_date) over (partition by customer_id order by order_date) as previous_order_date
        from sales

    ),

    returns_flagged as (

        select
            customer_id,
            order_date,
            -- a comeback: the previous sale is further back than the churn threshold
            coalesce(
                {{ days_between('previous_order_date', 'order_date') }} > {{ var('churn_after_days') }},
                false
            ) as is_comeback
        from sales_with_gaps

    ),

    customer_starts as (

        select
            accounts.customer_id,
            min({{ utc_date('accounts.first_seen_at') }}) as first_seen_date
        from accounts
        group by accounts.customer_id

    ),

    -- Sales up to each snapshot day, per customer (a customer with no sale by then has no row). The
    -- join is with the handful of snapshot days, not with every customer's days.
    sales_as_of as (

        select
            returns_flagged.customer_id,
            snapshot_dates.snapshot_date,
            min(returns_flagged.order_date) as first_order_date,
            max(returns_flagged.order_date) as last_order_date,
            sum(
                case
                    when returns_flagged.order_date
                        >= {{ add_days('snapshot_dates.snapshot_date', 1 - var('lifecycle_loyal_window_days') | int) }}
                        then 1
                    else 0
                end
            ) as orders_in_loyal_window,
            max(case when returns_flagged.is_comeback then returns_flagged.order_date end) as last_comeback_date
        from returns_flagged
        inner join snapshot_dates
            on returns_flagged.order_date <= snapshot_dates.snapshot_date
        group by returns_flagged.customer_id, snapshot_dates.snapshot_date

    ),

    measured as (

        select
            customer_starts.customer_id,
            snapshot_dates.snapshot_date,
            sales_as_of.first_order_date,
            sales_as_of.last_order_date,
            {{ days_between('sales_as_of.first_order_date', 'snapshot_dates.snapshot_date') }} as days_since_first_order,
            {{ days_between('sales_as_of.last_order_date', 'snapshot_dates.snapshot_date') }} as days_since_last_order,
            coalesce(sales_as_of.orders_in_loyal_window, 0) as orders_in_loyal_window,
            sales_as_of.last_comeback_date,
            {{ days_between('sales_as_of.last_comeback_date', 'snapshot_dates.snapshot_date') }} as days_since_comeback
        from customer_starts
        cross join snapshot_dates
        left join sales_as_of
            on customer_starts.customer_id = sales_as_of.customer_id
            and snapshot_dates.snapshot_date = sales_as_of.snapshot_date
        -- a customer has a stage from their first account or first sale on
        where customer_starts.first_seen_date <= snapshot_dates.snapshot_date
            or sales_as_of.customer_id is not null
            -- on the as-of date every customer has a stage, even with inconsistent source timestamps
            or snapshot_dates.snapshot_date = cast('{{ as_of_date() }}' as date)

    ),

    final as (

        select
            customer_id,
            snapshot_date,
            first_order_date,
            last_order_date,
            days_since_first_order,
            days_since_last_order,
            orders_in_loyal_window,
            last_comeback_date,
            case
                when last_order_date is null then 'prospect'
                when days_since_last_order > {{ var('churn_after_days') }} then 'churned'
                when days_since_last_order > {{ var('lifecycle_active_within_days') }} then 'at_risk'
                when days_since_comeback <= {{ var('lifecycle_reactivated_within_days') }} then 'reactivated'
                when days_since_first_order <= {{ var('lifecycle_new_within_days') }} then 'new'
                when orders_in_loyal_window >= {{ var('lifecycle_loyal_min_orders') }} then 'loyal'
                else 'active'
            end as lifecycle_stage
        from measured

    )

    select * from final
{%- endmacro %}
