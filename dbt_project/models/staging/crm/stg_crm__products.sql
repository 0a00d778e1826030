-- Product catalogue: latest version of each product (the catalogue is re-sent in full on change).

with

source as (

    select * from {{ source('raw', 'products') }}

),

versions as (

    select
        *,
        row_number() over (
            partition by product_id
            order by _loaded_at desc, _partition_date desc, _source_file desc, _row_in_file desc
        ) as version_rank
    from source

),

renamed as (

    select
        product_id,
        product_name,
        category,
        brand,
        list_price,
        unit_cost,
        _loaded_at as loaded_at

    from versions
    where version_rank <= 1  -- `<= 1`: see stg_crm__orders

)

select * from renamed
