-- One row per month x segment x topic x sentiment x language: how many feedback items (and
-- customers) talked about the topic, with the topic's 4C dimension.

with

topics as (

    select * from {{ ref('int_feedback_topics') }}

),

aggregated as (

    select
        feedback_month,
        segment,
        topic,
        sentiment,
        language,
        max(dimension) as dimension,
        count(*) as feedback_items,
        count(distinct customer_id) as customers
    from topics
    group by feedback_month, segment, topic, sentiment, language

),

final as (

    select
        cast(
            cast(feedback_month as {{ dbt.type_string() }}) || '|' || segment || '|' || topic || '|' || sentiment
            || '|' || language as {{ dbt.type_string() }}
        ) as topic_count_key,
        cast(feedback_month as date) as feedback_month,
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(topic as {{ dbt.type_string() }}) as topic,
        cast(dimension as {{ dbt.type_string() }}) as dimension,
        cast(sentiment as {{ dbt.type_string() }}) as sentiment,
        cast(language as {{ dbt.type_string() }}) as language,
        cast(feedback_items as integer) as feedback_items,
        cast(customers as integer) as customers
    from aggregated

)

select * from final
