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

    One query per day (lifecycle_stages_on), joined by union all. A day's query groups each
    customer's sales once (sale_spans); one query for several days would first join every sale with
    each day. At 1M customers the history's 13 first-build days take 11 s this way, 30 s as one such
    query, and took 6 s with the former sort of every sale, which made the daily model 1 s slower
    (benchmarks/findings.md).
-#}
{% macro lifecycle_stages(snapshot_dates) -%}
    {%- for snapshot_date in snapshot_dates %}
    select * from (
    {{ lifecycle_stages_on(snapshot_date) }}
    ) as stages_on_day_{{ loop.index }}
    {%- if not loop.last %}

    union all
    {% endif -%}
    {%- endfor %}
{%- endmacro %}


{#- The lifecycle stage of every customer on one day ('YYYY-MM-DD'): see lifecycle_stages. -#}
{% macro lifecycle_stages_on(snapshot_date) -%}
    {%- set day = "cast('" ~ snapshot_date ~ "' as date)" -%}
    with

    accounts as (

        select * from {{ ref('int_customer_accounts_resolved') }}

    ),

    transactions as (

        select * from {{ ref('transactions') }}

    ),

    -- completed sales up to the end of the day
    sales as (

        select
            customer_id,
            order_date
        from transactions
        where transaction_type = 'sale' and status = 'completed'
            and order_date <= {{ day }}

    ),

    customer_starts as (

        select
            accounts.customer_id,
            min({{ utc_date('accounts.first_seen_at') }}) as first_seen_date
        from accounts
        group by accounts.customer_id

    ),

    -- Each customer's sales per span of churn_after_days + 1 days (day number / span length), in one
    -- pass over the sales that also counts the sales in the loyal window.
    --
    -- The spans find comebacks without sorting every sale: two sales in one span are at most
    -- churn_after_days apart, so a comeback (a sale more than churn_after_days after the previous
    -- one) is always the first sale of its span, and its previous sale is the last sale of the
    -- customer's previous span with a sale. The window below orders a customer's few spans (about
    -- 2.5 in a year at 1M customers) instead of all their sales.
    sale_spans as (

        select
            customer_id,
            floor({{ day_number('order_date') }} / {{ var('churn_after_days') | int + 1 }}.0) as span_number,
            min(order_date) as first_order_date,
            max(order_date) as last_order_date,
            sum(
                case
                    when order_date >= {{ add_days(day, 1 - var('lifecycle_loyal_window_days') | int) }} then 1
                    else 0
                end
            ) as orders_in_loyal_window
        from sales
        group by 1, 2

    ),

    spans_with_previous as (

        select
            *,
            lag(last_order_date) over (partition by customer_id order by span_number) as previous_order_date
        from sale_spans

    ),

    -- per customer with a sale by the day
    sales_to_date as (

        select
            customer_id,
            min(first_order_date) as first_order_date,
            max(last_order_date) as last_order_date,
            sum(orders_in_loyal_window) as orders_in_loyal_window,
            max(
                case
                    when {{ days_between('previous_order_date', 'first_order_date') }} > {{ var('churn_after_days') }}
                        then first_order_date
                end
            ) as last_comeback_date
        from spans_with_previous
        group by customer_id

    ),

    measured as (

        select
            customer_starts.customer_id,
            {{ day }} as snapshot_date,
            sales_to_date.first_order_date,
            sales_to_date.last_order_date,
            {{ days_between('sales_to_date.first_order_date', day) }} as days_since_first_order,
            {{ days_between('sales_to_date.last_order_date', day) }} as days_since_last_order,
            coalesce(sales_to_date.orders_in_loyal_window, 0) as orders_in_loyal_window,
            sales_to_date.last_comeback_date,
            {{ days_between('sales_to_date.last_comeback_date', day) }} as days_since_comeback
        from customer_starts
        left join sales_to_date
            on customer_starts.customer_id = sales_to_date.customer_id
        {%- if snapshot_date != as_of_date() %}
        -- a customer has a stage from their first account or first sale on (on the as-of date every
        -- customer has one, even with inconsistent source timestamps)
        where customer_starts.first_seen_date <= {{ day }}
            or sales_to_date.customer_id is not null
        {%- endif %}

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
