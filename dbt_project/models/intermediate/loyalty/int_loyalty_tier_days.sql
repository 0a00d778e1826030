-- Each member's qualifying points and tier on every day they can change, up to the run date.
--
-- Qualifying points on day T = points earned minus refund reversals dated within the
-- loyalty_tier_window_days days ending on T. They only change on a day with such an event or on
-- the day an event leaves the window, so those days are enough; between them nothing changes.
-- The tier is the highest tier of the seed loyalty_tiers whose min_qualifying_points is reached.

{%- set as_of = "cast('" ~ as_of_date() ~ "' as date)" %}
{%- set window_days = var('loyalty_tier_window_days') | int %}

with

ledger as (

    select * from {{ ref('loyalty_points_ledger') }}

),

tiers as (

    select * from {{ ref('loyalty_tiers') }}

),

qualifying_events as (

    select
        customer_id,
        event_date,
        points
    from ledger
    where event_type in ('earn', 'adjust')
        and event_date <= {{ as_of }}

),

change_days as (

    select customer_id, event_date as tier_date, points from qualifying_events

    union all

    -- the day an event's points leave the window
    select
        customer_id,
        {{ add_days('event_date', window_days) }} as tier_date,
        0 as points
    from qualifying_events
    where {{ add_days('event_date', window_days) }} <= {{ as_of }}

),

daily_points as (

    select
        customer_id,
        tier_date,
        sum(points) as points
    from change_days
    group by customer_id, tier_date

),

rolling_points as (

    select
        customer_id,
        tier_date,
        sum(points) over (
            partition by customer_id
            order by {{ day_number('tier_date') }}
            range between {{ window_days - 1 }} preceding and current row
        ) as qualifying_points
    from daily_points

),

tier_ranges as (

    select
        loyalty_tier,
        tier_rank,
        min_qualifying_points,
        lead(min_qualifying_points) over (order by min_qualifying_points) as next_tier_min_points
    from tiers

),

final as (

    select
        rolling_points.customer_id,
        rolling_points.tier_date,
        rolling_points.qualifying_points,
        tier_ranges.loyalty_tier,
        tier_ranges.tier_rank
    from rolling_points
    left join tier_ranges
        on rolling_points.qualifying_points >= tier_ranges.min_qualifying_points
        and (
            tier_ranges.next_tier_min_points is null
            or rolling_points.qualifying_points < tier_ranges.next_tier_min_points
        )

)

select * from final
