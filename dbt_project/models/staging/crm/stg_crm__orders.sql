-- One row per order or refund: the latest-loaded version of each order_id, up to the run date.

with

source as (

    select * from {{ source('raw', 'orders') }}

),

versions as (

    select
        *,
        row_number() over (
            partition by order_id
            -- a re-sent order is a correction: the most recently loaded copy is the truth
            order by
                _loaded_at desc,
                _partition_date desc,
                _source_file desc,
                _row_in_file desc
        ) as version_rank
    from source

),

latest as (

    select * from versions
    -- `<= 1` keeps the same rows as `= 1`, but Postgres then estimates a third of the rows survive
    -- (not 0.5%) and joins views built on this one with hashes instead of nested loops
    where version_rank <= 1
        -- filter after the dedupe: the latest version's time decides whether it happened by the run date
        and {{ as_of_filter('ordered_at') }}

),

renamed as (

    select
        order_id,
        source_system,
        source_customer_id,
        source_system || ':' || source_customer_id as account_key,

        ordered_at,
        {{ utc_date('ordered_at') }} as order_date,
        transaction_type,
        original_order_id,
        status,
        channel,
        store_id,
        payment_method,

        currency,
        gross_amount,
        discount_amount,
        net_amount,
        points_earned,
        points_redeemed,

        _loaded_at as loaded_at

    from latest

)

select * from renamed
