-- Every source account, with a profile or seen only in events, numbered by (first seen, account key).
--
-- The numbers (account_rank) are the labels identity resolution propagates
-- (int_customer_accounts_resolved): integers are cheap to compare, and the smallest one of a
-- component is its earliest-created account, so the customer id does not change when later
-- accounts join.

{#- A table: the label propagation reads it once per round on Spark (macros/identity.sql). -#}
{{ config(materialized='table') }}

with

profiles as (

    select * from {{ ref('stg_crm__customers') }}

),

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

feedback as (

    select * from {{ ref('stg_crm__feedback') }}

),

consent_events as (

    select * from {{ ref('stg_crm__consent_events') }}

),

-- Accounts seen only in events (profile not sent, quarantined or later than the run date) still
-- belong to someone: they become their own component, so no transaction is ever dropped.
event_accounts as (

    select account_key, source_system, source_customer_id, ordered_at as seen_at from orders
    union all
    select account_key, source_system, source_customer_id, created_at as seen_at from feedback
    union all
    select account_key, source_system, source_customer_id, event_at as seen_at from consent_events

),

profile_less_accounts as (

    select
        event_accounts.account_key,
        event_accounts.source_system,
        event_accounts.source_customer_id,
        min(event_accounts.seen_at) as first_seen_at
    from event_accounts
    left join profiles
        on event_accounts.account_key = profiles.account_key
    where profiles.account_key is null
    group by
        event_accounts.account_key,
        event_accounts.source_system,
        event_accounts.source_customer_id

),

accounts as (

    select
        account_key,
        source_system,
        source_customer_id,
        created_at as first_seen_at,
        true as has_profile
    from profiles

    union all

    select
        account_key,
        source_system,
        source_customer_id,
        first_seen_at,
        false as has_profile
    from profile_less_accounts

),

final as (

    -- Integer labels ordered by (creation time, account key)
    select
        account_key,
        source_system,
        source_customer_id,
        first_seen_at,
        has_profile,
        row_number() over (order by first_seen_at, account_key) as account_rank
    from accounts

)

select * from final
