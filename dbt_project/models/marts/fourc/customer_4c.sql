-- The 4C of each customer relationship (value, cost, convenience, communication), one row per
-- resolved person, summed over their whole history up to the as-of day. Definitions: docs/4c.md.

with

profiles as (

    select customer_id from {{ ref('int_customer_profiles') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

transactions as {{ not_materialized() }} (

    select * from {{ ref('transactions') }}

),

order_items as (

    select * from {{ ref('stg_crm__order_items') }}

),

products as (

    select * from {{ ref('stg_crm__products') }}

),

order_categories as (

    select * from {{ ref('int_order_categories') }}

),

feedback as (

    select * from {{ ref('stg_crm__feedback') }}

),

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

consents as (

    select * from {{ ref('int_customer_consents') }}

),

completed as {{ not_materialized() }} (

    select * from transactions
    where status = 'completed'

),

-- The money figures per customer and (type, channel, store, payment method) first, then per
-- customer: the distinct counts then run over 3M combinations instead of 19M transactions (at 1M
-- customers this part took 3.5 s instead of 5.8 s). Sums of integers and decimals: exact either way.
money_by_combination as (

    select
        customer_id,
        transaction_type,
        channel,
        store_id,
        payment_method,
        count(*) as transactions_count,
        sum(gross_amount) as gross_amount,
        sum(discount_amount) as discount_amount,
        sum(net_amount) as net_amount
    from completed
    group by customer_id, transaction_type, channel, store_id, payment_method

),

money as (

    select
        customer_id,
        sum(case when transaction_type = 'sale' then transactions_count else 0 end) as orders_count,
        sum(case when transaction_type = 'sale' then gross_amount else 0 end) as sales_gross_amount,
        sum(case when transaction_type = 'sale' then discount_amount else 0 end) as discount_amount,
        sum(case when transaction_type = 'sale' then net_amount else 0 end) as sales_net_amount,
        -- refunds are stored negative; reported as a positive amount
        -sum(case when transaction_type = 'refund' then net_amount else 0 end) as refunds_amount,
        sum(case when transaction_type = 'refund' then transactions_count else 0 end) as refunds_count,
        count(distinct case when transaction_type = 'sale' then channel end) as channels_used,
        sum(case when transaction_type = 'sale' and channel = 'store' then transactions_count else 0 end)
            as store_orders,
        sum(case when transaction_type = 'sale' and channel in ('web', 'app', 'wechat') then transactions_count else 0 end)
            as online_orders,
        count(distinct case when transaction_type = 'sale' then store_id end) as stores_used,
        count(distinct case when transaction_type = 'sale' then payment_method end) as payment_methods_used
    from money_by_combination
    group by customer_id

),

-- The cost of goods of each completed sale's lines, by category, is kept by int_order_categories
-- (recomputed for changed sales, and for all after a catalogue load): joining every sale's lines
-- with the catalogue here took about half of this model's time at 1M customers (38M lines).
-- Lines whose product is not in the catalogue have no category, hence no row there: their orders
-- are found against the catalogue's few hundred products, first (a materialized CTE: left to the
-- planner, the lookup of the sales among them hashed all 19M sales, 2.8-4.2 s against 0.5 s).
uncatalogued_orders as {{ materialized_cte() }} (

    select order_items.order_id
    from order_items
    where not exists (
        select 1
        from products
        where products.product_id = order_items.product_id
    )

),

uncatalogued_sales as (

    select distinct completed.customer_id
    from completed
    where completed.transaction_type = 'sale'
        and completed.order_id in (select uncatalogued_orders.order_id from uncatalogued_orders)

),

goods_cost as (

    select
        order_categories.customer_id,
        -- one line without a known unit cost makes the customer's cost unknown, not understated
        case
            when count(*) = count(order_categories.cost_of_goods)
                and max(uncatalogued_sales.customer_id) is null
                then sum(order_categories.cost_of_goods)
        end as cost_of_goods
    from order_categories
    left join uncatalogued_sales
        on order_categories.customer_id = uncatalogued_sales.customer_id
    group by order_categories.customer_id

),

customer_feedback as (

    select
        accounts.customer_id,
        feedback.feedback_type,
        feedback.status,
        feedback.created_at,
        feedback.first_response_at,
        feedback.resolved_at,
        {{ minutes_between('feedback.created_at', 'feedback.first_response_at') }} as first_response_minutes,
        {{ minutes_between('feedback.created_at', 'feedback.resolved_at') }} as resolution_minutes,
        {{ as_fraction(minutes_between('feedback.created_at', 'feedback.first_response_at')) }} / 60
            as first_response_hours,
        -- still unanswered at the end of the as-of day, in hours
        {{ as_fraction(minutes_between('feedback.created_at', as_of_cutoff())) }} / 60 as open_hours
    from feedback
    inner join accounts
        on feedback.account_key = accounts.account_key

),

contacts as (

    select
        customer_id,
        count(*) as feedback_count,
        sum(case when feedback_type = 'nps' then 1 else 0 end) as nps_responses,
        sum(case when feedback_type = 'csat' then 1 else 0 end) as csat_responses,
        sum(case when feedback_type = 'review' then 1 else 0 end) as reviews,
        sum(case when feedback_type = 'complaint' then 1 else 0 end) as complaints,
        sum(case when feedback_type = 'complaint' and status = 'open' then 1 else 0 end) as open_complaints,
        sum(case when feedback_type = 'complaint' and first_response_at is not null then 1 else 0 end)
            as responded_complaints,
        -- averages of whole minutes, summed as integers: exact, so the same whatever the rows' order
        {{ average_hours("case when feedback_type = 'complaint' then first_response_minutes end") }}
            as avg_first_response_hours,
        {{ average_hours("case when feedback_type = 'complaint' then resolution_minutes end") }}
            as avg_resolution_hours,
        sum(
            case
                when feedback_type <> 'complaint' then 0
                when first_response_at is not null
                    and first_response_hours > {{ var('complaint_first_response_sla_hours') }} then 1
                when first_response_at is null and open_hours > {{ var('complaint_first_response_sla_hours') }} then 1
                else 0
            end
        ) as complaints_breaching_sla
    from customer_feedback
    group by customer_id

),

final as (

    select
        cast(profiles.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(segments.value_tier as {{ dbt.type_string() }}) as value_tier,
        cast(segments.rfm_segment as {{ dbt.type_string() }}) as rfm_segment,
        cast(segments.lifecycle_stage as {{ dbt.type_string() }}) as lifecycle_stage,
        cast(segments.customer_level as {{ dbt.type_string() }}) as customer_level,

        -- value
        cast(coalesce(money.orders_count, 0) as integer) as orders_count,
        cast(coalesce(money.sales_net_amount, 0) - coalesce(money.refunds_amount, 0) as decimal(18, 2)) as revenue,
        cast(coalesce(goods_cost.cost_of_goods, case when money.orders_count > 0 then null else 0 end)
            as decimal(18, 2)) as cost_of_goods,
        cast(
            coalesce(money.sales_net_amount, 0) - coalesce(money.refunds_amount, 0)
            - coalesce(goods_cost.cost_of_goods, case when money.orders_count > 0 then null else 0 end)
            as decimal(18, 2)
        ) as gross_margin,

        -- cost
        cast(coalesce(money.sales_gross_amount, 0) as decimal(18, 2)) as sales_gross_amount,
        cast(coalesce(money.discount_amount, 0) as decimal(18, 2)) as discount_amount,
        cast(case when money.sales_gross_amount > 0 then money.discount_amount / money.sales_gross_amount end
            as {{ type_double() }}) as discount_depth,
        cast(coalesce(money.sales_net_amount, 0) as decimal(18, 2)) as sales_net_amount,
        cast(coalesce(money.refunds_amount, 0) as decimal(18, 2)) as refunds_amount,
        cast(coalesce(money.refunds_count, 0) as integer) as refunds_count,
        cast(case when money.sales_net_amount > 0 then money.refunds_amount / money.sales_net_amount end
            as {{ type_double() }}) as refund_rate,
        cast(case when money.orders_count > 0 then {{ as_fraction('coalesce(contacts.feedback_count, 0)') }} / money.orders_count end
            as {{ type_double() }}) as contacts_per_order,
        cast(case when money.orders_count > 0 then {{ as_fraction('coalesce(contacts.complaints, 0)') }} / money.orders_count end
            as {{ type_double() }}) as complaints_per_order,

        -- convenience
        cast(coalesce(money.channels_used, 0) as integer) as channels_used,
        cast(coalesce(money.store_orders, 0) as integer) as store_orders,
        cast(coalesce(money.online_orders, 0) as integer) as online_orders,
        cast(case when money.orders_count > 0 then {{ as_fraction('money.online_orders') }} / money.orders_count end
            as {{ type_double() }}) as online_order_share,
        cast(coalesce(money.stores_used, 0) as integer) as stores_used,
        cast(coalesce(money.payment_methods_used, 0) as integer) as payment_methods_used,

        -- communication
        cast(coalesce(contacts.feedback_count, 0) as integer) as feedback_count,
        cast(coalesce(contacts.nps_responses, 0) as integer) as nps_responses,
        cast(coalesce(contacts.csat_responses, 0) as integer) as csat_responses,
        cast(coalesce(contacts.reviews, 0) as integer) as reviews,
        cast(coalesce(contacts.complaints, 0) as integer) as complaints,
        cast(coalesce(contacts.open_complaints, 0) as integer) as open_complaints,
        cast(coalesce(contacts.responded_complaints, 0) as integer) as responded_complaints,
        cast(contacts.avg_first_response_hours as {{ type_double() }}) as avg_first_response_hours,
        cast(contacts.avg_resolution_hours as {{ type_double() }}) as avg_resolution_hours,
        cast(coalesce(contacts.complaints_breaching_sla, 0) as integer) as complaints_breaching_sla,
        cast(coalesce(consents.consent_email, false) as boolean) as consent_email,
        cast(coalesce(consents.consent_sms, false) as boolean) as consent_sms,
        cast(coalesce(consents.consent_ads, false) as boolean) as consent_ads,

        cast('{{ as_of_date() }}' as date) as as_of_date
    from profiles
    left join segments
        on profiles.customer_id = segments.customer_id
    left join money
        on profiles.customer_id = money.customer_id
    left join goods_cost
        on profiles.customer_id = goods_cost.customer_id
    left join contacts
        on profiles.customer_id = contacts.customer_id
    left join consents
        on profiles.customer_id = consents.customer_id

)

select * from final
