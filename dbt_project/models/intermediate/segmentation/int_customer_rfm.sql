-- One row per buyer (a completed sale up to the run date): RFM metrics, quintile scores and segment.
--
-- Scores are quintiles over all buyers: score = 1 + floor(5 * (rank - 1) / buyers), with rank() so
-- that equal values always get the same score (ntile would split ties arbitrarily). 5 is best:
-- the most recent, the most orders, the most revenue.

with

activity_spans as (

    select * from {{ ref('int_customer_activity_spans') }}

),

rfm_segments as (

    select * from {{ ref('rfm_segments') }}

),

-- The per-span sums add up to the customer's: frequency and monetary look back rfm_window_days days,
-- the as-of day included (int_customer_activity_spans); refunds in the window count against monetary.
buyer_metrics as (

    select
        customer_id,
        max(last_sale_date) as last_order_date,
        sum(sales) as lifetime_orders,
        sum(sales_in_rfm_window) as frequency,
        cast(sum(net_amount_in_rfm_window) as decimal(18, 2)) as monetary
    from activity_spans
    group by customer_id
    having sum(sales) > 0

),

ranked as (

    select
        *,
        {{ days_between('last_order_date', "cast('" ~ as_of_date() ~ "' as date)") }} as recency_days
    from buyer_metrics

),

ranks as (

    select
        *,
        rank() over (order by recency_days desc) as recency_rank,
        rank() over (order by frequency) as frequency_rank,
        rank() over (order by monetary) as monetary_rank,
        count(*) over () as buyers
    from ranked

),

scored as (

    select
        *,
        cast(1 + floor(5.0 * (recency_rank - 1) / buyers) as integer) as r_score,
        cast(1 + floor(5.0 * (frequency_rank - 1) / buyers) as integer) as f_score,
        cast(1 + floor(5.0 * (monetary_rank - 1) / buyers) as integer) as m_score
    from ranks

),

final as (

    select
        scored.customer_id,
        scored.last_order_date,
        scored.recency_days,
        scored.lifetime_orders,
        scored.frequency,
        scored.monetary,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        cast(floor((scored.f_score + scored.m_score) / 2.0) as integer) as fm_score,
        rfm_segments.rfm_segment
    from scored
    left join rfm_segments
        on scored.r_score = rfm_segments.r_score
        and cast(floor((scored.f_score + scored.m_score) / 2.0) as integer) = rfm_segments.fm_score

)

select * from final
