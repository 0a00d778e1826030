-- One row per source account with the customer_id of the person it belongs to.
--
-- Accounts linked by identity edges form connected components (transitively: A~B and B~C puts A,
-- B and C together). Each component is one customer, identified by its earliest-created account,
-- so the id does not change when later accounts join.

{#- A table, unlike the other intermediate models: the recursion runs once per build, not once per query. -#}
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

edges as (

    select * from {{ ref('int_customer_identity_edges') }}

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

numbered_accounts as (

    -- Integer labels ordered by (creation time, account key): the smallest label of a component is
    -- its earliest-created account, and integers are cheap to propagate.
    select
        *,
        row_number() over (order by first_seen_at, account_key) as account_rank
    from accounts

),

ranked_edges as (

    select
        account_a.account_rank as rank_a,
        account_b.account_rank as rank_b
    from edges
    inner join numbered_accounts as account_a
        on edges.account_key_a = account_a.account_key
    inner join numbered_accounts as account_b
        on edges.account_key_b = account_b.account_key

),

directed_edges as (

    -- both directions: labels must be able to flow either way along an edge
    select rank_a as from_rank, rank_b as to_rank from ranked_edges
    union
    select rank_b as from_rank, rank_a as to_rank from ranked_edges

),

components as (

    -- Min-label propagation. Every account starts with its own label and passes labels to its
    -- neighbours, but only labels smaller than the neighbour's own, so the component minimum
    -- reaches everyone while most useless pairs are never made. `union` (not `union all`) drops
    -- pairs already found, which is what ends the recursion: it is bounded by the number of
    -- (account, smaller account in the same component) pairs.
    -- The recursive CTE sits in a subquery so that dbt can still prepend its own CTEs
    -- (unit-test fixtures, ephemeral models) to a plain top-level `with`.
    select
        account_rank,
        min(label) as component_rank
    from (
        with recursive propagation (account_rank, label) as (

            select account_rank, account_rank as label
            from numbered_accounts

            union

            select
                directed_edges.to_rank as account_rank,
                propagation.label
            from propagation
            inner join directed_edges
                on propagation.account_rank = directed_edges.from_rank
            where propagation.label < directed_edges.to_rank

        )

        select account_rank, label from propagation
    ) as labels
    group by account_rank

),

final as (

    select
        numbered_accounts.account_key,
        numbered_accounts.source_system,
        numbered_accounts.source_customer_id,
        'C' || left({{ dbt.hash('root_account.account_key') }}, 16) as customer_id,
        root_account.account_key as root_account_key,
        numbered_accounts.has_profile,
        numbered_accounts.first_seen_at
    from numbered_accounts
    inner join components
        on numbered_accounts.account_rank = components.account_rank
    inner join numbered_accounts as root_account
        on components.component_rank = root_account.account_rank

)

select * from final
