-- One row per membership tier change: join (first tier), upgrade or downgrade, with its day.

with

tier_days as (

    select * from {{ ref('int_loyalty_tier_days') }}

),

sequenced as (

    select
        *,
        lag(loyalty_tier) over (partition by customer_id order by tier_date) as previous_tier,
        lag(tier_rank) over (partition by customer_id order by tier_date) as previous_tier_rank,
        row_number() over (partition by customer_id order by tier_date) as day_number_of_member
    from tier_days

),

changes as (

    select
        *,
        case
            when day_number_of_member = 1 then 'join'
            when tier_rank > previous_tier_rank then 'upgrade'
            else 'downgrade'
        end as event_type
    from sequenced
    where day_number_of_member = 1
        or tier_rank <> previous_tier_rank
        or (tier_rank is null) <> (previous_tier_rank is null)

),

final as (

    select
        cast(customer_id || ':' || cast(tier_date as {{ dbt.type_string() }}) as {{ dbt.type_string() }})
            as tier_event_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(tier_date as date) as event_date,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(previous_tier as {{ dbt.type_string() }}) as from_tier,
        cast(loyalty_tier as {{ dbt.type_string() }}) as to_tier,
        cast(qualifying_points as integer) as qualifying_points
    from changes

)

select * from final
