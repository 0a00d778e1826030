-- Physical stores: latest version of each store.

with

source as (

    select * from {{ source('raw', 'stores') }}

),

versions as (

    select
        *,
        row_number() over (
            partition by store_id
            order by _loaded_at desc, _partition_date desc, _source_file desc, _row_in_file desc
        ) as version_rank
    from source

),

renamed as (

    select
        store_id,
        store_name,
        city,
        city_tier,
        opened_on,
        _loaded_at as loaded_at

    from versions
    where version_rank <= 1  -- `<= 1`: see stg_crm__orders

)

select * from renamed
