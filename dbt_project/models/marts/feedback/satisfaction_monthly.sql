-- One row per month x segment x channel x store with NPS and CSAT answers: promoters, passives,
-- detractors, NPS, CSAT % satisfied and average. Thresholds are vars in dbt_project.yml.

with

answers as (

    select * from {{ ref('int_feedback_enriched') }}
    where feedback_type in ('nps', 'csat')
        and score is not null

),

classified as (

    select
        feedback_month,
        segment,
        channel,
        store_id,
        feedback_type,
        score,
        case when feedback_type = 'nps' then 1 else 0 end as is_nps,
        case when feedback_type = 'nps' and score >= {{ var('nps_promoter_min_score') }} then 1 else 0 end
            as is_promoter,
        case when feedback_type = 'nps' and score <= {{ var('nps_detractor_max_score') }} then 1 else 0 end
            as is_detractor,
        case when feedback_type = 'csat' then 1 else 0 end as is_csat,
        case when feedback_type = 'csat' and score >= {{ var('csat_satisfied_min_score') }} then 1 else 0 end
            as is_satisfied
    from answers

),

aggregated as (

    select
        feedback_month,
        segment,
        channel,
        store_id,
        sum(is_nps) as nps_responses,
        sum(is_promoter) as promoters,
        sum(is_nps) - sum(is_promoter) - sum(is_detractor) as passives,
        sum(is_detractor) as detractors,
        sum(is_csat) as csat_responses,
        sum(is_satisfied) as csat_satisfied,
        {{ avg_to_decimal("case when feedback_type = 'csat' then score end", 4, 2) }} as csat_average
    from classified
    group by feedback_month, segment, channel, store_id

),

final as (

    select
        cast(
            cast(feedback_month as {{ dbt.type_string() }}) || '|' || segment || '|' || channel || '|' || store_id
            as {{ dbt.type_string() }}
        ) as satisfaction_key,
        cast(feedback_month as date) as feedback_month,
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        cast(nps_responses as integer) as nps_responses,
        cast(promoters as integer) as promoters,
        cast(passives as integer) as passives,
        cast(detractors as integer) as detractors,
        cast(
            case when nps_responses > 0 then 100.0 * (promoters - detractors) / nps_responses end
            as decimal(6, 1)
        ) as nps,
        cast(csat_responses as integer) as csat_responses,
        cast(csat_satisfied as integer) as csat_satisfied,
        cast(case when csat_responses > 0 then 100.0 * csat_satisfied / csat_responses end as decimal(6, 1))
            as csat_satisfied_pct,
        cast(csat_average as decimal(4, 2)) as csat_average
    from aggregated

)

select * from final
