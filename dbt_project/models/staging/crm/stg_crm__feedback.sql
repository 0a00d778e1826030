-- One row per feedback item: its latest state as of the run date (a complaint is re-sent when resolved).

with

source as {{ not_materialized() }} (

    select * from {{ source('raw', 'feedback') }}
    -- filter before the dedupe: as of a past day, a complaint resolved later is still open
    where {{ as_of_filter('updated_at') }}

),

-- a complaint is re-sent when its status changes: the latest update wins, then the latest load
{{ ranked_versions('source', ['feedback_id'],
    'updated_at desc, _loaded_at desc, _partition_date desc, _source_file desc, _row_in_file desc') }},

renamed as (

    select
        feedback_id,
        source_system,
        source_customer_id,
        source_system || ':' || source_customer_id as account_key,
        feedback_type,
        order_id,
        score,
        text as feedback_text,
        language,
        channel,
        status,
        created_at,
        first_response_at,
        resolved_at,
        updated_at,
        _loaded_at as loaded_at

    from versions
    where version_rank <= 1  -- `<= 1`: see stg_crm__orders

)

select * from renamed
