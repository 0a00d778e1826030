-- Line items of the orders kept in stg_crm__orders, from the latest load of each order's items.

with

source as (

    select * from {{ source('raw', 'order_items') }}

),

orders as (

    select order_id from {{ ref('stg_crm__orders') }}

),

loads as (

    select
        *,
        -- A re-sent order re-sends all its lines: take the whole latest set, so a line dropped in
        -- the correction does not linger from the older copy.
        dense_rank() over (
            partition by order_id
            order by _loaded_at desc, _partition_date desc, _source_file desc
        ) as load_rank
    from source

),

renamed as (

    select
        loads.order_id || '-' || cast(loads.line_no as {{ dbt.type_string() }}) as order_item_id,
        loads.order_id,
        loads.line_no,
        loads.product_id,
        loads.quantity,
        loads.unit_price,
        coalesce(loads.discount_amount, 0) as discount_amount,
        loads.quantity * loads.unit_price - coalesce(loads.discount_amount, 0) as line_amount,
        loads._loaded_at as loaded_at

    from loads
    -- items of quarantined, later-dated or unknown orders would have no order to belong to
    inner join orders
        on loads.order_id = orders.order_id
    -- `<= 1` keeps the same rows as `= 1`, but Postgres then estimates a third of the rows survive
    -- (not 0.5%) and joins views built on this one with hashes instead of nested loops
    where loads.load_rank <= 1

)

select * from renamed
