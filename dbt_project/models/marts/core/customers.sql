-- Customer 360: one row per resolved person with profile, order metrics, preferences, loyalty,
-- feedback, consent, segments and lifecycle stage as of the run date.

with

profiles as (

    select * from {{ ref('int_customer_profiles') }}

),

transactions as (

    select * from {{ ref('transactions') }}

),

preferences as (

    select * from {{ ref('int_customer_preferences') }}

),

feedback as (

    select * from {{ ref('int_customer_feedback_summary') }}

),

consents as (

    select * from {{ ref('int_customer_consents') }}

),

loyalty as (

    select * from {{ ref('loyalty_balances') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

order_summary as (

    select
        customer_id,
        -- a completed sale is an order; cancelled sales never happened for revenue
        sum(case when transaction_type = 'sale' and status = 'completed' then 1 else 0 end) as orders_count,
        min(case when transaction_type = 'sale' and status = 'completed' then ordered_at end) as first_order_at,
        max(case when transaction_type = 'sale' and status = 'completed' then ordered_at end) as last_order_at,
        sum(case when transaction_type = 'sale' and status = 'completed' then net_amount else 0 end) as sales_amount,
        -- refunds are stored negative; reported here as a positive amount
        -sum(case when transaction_type = 'refund' and status = 'completed' then net_amount else 0 end) as refunds_amount
    from transactions
    group by customer_id

),

final as (

    select
        cast(profiles.customer_id as {{ dbt.type_string() }}) as customer_id,

        cast(profiles.full_name as {{ dbt.type_string() }}) as full_name,
        cast(profiles.gender as {{ dbt.type_string() }}) as gender,
        cast(profiles.birth_date as date) as birth_date,
        cast(profiles.city as {{ dbt.type_string() }}) as city,
        cast(profiles.city_tier as integer) as city_tier,
        cast(profiles.income_band as {{ dbt.type_string() }}) as income_band,
        cast(profiles.education as {{ dbt.type_string() }}) as education,

        cast(profiles.signup_channel as {{ dbt.type_string() }}) as signup_channel,
        cast(profiles.first_seen_at as {{ type_timestamptz() }}) as first_seen_at,
        cast(profiles.account_count as integer) as account_count,
        cast(profiles.source_systems as {{ dbt.type_string() }}) as source_systems,
        cast(profiles.email_normalized as {{ dbt.type_string() }}) as email_normalized,
        cast(profiles.phone_e164 as {{ dbt.type_string() }}) as phone_e164,

        cast(order_summary.first_order_at as {{ type_timestamptz() }}) as first_order_at,
        cast(order_summary.last_order_at as {{ type_timestamptz() }}) as last_order_at,
        cast(coalesce(order_summary.orders_count, 0) as integer) as orders_count,
        cast(
            coalesce(order_summary.sales_amount, 0) - coalesce(order_summary.refunds_amount, 0)
            as decimal(18, 2)
        ) as revenue,
        cast(coalesce(order_summary.refunds_amount, 0) as decimal(18, 2)) as refunds_amount,
        -- via 6 decimals: DuckDB divides decimals in floating point, and a half cent must round
        -- the same way on every engine
        cast(
            cast(
                (order_summary.sales_amount - order_summary.refunds_amount)
                / nullif(order_summary.orders_count, 0)
                as decimal(18, 6)
            )
            as decimal(18, 2)
        ) as average_order_value,
        coalesce(order_summary.orders_count, 0) = 0 as is_prospect,

        cast(profiles.age as integer) as age,
        cast(profiles.age_band as {{ dbt.type_string() }}) as age_band,
        cast(profiles.birthday as {{ dbt.type_string() }}) as birthday,
        cast(profiles.birth_month as integer) as birth_month,

        cast(preferences.preferred_channel as {{ dbt.type_string() }}) as preferred_channel,
        cast(preferences.preferred_category as {{ dbt.type_string() }}) as preferred_category,
        cast(preferences.preferred_payment_method as {{ dbt.type_string() }}) as preferred_payment_method,

        loyalty.customer_id is not null as is_loyalty_member,
        cast(coalesce(loyalty.points_earned, 0) as integer) as points_earned,
        cast(coalesce(loyalty.points_redeemed, 0) as integer) as points_redeemed,
        cast(coalesce(loyalty.points_adjusted, 0) as integer) as points_adjusted,
        cast(coalesce(loyalty.points_expired, 0) as integer) as points_expired,
        cast(coalesce(loyalty.points_balance, 0) as integer) as points_balance,
        cast(loyalty.loyalty_tier as {{ dbt.type_string() }}) as loyalty_tier,

        cast(feedback.latest_nps_score as integer) as latest_nps_score,
        cast(feedback.latest_csat_score as integer) as latest_csat_score,
        cast(coalesce(feedback.open_complaints, 0) as integer) as open_complaints,

        coalesce(consents.consent_email, false) as consent_email,
        coalesce(consents.consent_sms, false) as consent_sms,
        coalesce(consents.consent_ads, false) as consent_ads,

        cast(segments.lifecycle_stage as {{ dbt.type_string() }}) as lifecycle_stage,
        cast(segments.r_score as integer) as r_score,
        cast(segments.f_score as integer) as f_score,
        cast(segments.m_score as integer) as m_score,
        cast(segments.rfm_segment as {{ dbt.type_string() }}) as rfm_segment,
        cast(segments.value_tier as {{ dbt.type_string() }}) as value_tier,
        cast(segments.demographic_segment as {{ dbt.type_string() }}) as demographic_segment,
        cast(segments.needs_segment as {{ dbt.type_string() }}) as needs_segment,
        cast(segments.customer_level as {{ dbt.type_string() }}) as customer_level,

        cast('{{ as_of_date() }}' as date) as as_of_date

    from profiles
    left join order_summary
        on profiles.customer_id = order_summary.customer_id
    left join preferences
        on profiles.customer_id = preferences.customer_id
    left join feedback
        on profiles.customer_id = feedback.customer_id
    left join consents
        on profiles.customer_id = consents.customer_id
    left join loyalty
        on profiles.customer_id = loyalty.customer_id
    left join segments
        on profiles.customer_id = segments.customer_id

)

select * from final
