-- One row per customer x topic they wrote about: mentions by sentiment and when; has_negative flags
-- customers who complained about the topic (negative text) at least once.

with

topics as (

    select * from {{ ref('int_feedback_topics') }}
    where customer_id is not null

),

aggregated as (

    select
        customer_id,
        topic,
        max(dimension) as dimension,
        count(*) as mentions,
        sum(case when sentiment = 'negative' then 1 else 0 end) as negative_mentions,
        sum(case when sentiment = 'positive' then 1 else 0 end) as positive_mentions,
        min(created_at) as first_mentioned_at,
        max(created_at) as last_mentioned_at
    from topics
    group by customer_id, topic

),

final as (

    select
        cast(customer_id || '|' || topic as {{ dbt.type_string() }}) as customer_topic_key,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(topic as {{ dbt.type_string() }}) as topic,
        cast(dimension as {{ dbt.type_string() }}) as dimension,
        cast(mentions as integer) as mentions,
        cast(negative_mentions as integer) as negative_mentions,
        cast(positive_mentions as integer) as positive_mentions,
        negative_mentions > 0 as has_negative,
        cast(first_mentioned_at as {{ type_timestamptz() }}) as first_mentioned_at,
        cast(last_mentioned_at as {{ type_timestamptz() }}) as last_mentioned_at
    from aggregated

)

select * from final
