-- Offline evaluation of customer_recommendations on a later window, rebuilt by every run:
-- recommend with the same macros as of cutoff = as_of_date - recs_eval_window_days, then count a
-- hit when the customer buys at least one recommended category in (cutoff, as_of_date].
-- One row per method: 'model' (the mart's logic) and 'popularity' (the baseline), per cutoff date:
-- incremental, so each day's evaluation is kept (a rerun of a day replaces that day's rows; on Spark,
-- which cannot delete from Parquet tables, the run rewrites the table to the same rows: macros/incremental.sql).

{%- set cutoff = recs_eval_cutoff() %}

{{
    config(
        materialized='incremental',
        unique_key=['method', 'cutoff_date'],
        incremental_strategy=replace_rows_strategy(),
        on_schema_change='fail',
        pre_hook="{{ delete_replaced_rows(\"cutoff_date = cast('\" ~ recs_eval_cutoff() ~ \"' as date)\") }}",
        post_hook="{{ drop_previous_rows() }}"
    )
}}

-- depends_on: {{ ref('int_order_categories') }}, {{ ref('int_basket_pair_days') }}

with

{% if is_incremental() %}
previous_rows as (

    -- the evaluations of other days (read only on Spark, which rewrites the table)
    select * from {{ incremental_previous() }}

),
{% endif %}

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

-- Only the evaluated customers need recommendations (a customer's list depends on their own history
-- and on the rules and popularity of everyone's baskets, which the macros compute in full), so the
-- lists are made for these instead of every customer: at 1M customers, recommending for everyone
-- twice in this one query ran out of memory at 4GB. The inner join keeps what the mart would do for
-- an evaluated customer without a profile (no list, a miss); transactions' relationships test to
-- customers says there is none.
recommended_customers as (

    select evaluated_customers.customer_id
    from evaluated_customers
    inner join {{ ref('int_customer_profiles') }} as profiles
        on evaluated_customers.customer_id = profiles.customer_id

),

model_recommendations as (

    {{ recs_customer_recommendations(cutoff, 'recommended_customers', few_customers=true) }}

),

popularity_recommendations as (

    {{ recs_popularity_recommendations(cutoff, 'recommended_customers') }}

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
        -- type_varchar(), not dbt.type_string() (text on Postgres): the incremental runs compare column types
        cast(methods.method as {{ type_varchar() }}) as method,
        cast('{{ cutoff }}' as date) as cutoff_date,
        cast('{{ as_of_date() }}' as date) as window_end_date,
        cast({{ var('recs_top_k') }} as integer) as k,
        cast(count(customer_hits.customer_id) as integer) as customers_evaluated,
        cast(coalesce(sum(customer_hits.is_hit), 0) as integer) as hits,
        -- null when nobody qualifies (e.g. less history than the window)
        cast(
            case when count(customer_hits.customer_id) > 0
                then {{ as_fraction('sum(customer_hits.is_hit)') }} / count(customer_hits.customer_id)
            end as {{ type_double() }}
        ) as hit_rate
    from methods
    left join customer_hits
        on methods.method = customer_hits.method
    group by methods.method

)

select * from final
{{ incremental_kept_rows('final', 'previous_rows', ['method', 'cutoff_date']) }}
