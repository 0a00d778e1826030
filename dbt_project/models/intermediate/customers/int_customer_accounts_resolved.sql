-- One row per source account with the customer_id of the person it belongs to.
--
-- Accounts linked by identity edges form connected components (transitively: A~B and B~C puts A,
-- B and C together). Each component is one customer, identified by its earliest-created account,
-- so the id does not change when later accounts join.

{#- A table, unlike the other intermediate models: the propagation runs once per build, not once per query. -#}
{{ config(materialized='table') }}

with

numbered_accounts as (

    select * from {{ ref('int_customer_accounts_ranked') }}

),

edges as (

    select * from {{ ref('int_customer_identity_edges') }}

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

    -- min-label propagation over the edges (macros/identity.sql): each account's smallest linked rank
    {{ min_label_components('numbered_accounts', 'directed_edges') }}

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
