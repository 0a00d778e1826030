-- One row per customer with feedback: latest NPS and CSAT scores and complaints still open.

with

feedback as (

    select * from {{ ref('stg_crm__feedback') }}

),

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

customer_feedback as (

    select
        accounts.customer_id,
        feedback.feedback_id,
        feedback.feedback_type,
        feedback.score,
        feedback.status,
        feedback.created_at,
        row_number() over (
            partition by accounts.customer_id, feedback.feedback_type
            order by feedback.created_at desc, feedback.feedback_id desc
        ) as recency_rank
    from feedback
    inner join accounts
        on feedback.account_key = accounts.account_key

),

final as (

    select
        customer_id,
        max(case when feedback_type = 'nps' and recency_rank = 1 then score end) as latest_nps_score,
        max(case when feedback_type = 'nps' and recency_rank = 1 then created_at end) as latest_nps_at,
        max(case when feedback_type = 'csat' and recency_rank = 1 then score end) as latest_csat_score,
        max(case when feedback_type = 'csat' and recency_rank = 1 then created_at end) as latest_csat_at,
        -- staging keeps each complaint's state as of the run date: resolved later = still open
        sum(case when feedback_type = 'complaint' and status = 'open' then 1 else 0 end) as open_complaints,
        sum(case when feedback_type = 'complaint' then 1 else 0 end) as complaints
    from customer_feedback
    group by customer_id

)

select * from final
