-- Offline evaluation of customer_recommendations on a later window, rebuilt by every run:
-- recommend with the same macros as of cutoff = as_of_date - recs_eval_window_days, then count a
-- hit when the customer buys at least one recommended category in (cutoff, as_of_date].
-- One row per method: 'model' (the mart's logic) and 'popularity' (the baseline), per cutoff date:
-- incremental, so each day's evaluation is kept (a rerun of a day replaces that day's rows).

{{
    config(
        materialized='incremental',
        unique_key=['method', 'cutoff_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- depends_on: {{ ref('transactions') }}, {{ ref('stg_crm__order_items') }}, {{ ref('stg_crm__products') }}

{%- set cutoff = as_of_date_plus(-(var('recs_eval_window_days') | int)) %}

with

model_recommendations as (

    {{ recs_customer_recommendations(cutoff, ref('int_customer_profiles')) }}

),

popularity_recommendations as (

    {{ recs_popularity_recommendations(cutoff, ref('int_customer_profiles')) }}

),

-- Customers with a purchase both before the cutoff (something to personalise from) and after it
-- (something to hit); cold-start customers get the same popularity list from both methods.
history_customers as (

    select distinct customer_id
    from ({{ recs_category_lines(cutoff, var('recs_history_window_days')) }}) as lines

),

later_purchases as (

    select distinct customer_id, category
    from ({{ recs_category_lines(as_of_date(), var('recs_eval_window_days')) }}) as lines

),

evaluated_customers as (

    select distinct later_purchases.customer_id
    from later_purchases
    inner join history_customers
        on later_purchases.customer_id = history_customers.customer_id

),

all_recommendations as (

    select 'model' as method, customer_id, category from model_recommendations
    union all
    select 'popularity' as method, customer_id, category from popularity_recommendations

),

methods as (

    select 'model' as method
    union all
    select 'popularity' as method

),

customer_hits as (

    select
        methods.method,
        evaluated_customers.customer_id,
        max(case when later_purchases.customer_id is not null then 1 else 0 end) as is_hit
    from evaluated_customers
    cross join methods
    left join all_recommendations
        on evaluated_customers.customer_id = all_recommendations.customer_id
        and methods.method = all_recommendations.method
    left join later_purchases
        on all_recommendations.customer_id = later_purchases.customer_id
        and all_recommendations.category = later_purchases.category
    group by methods.method, evaluated_customers.customer_id

),

final as (

    select
        cast(methods.method as {{ dbt.type_string() }}) as method,
        cast('{{ cutoff }}' as date) as cutoff_date,
        cast('{{ as_of_date() }}' as date) as window_end_date,
        cast({{ var('recs_top_k') }} as integer) as k,
        cast(count(customer_hits.customer_id) as integer) as customers_evaluated,
        cast(coalesce(sum(customer_hits.is_hit), 0) as integer) as hits,
        -- null when nobody qualifies (e.g. less history than the window)
        cast(
            case when count(customer_hits.customer_id) > 0
                then 1.0 * sum(customer_hits.is_hit) / count(customer_hits.customer_id)
            end as double precision
        ) as hit_rate
    from methods
    left join customer_hits
        on methods.method = customer_hits.method
    group by methods.method

)

select * from final
