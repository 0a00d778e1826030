-- Line items of the orders kept in stg_crm__orders, from the latest load of each order's items.
-- The raw table is read directly where needed, not through an import CTE: DuckDB materializes a CTE
-- read more than once, i.e. copies every raw row and column before any read (at 1M customers this
-- query took 29.8 s with the CTE, 22.7 s without; the same rows).

with

orders as (

    select order_id from {{ ref('stg_crm__orders') }}

),

-- A number per loaded file, so that the group-by below compares numbers, not the files' long paths:
-- min/max of the path per order was most of this model's time (at 1M customers, 19M orders: 14.4 s
-- for that group-by, 3.7 s with the numbers).
source_files as (

    select
        _source_file,
        row_number() over (order by _source_file) as file_number
    from {{ source('raw', 'order_items') }}
    group by _source_file

),

-- Almost every order's lines arrive in one file: rank the loads only for orders whose lines came in
-- more than one, so the window (a sort) runs over a handful of rows instead of every line.
reloaded as (

    select source.order_id
    from {{ source('raw', 'order_items') }} as source
    inner join source_files
        on source._source_file = source_files._source_file
    group by source.order_id
    having min(source_files.file_number) <> max(source_files.file_number)

),

loads as (

    select
        source.*,
        1 as load_rank
    from {{ source('raw', 'order_items') }} as source
    where not exists (select 1 from reloaded where reloaded.order_id = source.order_id)

    union all

    select * from (
        select
            source.*,
            -- A re-sent order re-sends all its lines: take the whole latest set, so a line dropped in
            -- the correction does not linger from the older copy.
            dense_rank() over (
                partition by source.order_id
                order by source._loaded_at desc, source._partition_date desc, source._source_file desc
            ) as load_rank
        from {{ source('raw', 'order_items') }} as source
        where exists (select 1 from reloaded where reloaded.order_id = source.order_id)
    ) as ranked

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
