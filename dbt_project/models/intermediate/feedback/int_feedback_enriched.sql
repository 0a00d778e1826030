-- One row per feedback item (its latest version as of the run date) with the resolved customer,
-- the customer's current RFM segment, the store of the order it is about, and its month.

with

feedback as (

    select * from {{ ref('stg_crm__feedback') }}

),

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

rfm as (

    select * from {{ ref('int_customer_rfm') }}

),

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

final as (

    select
        feedback.feedback_id,
        accounts.customer_id,
        feedback.feedback_type,
        feedback.score,
        feedback.language,
        -- group-by keys are never null, so every answer lands in exactly one cell of the marts
        coalesce(feedback.channel, 'unknown') as channel,
        coalesce(orders.store_id, 'none') as store_id,
        coalesce(rfm.rfm_segment, 'unknown') as segment,
        feedback.status,
        feedback.created_at,
        -- the feed may carry a first response time that lies after the as-of day: not known yet then
        case when {{ as_of_filter('feedback.first_response_at') }} then feedback.first_response_at end
            as first_response_at,
        feedback.resolved_at,
        feedback.updated_at,
        cast({{ dbt.date_trunc('month', utc_date('feedback.created_at')) }} as date) as feedback_month
    from feedback
    left join accounts
        on feedback.account_key = accounts.account_key
    left join rfm
        on accounts.customer_id = rfm.customer_id
    left join orders
        on feedback.order_id = orders.order_id

)

select * from final
