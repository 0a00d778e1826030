-- One row per buyer: value tier by their share of net revenue in the RFM window (Pareto).
--
-- Buyers with positive revenue are ranked by it (largest first, customer_id breaks ties). A buyer is
-- high when the buyers ranked before them bring less than value_tier_high_revenue_share of the
-- total, i.e. the high tier is the smallest set of top buyers that together reach that share; mid
-- likewise up to value_tier_mid_revenue_share; everyone else, and buyers with no positive revenue
-- in the window, are low.

with

rfm as (

    select * from {{ ref('int_customer_rfm') }}

),

revenue_ranks as (

    select
        customer_id,
        monetary,
        coalesce(
            sum(monetary) over (
                order by monetary desc, customer_id
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as revenue_before,
        sum(monetary) over () as total_revenue
    from rfm
    where monetary > 0

),

shares as (

    select
        customer_id,
        revenue_before / total_revenue as revenue_share_before,
        cast((revenue_before + monetary) / total_revenue as decimal(9, 6)) as cumulative_revenue_share
    from revenue_ranks

),

final as (

    select
        rfm.customer_id,
        rfm.monetary,
        shares.cumulative_revenue_share,
        case
            when shares.revenue_share_before is null then 'low'
            when shares.revenue_share_before < {{ var('value_tier_high_revenue_share') }} then 'high'
            when shares.revenue_share_before < {{ var('value_tier_mid_revenue_share') }} then 'mid'
            else 'low'
        end as value_tier
    from rfm
    left join shares
        on rfm.customer_id = shares.customer_id

)

select * from final
