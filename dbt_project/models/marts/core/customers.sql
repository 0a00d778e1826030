-- One row per resolved person: profile from their accounts, order metrics from their transactions.

with

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

profiles as (

    select * from {{ ref('stg_crm__customers') }}

),

transactions as (

    select * from {{ ref('transactions') }}

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

        -- contact keys: the most recently updated profile that has one
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
        ) as phone_rank

    from accounts
    left join profiles
        on accounts.account_key = profiles.account_key

),

account_summary as (

    select
        customer_id,
        count(*) as account_count,
        min(first_seen_at) as first_seen_at
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

order_summary as (

    select
        customer_id,
        -- a completed sale is an order; cancelled sales never happened for revenue
        sum(case when transaction_type = 'sale' and status = 'completed' then 1 else 0 end) as orders_count,
        min(case when transaction_type = 'sale' and status = 'completed' then ordered_at end) as first_order_at,
        max(case when transaction_type = 'sale' and status = 'completed' then ordered_at end) as last_order_at,
        sum(case when transaction_type = 'sale' and status = 'completed' then net_amount else 0 end) as sales_amount,
        -- refunds are stored negative; reported here as a positive amount
        -sum(case when transaction_type = 'refund' and status = 'completed' then net_amount else 0 end) as refunds_amount
    from transactions
    group by customer_id

),

final as (

    select
        cast(summary.customer_id as {{ dbt.type_string() }}) as customer_id,

        cast(latest.full_name as {{ dbt.type_string() }}) as full_name,
        cast(latest.gender as {{ dbt.type_string() }}) as gender,
        cast(latest.birth_date as date) as birth_date,
        cast(latest.city as {{ dbt.type_string() }}) as city,
        cast(latest.city_tier as integer) as city_tier,
        cast(latest.income_band as {{ dbt.type_string() }}) as income_band,
        cast(latest.education as {{ dbt.type_string() }}) as education,

        cast(earliest.signup_channel as {{ dbt.type_string() }}) as signup_channel,
        cast(summary.first_seen_at as {{ type_timestamptz() }}) as first_seen_at,
        cast(summary.account_count as integer) as account_count,
        cast(system_lists.source_systems as {{ dbt.type_string() }}) as source_systems,
        cast(email.email_normalized as {{ dbt.type_string() }}) as email_normalized,
        cast(phone.phone_e164 as {{ dbt.type_string() }}) as phone_e164,

        cast(order_summary.first_order_at as {{ type_timestamptz() }}) as first_order_at,
        cast(order_summary.last_order_at as {{ type_timestamptz() }}) as last_order_at,
        cast(coalesce(order_summary.orders_count, 0) as integer) as orders_count,
        cast(
            coalesce(order_summary.sales_amount, 0) - coalesce(order_summary.refunds_amount, 0)
            as decimal(18, 2)
        ) as revenue,
        cast(coalesce(order_summary.refunds_amount, 0) as decimal(18, 2)) as refunds_amount,
        cast(
            (order_summary.sales_amount - order_summary.refunds_amount)
            / nullif(order_summary.orders_count, 0)
            as decimal(18, 2)
        ) as average_order_value,
        coalesce(order_summary.orders_count, 0) = 0 as is_prospect,
        cast('{{ as_of_date() }}' as date) as as_of_date

    from account_summary as summary
    inner join customer_accounts as latest
        on summary.customer_id = latest.customer_id
        and latest.latest_profile_rank = 1
    inner join customer_accounts as earliest
        on summary.customer_id = earliest.customer_id
        and earliest.earliest_profile_rank = 1
    inner join customer_accounts as email
        on summary.customer_id = email.customer_id
        and email.email_rank = 1
    inner join customer_accounts as phone
        on summary.customer_id = phone.customer_id
        and phone.phone_rank = 1
    inner join system_lists
        on summary.customer_id = system_lists.customer_id
    left join order_summary
        on summary.customer_id = order_summary.customer_id

)

select * from final
