-- One row per customer with an NPS or CSAT answer: the latest answer of each, the one before it,
-- and the trend between the two (up, down, flat; null with a single answer).

with

answers as (

    select * from {{ ref('int_feedback_enriched') }}
    where feedback_type in ('nps', 'csat')
        and score is not null
        and customer_id is not null

),

ranked as (

    select
        customer_id,
        feedback_type,
        score,
        created_at,
        row_number() over (
            partition by customer_id, feedback_type
            order by created_at desc, feedback_id desc
        ) as recency_rank
    from answers

),

per_customer as (

    select
        customer_id,
        sum(case when feedback_type = 'nps' then 1 else 0 end) as nps_responses,
        max(case when feedback_type = 'nps' and recency_rank = 1 then score end) as latest_nps_score,
        max(case when feedback_type = 'nps' and recency_rank = 1 then created_at end) as latest_nps_at,
        max(case when feedback_type = 'nps' and recency_rank = 2 then score end) as previous_nps_score,
        sum(case when feedback_type = 'csat' then 1 else 0 end) as csat_responses,
        max(case when feedback_type = 'csat' and recency_rank = 1 then score end) as latest_csat_score,
        max(case when feedback_type = 'csat' and recency_rank = 1 then created_at end) as latest_csat_at,
        max(case when feedback_type = 'csat' and recency_rank = 2 then score end) as previous_csat_score
    from ranked
    group by customer_id

),

final as (

    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(nps_responses as integer) as nps_responses,
        cast(latest_nps_score as integer) as latest_nps_score,
        cast(latest_nps_at as {{ type_timestamptz() }}) as latest_nps_at,
        cast(
            case
                when latest_nps_score is null then null
                when latest_nps_score >= {{ var('nps_promoter_min_score') }} then 'promoter'
                when latest_nps_score <= {{ var('nps_detractor_max_score') }} then 'detractor'
                else 'passive'
            end as {{ dbt.type_string() }}
        ) as latest_nps_class,
        cast(previous_nps_score as integer) as previous_nps_score,
        cast(latest_nps_score - previous_nps_score as integer) as nps_change,
        cast({{ score_trend('latest_nps_score', 'previous_nps_score') }} as {{ dbt.type_string() }}) as nps_trend,
        cast(csat_responses as integer) as csat_responses,
        cast(latest_csat_score as integer) as latest_csat_score,
        cast(latest_csat_at as {{ type_timestamptz() }}) as latest_csat_at,
        cast(previous_csat_score as integer) as previous_csat_score,
        cast(latest_csat_score - previous_csat_score as integer) as csat_change,
        cast({{ score_trend('latest_csat_score', 'previous_csat_score') }} as {{ dbt.type_string() }})
            as csat_trend
    from per_customer

)

select * from final
