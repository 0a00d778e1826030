-- One row per resolved person: the profile from their accounts, with age and birthday as of the run date.

{%- set as_of = modules.datetime.date.fromisoformat(as_of_date()) %}

with

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

profiles as (

    select * from {{ ref('stg_crm__customers') }}

),

age_bands as (

    select * from {{ ref('age_bands') }}

),

customer_accounts as (

    select
        accounts.customer_id,
        accounts.account_key,
        accounts.source_system,
        accounts.first_seen_at,
        profiles.account_key as profile_account_key,
        profiles.updated_at,
        profiles.full_name,
        profiles.gender,
        profiles.birth_date,
        profiles.city,
        profiles.city_tier,
        profiles.income_band,
        profiles.education,
        profiles.signup_channel,
        profiles.email_normalized,
        profiles.phone_e164,

        row_number() over (
            partition by accounts.customer_id
            -- accounts without a profile last: their demographics are all null
            order by profiles.updated_at desc nulls last, accounts.account_key
        ) as latest_profile_rank,

        row_number() over (
            partition by accounts.customer_id
            order by
                case when profiles.account_key is null then 1 else 0 end,
                accounts.first_seen_at,
                accounts.account_key
        ) as earliest_profile_rank,

        -- contact keys and birth date: the most recently updated profile that has one (many
        -- profiles leave the birth date empty while another account of the same person has it)
        row_number() over (
            partition by accounts.customer_id
            order by
                case when profiles.email_normalized is null then 1 else 0 end,
                profiles.updated_at desc nulls last,
                accounts.account_key
        ) as email_rank,

        row_number() over (
            partition by accounts.customer_id
            order by
                case when profiles.phone_e164 is null then 1 else 0 end,
                profiles.updated_at desc nulls last,
                accounts.account_key
        ) as phone_rank,

        row_number() over (
            partition by accounts.customer_id
            order by
                case when profiles.birth_date is null then 1 else 0 end,
                profiles.updated_at desc nulls last,
                accounts.account_key
        ) as birth_date_rank

    from accounts
    left join profiles
        on accounts.account_key = profiles.account_key

),

customer_profiles as (

    -- one pass, no self-joins: each field comes from the account ranked first for it
    select
        customer_id,
        count(*) as account_count,
        min(first_seen_at) as first_seen_at,
        max(case when latest_profile_rank = 1 then full_name end) as full_name,
        max(case when latest_profile_rank = 1 then gender end) as gender,
        max(case when birth_date_rank = 1 then birth_date end) as birth_date,
        max(case when latest_profile_rank = 1 then city end) as city,
        max(case when latest_profile_rank = 1 then city_tier end) as city_tier,
        max(case when latest_profile_rank = 1 then income_band end) as income_band,
        max(case when latest_profile_rank = 1 then education end) as education,
        max(case when earliest_profile_rank = 1 then signup_channel end) as signup_channel,
        max(case when email_rank = 1 then email_normalized end) as email_normalized,
        max(case when phone_rank = 1 then phone_e164 end) as phone_e164
    from customer_accounts
    group by customer_id

),

customer_systems as (

    select distinct
        customer_id,
        source_system
    from customer_accounts

),

system_lists as (

    select
        customer_id,
        {{ dbt.listagg('source_system', "','", 'order by source_system') }} as source_systems
    from customer_systems
    group by customer_id

),

joined as (

    select
        customer_profiles.customer_id,
        customer_profiles.full_name,
        customer_profiles.gender,
        customer_profiles.birth_date,
        customer_profiles.city,
        customer_profiles.city_tier,
        customer_profiles.income_band,
        customer_profiles.education,
        customer_profiles.signup_channel,
        customer_profiles.first_seen_at,
        customer_profiles.account_count,
        system_lists.source_systems,
        customer_profiles.email_normalized,
        customer_profiles.phone_e164
    from customer_profiles
    inner join system_lists
        on customer_profiles.customer_id = system_lists.customer_id

),

with_age as (

    select
        *,
        cast(extract(month from birth_date) as integer) as birth_month,
        cast(extract(day from birth_date) as integer) as birth_day,
        -- completed years on the as-of date: one less while this year's birthday is still ahead
        -- (a 29 February birthday counts from 1 March in other years)
        {{ as_of.year }} - cast(extract(year from birth_date) as integer)
        - case
            when cast(extract(month from birth_date) as integer) * 100
                + cast(extract(day from birth_date) as integer) > {{ as_of.month * 100 + as_of.day }}
                then 1
            else 0
        end as age
    from joined

),

final as (

    select
        with_age.customer_id,
        with_age.full_name,
        with_age.gender,
        with_age.birth_date,
        with_age.city,
        with_age.city_tier,
        with_age.income_band,
        with_age.education,
        with_age.signup_channel,
        with_age.first_seen_at,
        with_age.account_count,
        with_age.source_systems,
        with_age.email_normalized,
        with_age.phone_e164,
        with_age.age,
        age_bands.age_band,
        lpad(cast(with_age.birth_month as {{ dbt.type_string() }}), 2, '0')
        || '-' || lpad(cast(with_age.birth_day as {{ dbt.type_string() }}), 2, '0') as birthday,
        with_age.birth_month
    from with_age
    left join age_bands
        on with_age.age between age_bands.min_age and age_bands.max_age

)

select * from final
