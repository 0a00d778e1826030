-- Marketing consent changes (opt-in / opt-out per channel) up to the run date.

with

source as {{ not_materialized() }} (

    select * from {{ source('raw', 'consent_events') }}
    where {{ as_of_filter('event_at') }}

),

-- the same event may be re-sent in a later file: keep one copy, the latest loaded
{{ ranked_versions('source', ['source_system', 'source_customer_id', 'consent_channel', 'event_at'],
    '_loaded_at desc, _partition_date desc, _source_file desc, _row_in_file desc') }},

renamed as (

    select
        {{ dbt.hash(dbt.concat([
            'source_system', "'|'", 'source_customer_id', "'|'", 'consent_channel', "'|'",
            "cast(event_at as " ~ dbt.type_string() ~ ")",
        ])) }} as consent_event_id,
        source_system,
        source_customer_id,
        source_system || ':' || source_customer_id as account_key,
        consent_channel,
        granted,
        event_at,
        _loaded_at as loaded_at

    from versions
    where version_rank <= 1  -- `<= 1`: see stg_crm__orders

)

select * from renamed
