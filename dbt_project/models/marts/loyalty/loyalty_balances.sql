-- One row per loyalty member (a customer with any points event): points and tier as of the run date.

{%- set as_of = "cast('" ~ as_of_date() ~ "' as date)" %}

with

ledger as (

    select * from {{ ref('loyalty_points_ledger') }}
    where event_date <= {{ as_of }}

),

tier_days as (

    select * from {{ ref('int_loyalty_tier_days') }}

),

tier_events as (

    select * from {{ ref('loyalty_tier_events') }}

),

points_summary as (

    select
        customer_id,
        sum(case when event_type = 'earn' then points else 0 end) as points_earned,
        -sum(case when event_type = 'redeem' then points else 0 end) as points_redeemed,
        sum(case when event_type = 'adjust' then points else 0 end) as points_adjusted,
        -sum(case when event_type = 'expire' then points else 0 end) as points_expired,
        sum(points) as points_balance,
        max(case when event_type in ('earn', 'redeem') then event_date end) as last_activity_date,
        max(event_date) as last_event_date
    from ledger
    group by customer_id

),

current_tiers as (

    select
        customer_id,
        qualifying_points,
        loyalty_tier,
        row_number() over (partition by customer_id order by tier_date desc) as recency_rank
    from tier_days

),

tier_since as (

    select
        customer_id,
        max(event_date) as tier_since
    from tier_events
    group by customer_id

),

final as (

    select
        cast(points_summary.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(points_summary.points_earned as integer) as points_earned,
        cast(points_summary.points_redeemed as integer) as points_redeemed,
        cast(points_summary.points_adjusted as integer) as points_adjusted,
        cast(points_summary.points_expired as integer) as points_expired,
        cast(points_summary.points_balance as integer) as points_balance,
        cast(points_summary.last_activity_date as date) as last_activity_date,
        cast(
            case
                when points_summary.points_balance <> 0
                    then {{ add_days('points_summary.last_activity_date', var('loyalty_points_expire_after_days') | int) }}
            end
            as date
        ) as points_expire_on,
        cast(coalesce(current_tiers.qualifying_points, 0) as integer) as qualifying_points,
        cast(current_tiers.loyalty_tier as {{ dbt.type_string() }}) as loyalty_tier,
        cast(tier_since.tier_since as date) as tier_since,
        {{ as_of }} as as_of_date
    from points_summary
    left join current_tiers
        on points_summary.customer_id = current_tiers.customer_id
        and current_tiers.recency_rank = 1
    left join tier_since
        on points_summary.customer_id = tier_since.customer_id

)

select * from final
