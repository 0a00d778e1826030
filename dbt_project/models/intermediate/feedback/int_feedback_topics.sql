-- One row per topic of each feedback item's latest version (as of the run date) that has a
-- classification, with the item's customer, segment, channel and month.

with

feedback as (

    select * from {{ ref('int_feedback_enriched') }}

),

topics as (

    select * from {{ ref('stg_ml__feedback_topics') }}

),

final as (

    select
        topics.feedback_topic_key,
        feedback.feedback_id,
        feedback.customer_id,
        feedback.feedback_type,
        feedback.channel,
        feedback.segment,
        feedback.feedback_month,
        feedback.created_at,
        topics.topic,
        topics.dimension,
        topics.sentiment,
        topics.language
    from feedback
    inner join topics
        on feedback.feedback_id = topics.feedback_id
        and feedback.updated_at = topics.updated_at

)

select * from final
