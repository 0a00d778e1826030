-- Lifecycle stage counts at the end of each month (the as-of date for the current month), with
-- month-over-month conversion from each stage's funnel predecessor (seed lifecycle_stages).

{%- set as_of = "cast('" ~ as_of_date() ~ "' as date)" %}

with

history as (

    select * from {{ ref('customer_lifecycle_history') }}
    where valid_from <= {{ as_of }}

),

stages as (

    select * from {{ ref('lifecycle_stages') }}

),

month_numbers as (

    -- enough months for 50 years of history; the range actually used comes from the history
    {{ dbt.generate_series(600) }}

),

history_start as (

    select cast({{ dbt.date_trunc('month', 'min(valid_from)') }} as date) as first_month
    from history

),

months as (

    select
        cast({{ dbt.dateadd('month', 'month_numbers.generated_number - 1', 'history_start.first_month') }} as date)
            as month
    from month_numbers
    cross join history_start
    where history_start.first_month is not null

),

snapshot_days as (

    -- the last day of each month, or the as-of date for the month it falls in
    select
        month,
        case
            when {{ add_days(dbt.dateadd('month', 1, 'month'), -1) }} < {{ as_of }}
                then {{ add_days(dbt.dateadd('month', 1, 'month'), -1) }}
            else {{ as_of }}
        end as snapshot_date,
        lag(month) over (order by month) as previous_month
    from months
    where month <= {{ as_of }}

),

stage_on_day as (

    select
        snapshot_days.month,
        history.customer_id,
        history.lifecycle_stage
    from snapshot_days
    inner join history
        on history.valid_from <= snapshot_days.snapshot_date
        and (history.valid_to is null or history.valid_to > snapshot_days.snapshot_date)

),

stage_counts as (

    select
        month,
        lifecycle_stage,
        count(*) as customers
    from stage_on_day
    group by month, lifecycle_stage

),

month_totals as (

    select
        month,
        count(*) as customers
    from stage_on_day
    group by month

),

conversions as (

    -- customers in the predecessor stage at the end of the previous month who are in the stage now
    select
        snapshot_days.month,
        stages.lifecycle_stage,
        count(previous_day.customer_id) as previous_stage_customers,
        count(this_day.customer_id) as converted_customers
    from snapshot_days
    cross join stages
    inner join stage_on_day as previous_day
        on previous_day.month = snapshot_days.previous_month
        and previous_day.lifecycle_stage = stages.funnel_previous_stage
    left join stage_on_day as this_day
        on this_day.month = snapshot_days.month
        and this_day.customer_id = previous_day.customer_id
        and this_day.lifecycle_stage = stages.lifecycle_stage
    group by snapshot_days.month, stages.lifecycle_stage

),

final as (

    select
        snapshot_days.month,
        snapshot_days.snapshot_date,
        cast(stages.lifecycle_stage as {{ dbt.type_string() }}) as lifecycle_stage,
        cast(stages.stage_order as integer) as stage_order,
        cast(coalesce(stage_counts.customers, 0) as integer) as customers,
        cast(
            cast(coalesce(stage_counts.customers, 0) as decimal(18, 6)) / nullif(month_totals.customers, 0)
            as decimal(9, 6)
        ) as share_of_customers,
        cast(stages.funnel_previous_stage as {{ dbt.type_string() }}) as funnel_previous_stage,
        cast(conversions.previous_stage_customers as integer) as previous_stage_customers,
        cast(conversions.converted_customers as integer) as converted_customers,
        cast(
            cast(conversions.converted_customers as decimal(18, 6)) / nullif(conversions.previous_stage_customers, 0)
            as decimal(9, 6)
        ) as conversion_rate,
        {{ as_of }} as as_of_date
    from snapshot_days
    cross join stages
    left join stage_counts
        on snapshot_days.month = stage_counts.month
        and stages.lifecycle_stage = stage_counts.lifecycle_stage
    left join month_totals
        on snapshot_days.month = month_totals.month
    left join conversions
        on snapshot_days.month = conversions.month
        and stages.lifecycle_stage = conversions.lifecycle_stage

)

select * from final
