-- One row per month x channel x category: complaint volumes, response and resolution times, SLA
-- breaches and reopens. Category = a topic of the complaint's text; a complaint about two topics
-- counts in both categories ('unclassified' when its text has no classification).

with

complaints as (

    select * from {{ ref('complaints') }}

),

topics as (

    select * from {{ ref('int_feedback_topics') }}

),

per_category as (

    select
        complaints.*,
        coalesce(topics.topic, 'unclassified') as category
    from complaints
    left join topics
        on complaints.feedback_id = topics.feedback_id

),

aggregated as (

    select
        feedback_month,
        channel,
        category,
        count(*) as complaints,
        sum(case when first_response_at is not null then 1 else 0 end) as responded,
        {{ avg_to_decimal('hours_to_first_response', 10, 2) }} as avg_hours_to_first_response,
        sum(case when status = 'resolved' then 1 else 0 end) as resolved,
        {{ avg_to_decimal('hours_to_resolution', 10, 2) }} as avg_hours_to_resolution,
        sum(case when first_response_sla_breached then 1 else 0 end) as first_response_sla_breaches,
        sum(case when resolution_sla_breached then 1 else 0 end) as resolution_sla_breaches,
        sum(case when is_reopened then 1 else 0 end) as reopened,
        sum(case when status = 'open' then 1 else 0 end) as still_open
    from per_category
    group by feedback_month, channel, category

),

final as (

    select
        cast(cast(feedback_month as {{ dbt.type_string() }}) || '|' || channel || '|' || category
             as {{ dbt.type_string() }}) as complaint_handling_key,
        cast(feedback_month as date) as feedback_month,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(complaints as integer) as complaints,
        cast(responded as integer) as responded,
        cast(avg_hours_to_first_response as decimal(10, 2)) as avg_hours_to_first_response,
        cast(resolved as integer) as resolved,
        cast(avg_hours_to_resolution as decimal(10, 2)) as avg_hours_to_resolution,
        cast(first_response_sla_breaches as integer) as first_response_sla_breaches,
        cast(resolution_sla_breaches as integer) as resolution_sla_breaches,
        cast(reopened as integer) as reopened,
        cast(still_open as integer) as still_open
    from aggregated

)

select * from final
