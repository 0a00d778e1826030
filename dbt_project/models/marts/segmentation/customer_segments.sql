-- One row per customer: RFM scores and segment, value tier, demographic and needs segments,
-- customer level and lifecycle stage, all as of the run date.

with

profiles as (

    select * from {{ ref('int_customer_profiles') }}

),

rfm as (

    select * from {{ ref('int_customer_rfm') }}

),

value_tiers as (

    select * from {{ ref('int_customer_value_tiers') }}

),

preferences as (

    select * from {{ ref('int_customer_preferences') }}

),

lifecycle as (

    select * from {{ ref('int_customer_lifecycle_snapshots') }}
    where snapshot_date = cast('{{ as_of_date() }}' as date)

),

joined as (

    select
        profiles.customer_id,
        lifecycle.lifecycle_stage,
        rfm.recency_days,
        coalesce(rfm.lifetime_orders, 0) as lifetime_orders,
        coalesce(rfm.frequency, 0) as frequency,
        coalesce(rfm.monetary, 0) as monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.fm_score,
        rfm.rfm_segment,
        value_tiers.cumulative_revenue_share,
        value_tiers.value_tier,
        profiles.gender,
        profiles.age_band,
        profiles.city_tier,
        preferences.preferred_category,
        preferences.preferred_category_share
    from profiles
    left join rfm
        on profiles.customer_id = rfm.customer_id
    left join value_tiers
        on profiles.customer_id = value_tiers.customer_id
    left join preferences
        on profiles.customer_id = preferences.customer_id
    left join lifecycle
        on profiles.customer_id = lifecycle.customer_id

),

final as (

    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(lifecycle_stage as {{ dbt.type_string() }}) as lifecycle_stage,

        cast(recency_days as integer) as recency_days,
        cast(frequency as integer) as frequency,
        cast(monetary as decimal(18, 2)) as monetary,
        cast(r_score as integer) as r_score,
        cast(f_score as integer) as f_score,
        cast(m_score as integer) as m_score,
        cast(fm_score as integer) as fm_score,
        cast(
            cast(r_score as {{ dbt.type_string() }})
            || cast(f_score as {{ dbt.type_string() }})
            || cast(m_score as {{ dbt.type_string() }})
            as {{ dbt.type_string() }}
        ) as rfm_cell,
        cast(rfm_segment as {{ dbt.type_string() }}) as rfm_segment,

        cast(cumulative_revenue_share as decimal(9, 6)) as cumulative_revenue_share,
        cast(value_tier as {{ dbt.type_string() }}) as value_tier,

        cast(
            coalesce(age_band, 'age unknown')
            || ' / ' || coalesce('tier ' || cast(city_tier as {{ dbt.type_string() }}), 'tier unknown')
            || ' / ' || coalesce(gender, 'U')
            as {{ dbt.type_string() }}
        ) as demographic_segment,

        cast(preferred_category as {{ dbt.type_string() }}) as preferred_category,
        cast(preferred_category_share as decimal(9, 6)) as preferred_category_share,
        cast(
            case
                when preferred_category is null then null
                when preferred_category_share >= {{ var('needs_focused_min_share') }}
                    then preferred_category || '-focused'
                else 'multi-category'
            end
            as {{ dbt.type_string() }}
        ) as needs_segment,

        cast(lifetime_orders as integer) as lifetime_orders,
        cast(
            case
                when lifetime_orders = 0 then 'potential'
                when lifetime_orders < {{ var('customer_level_loyal_min_orders') }} then 'new'
                when value_tier = 'high'
                    and frequency >= {{ var('customer_level_super_fan_min_orders') }} then 'super_fan'
                else 'loyal'
            end
            as {{ dbt.type_string() }}
        ) as customer_level,

        cast('{{ as_of_date() }}' as date) as as_of_date
    from joined

)

select * from final
