-- The 4C per segment: one row per (segment_type, segment) for each segmentation of
-- customer_segments, plus ('all', 'all'). Amounts and counts are sums over the segment's customers
-- (so they add up to the customer_4c totals); rates are ratios of those sums, not averages of
-- per-customer rates. A customer without a segment value is in segment 'none'.

{%- set segment_types = ['value_tier', 'rfm_segment', 'lifecycle_stage', 'customer_level'] %}

with

customer_4c as (

    select * from {{ ref('customer_4c') }}

),

tagged as (

    {%- for segment_type in segment_types %}
    select '{{ segment_type }}' as segment_type, coalesce({{ segment_type }}, 'none') as segment, customer_4c.*
    from customer_4c
    union all
    {%- endfor %}
    select 'all' as segment_type, 'all' as segment, customer_4c.*
    from customer_4c

),

aggregated as (

    select
        segment_type,
        segment,
        count(*) as customers,
        sum(case when orders_count > 0 then 1 else 0 end) as buying_customers,
        sum(orders_count) as orders_count,
        sum(revenue) as revenue,
        -- unknown when any customer's cost is unknown (a partial sum would overstate the margin)
        case when count(*) = count(cost_of_goods) then sum(cost_of_goods) end as cost_of_goods,
        case when count(*) = count(gross_margin) then sum(gross_margin) end as gross_margin,
        sum(sales_gross_amount) as sales_gross_amount,
        sum(discount_amount) as discount_amount,
        sum(sales_net_amount) as sales_net_amount,
        sum(refunds_amount) as refunds_amount,
        sum(refunds_count) as refunds_count,
        sum(store_orders) as store_orders,
        sum(online_orders) as online_orders,
        avg(case when orders_count > 0 then {{ as_fraction('channels_used') }} end) as avg_channels_used,
        avg(case when orders_count > 0 then {{ as_fraction('payment_methods_used') }} end) as avg_payment_methods_used,
        sum(feedback_count) as feedback_count,
        sum(complaints) as complaints,
        sum(open_complaints) as open_complaints,
        sum(responded_complaints) as responded_complaints,
        -- weighted by each customer's responded complaints: the mean over the segment's complaints
        {{ exact_sum('avg_first_response_hours * responded_complaints') }} as first_response_hours_total,
        sum(complaints_breaching_sla) as complaints_breaching_sla,
        avg({{ as_fraction('case when consent_email then 1 else 0 end') }}) as consent_email_share,
        avg({{ as_fraction('case when consent_sms then 1 else 0 end') }}) as consent_sms_share,
        avg({{ as_fraction('case when consent_ads then 1 else 0 end') }}) as consent_ads_share
    from tagged
    group by segment_type, segment

),

final as (

    select
        cast(segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(customers as integer) as customers,
        cast(buying_customers as integer) as buying_customers,
        -- value
        cast(orders_count as integer) as orders_count,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(cost_of_goods as decimal(18, 2)) as cost_of_goods,
        cast(gross_margin as decimal(18, 2)) as gross_margin,
        cast(case when revenue > 0 then gross_margin / revenue end as {{ type_double() }}) as gross_margin_rate,
        cast(case when buying_customers > 0 then revenue / buying_customers end as decimal(18, 2))
            as revenue_per_buying_customer,
        -- cost
        cast(sales_gross_amount as decimal(18, 2)) as sales_gross_amount,
        cast(discount_amount as decimal(18, 2)) as discount_amount,
        cast(case when sales_gross_amount > 0 then discount_amount / sales_gross_amount end as {{ type_double() }})
            as discount_depth,
        cast(sales_net_amount as decimal(18, 2)) as sales_net_amount,
        cast(refunds_amount as decimal(18, 2)) as refunds_amount,
        cast(refunds_count as integer) as refunds_count,
        cast(case when sales_net_amount > 0 then refunds_amount / sales_net_amount end as {{ type_double() }})
            as refund_rate,
        cast(case when orders_count > 0 then {{ as_fraction('feedback_count') }} / orders_count end as {{ type_double() }})
            as contacts_per_order,
        -- convenience
        cast(store_orders as integer) as store_orders,
        cast(online_orders as integer) as online_orders,
        cast(case when orders_count > 0 then {{ as_fraction('online_orders') }} / orders_count end as {{ type_double() }})
            as online_order_share,
        cast(avg_channels_used as {{ type_double() }}) as avg_channels_used,
        cast(avg_payment_methods_used as {{ type_double() }}) as avg_payment_methods_used,
        -- communication
        cast(feedback_count as integer) as feedback_count,
        cast(complaints as integer) as complaints,
        cast(open_complaints as integer) as open_complaints,
        cast(responded_complaints as integer) as responded_complaints,
        cast(case when responded_complaints > 0 then first_response_hours_total / responded_complaints end
            as {{ type_double() }}) as avg_first_response_hours,
        cast(complaints_breaching_sla as integer) as complaints_breaching_sla,
        cast(consent_email_share as {{ type_double() }}) as consent_email_share,
        cast(consent_sms_share as {{ type_double() }}) as consent_sms_share,
        cast(consent_ads_share as {{ type_double() }}) as consent_ads_share,
        cast('{{ as_of_date() }}' as date) as as_of_date
    from aggregated

)

select * from final
