-- One row per complaint (latest version as of the run date): response and resolution times against
-- the service levels (vars complaint_*_sla_hours), reopens, and the topics its text is about.

with

complaints as (

    select * from {{ ref('int_feedback_enriched') }}
    where feedback_type = 'complaint'

),

reopens as (

    select * from {{ ref('int_complaint_reopens') }}

),

topics as (

    select * from {{ ref('int_feedback_topics') }}

),

complaint_topics as (

    select
        feedback_id,
        {{ dbt.listagg('topic', "','", "order by topic") }} as categories
    from topics
    group by feedback_id

),

timed as (

    select
        complaints.*,
        -- resolved now: by its resolved_at, or (feed without it) by the time of the resolving version
        case when complaints.status = 'resolved' then coalesce(complaints.resolved_at, complaints.updated_at) end
            as resolved_at_as_of,
        coalesce(reopens.times_reopened, 0) as times_reopened,
        coalesce(complaint_topics.categories, 'unclassified') as categories
    from complaints
    left join reopens
        on complaints.feedback_id = reopens.feedback_id
    left join complaint_topics
        on complaints.feedback_id = complaint_topics.feedback_id

),

final as (

    select
        cast(feedback_id as {{ dbt.type_string() }}) as feedback_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        cast(feedback_month as date) as feedback_month,
        cast(categories as {{ dbt.type_string() }}) as categories,
        cast(coalesce(status, 'open') as {{ dbt.type_string() }}) as status,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(first_response_at as {{ type_timestamptz() }}) as first_response_at,
        cast(resolved_at_as_of as {{ type_timestamptz() }}) as resolved_at,
        cast({{ hours_between('created_at', 'first_response_at') }} as decimal(10, 2)) as hours_to_first_response,
        cast({{ hours_between('created_at', 'resolved_at_as_of') }} as decimal(10, 2)) as hours_to_resolution,
        {{ sla_breached('created_at', 'first_response_at', var('complaint_first_response_sla_hours')) }}
            as first_response_sla_breached,
        {{ sla_breached('created_at', 'resolved_at_as_of', var('complaint_resolution_sla_hours')) }}
            as resolution_sla_breached,
        cast(times_reopened as integer) as times_reopened,
        times_reopened > 0 as is_reopened
    from timed

)

select * from final
