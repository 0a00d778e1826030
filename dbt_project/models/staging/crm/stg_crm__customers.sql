-- One row per source account: its latest profile as of the run date, with normalised identity keys.

with

source as {{ not_materialized() }} (

    select * from {{ source('raw', 'customers') }}
    -- A profile version is an event (updated_at): later versions are not known yet as of the run date.
    where {{ as_of_filter('updated_at') }}

),

-- latest change wins; ties (same version re-sent) go to the latest load
{{ ranked_versions('source', ['source_system', 'source_customer_id'],
    'updated_at desc, _loaded_at desc, _partition_date desc, _source_file desc, _row_in_file desc') }},

renamed as (

    select
        source_system || ':' || source_customer_id as account_key,
        source_system,
        source_customer_id,

        -- identity keys: raw as sent, plus the normalised forms used for matching
        email as email_raw,
        nullif(lower(trim(email)), '') as email_normalized,
        phone as phone_raw,
        {{ normalize_phone('phone') }} as phone_e164,
        nullif(trim(loyalty_card_no), '') as loyalty_card_no,
        nullif(trim(wechat_id), '') as wechat_id,

        -- profile
        full_name,
        birth_date,
        gender,
        city,
        city_tier,
        income_band,
        education,
        signup_channel,

        created_at,
        updated_at,
        _loaded_at as loaded_at

    from versions
    where version_rank <= 1  -- `<= 1`: see stg_crm__orders

)

select * from renamed
