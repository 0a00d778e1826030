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


{#- The customer_lifecycle_history rows a run for day D replaces: those runs for D or later wrote. -#}
{% macro lifecycle_history_recomputed() -%}
    valid_from >= cast('{{ as_of_date() }}' as date)
{%- endmacro %}


{#- Pre-hook of customer_lifecycle_history: delete the rows the run replaces. -#}
{% macro lifecycle_history_delete_from_as_of() -%}
    {{ delete_replaced_rows(lifecycle_history_recomputed()) }}
{%- endmacro %}


{#-
    The lifecycle stage of every customer on each of ``snapshot_dates`` ('YYYY-MM-DD' strings): a
    select of (customer_id, snapshot_date, first_order_date, last_order_date, days_since_first_order,
    days_since_last_order, orders_in_loyal_window, last_comeback_date, lifecycle_stage). The one
    place of the stage rules: int_customer_lifecycle_snapshots runs it for the as-of date, the first
    build of customer_lifecycle_history for its backfill month ends and the as-of date. Rules and
    their order: the header of int_customer_lifecycle_snapshots.sql.

    One query per day (lifecycle_stages_on), joined by union all. A day's query starts from each
    customer's spans (customer_activity_spans; on the as-of date the table int_customer_activity_spans);
    one query for several days would first join every sale with each day. At 1M customers the
    history's 13 first-build days take 11-12 s this way, 30 s as one such query, and took 6 s with
    the former sort of every sale, which made the daily model 1 s slower (benchmarks/findings.md).
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

    customers as (

        select * from {{ ref('int_customer_profiles') }}

    ),

    -- every resolved customer (one row each) and the day of their first account
    customer_starts as (

        select
            customers.customer_id,
            {{ utc_date('customers.first_seen_at') }} as first_seen_date
        from customers

    ),

    -- Each customer's spans with a completed sale by the end of the day (macro customer_activity_spans:
    -- spans of churn_after_days + 1 days). A comeback (a sale more than churn_after_days after the
    -- previous one) is always the first sale of its span, and its previous sale is the last sale of
    -- the customer's previous span with a sale, so the window below orders a customer's few spans
    -- (about 2.5 in a year at 1M customers) instead of all their sales. The as-of day reads the table
    -- the run built (which int_customer_rfm reads too); other days compute their spans here.
    activity_spans as (

        {% if snapshot_date == as_of_date() -%}
        select * from {{ ref('int_customer_activity_spans') }}
        {%- else -%}
        {{ customer_activity_spans(snapshot_date) | indent(8) }}
        {%- endif %}

    ),

    sale_spans as (

        select
            customer_id,
            span_number,
            first_sale_date as first_order_date,
            last_sale_date as last_order_date,
            sales_in_loyal_window as orders_in_loyal_window
        from activity_spans
        where sales > 0

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
