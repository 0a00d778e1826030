-- One row per customer with a completed sale: their most frequent channel, payment method and category.

with

transactions as {{ not_materialized() }} (

    select * from {{ ref('transactions') }}

),

-- per completed sale and category, the sale's lines in it (built once per run for the
-- recommendation marts too): joining the 19M sales with their 38M lines and the catalogue here
-- took 8.6 s of this model's 12-14 s at 1M customers, grouping these rows 4.1 s
order_categories as (

    select * from {{ ref('int_order_categories') }}

),

completed_sales as {{ not_materialized() }} (

    select * from transactions
    where transaction_type = 'sale' and status = 'completed'

),

-- The sales counted once per customer, channel and payment method (about 3M combinations at 1M
-- customers), so the channel and payment preferences and the buyers read those instead of the 19M
-- sales three times. Counts are integers: the sums are exact.
sales_by_channel_and_payment as (

    select
        customer_id,
        channel,
        payment_method,
        count(*) as orders
    from completed_sales
    group by customer_id, channel, payment_method

),

channel_counts as (

    select
        customer_id,
        channel,
        sum(orders) as orders,
        -- most orders wins; a tie goes to the alphabetically first value, so reruns agree
        row_number() over (
            partition by customer_id
            order by sum(orders) desc, channel
        ) as preference_rank
    from sales_by_channel_and_payment
    where channel is not null
    group by customer_id, channel

),

payment_counts as (

    select
        customer_id,
        payment_method,
        sum(orders) as orders,
        row_number() over (
            partition by customer_id
            order by sum(orders) desc, payment_method
        ) as preference_rank
    from sales_by_channel_and_payment
    where payment_method is not null
    group by customer_id, payment_method

),

category_counts as (

    -- a category's weight is the number of purchased lines in it
    select
        customer_id,
        category,
        sum(lines) as lines,
        row_number() over (
            partition by customer_id
            order by sum(lines) desc, category
        ) as preference_rank
    from order_categories
    group by customer_id, category

),

category_totals as (

    select
        customer_id,
        sum(lines) as lines,
        count(*) as categories
    from category_counts
    group by customer_id

),

buyers as (

    select distinct customer_id from sales_by_channel_and_payment

),

final as (

    select
        buyers.customer_id,
        channels.channel as preferred_channel,
        payments.payment_method as preferred_payment_method,
        categories.category as preferred_category,
        cast(cast(categories.lines as decimal(18, 6)) / category_totals.lines as decimal(9, 6)) as preferred_category_share,
        coalesce(category_totals.categories, 0) as categories_bought
    from buyers
    left join channel_counts as channels
        on buyers.customer_id = channels.customer_id
        and channels.preference_rank = 1
    left join payment_counts as payments
        on buyers.customer_id = payments.customer_id
        and payments.preference_rank = 1
    left join category_counts as categories
        on buyers.customer_id = categories.customer_id
        and categories.preference_rank = 1
    left join category_totals
        on buyers.customer_id = category_totals.customer_id

)

select * from final
