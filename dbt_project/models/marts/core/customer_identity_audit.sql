-- One row per source account: the customer it was resolved to, and which matching rules linked it.

with

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

edges as (

    select * from {{ ref('int_customer_identity_edges') }}

),

account_edges as (

    -- each edge seen from both of its ends
    select account_key_a as account_key, account_key_b as linked_account_key, match_rule from edges
    union all
    select account_key_b as account_key, account_key_a as linked_account_key, match_rule from edges

),

account_rules as (

    select distinct
        account_key,
        match_rule
    from account_edges

),

rule_lists as (

    select
        account_key,
        {{ dbt.listagg('match_rule', "','", 'order by match_rule') }} as matched_by
    from account_rules
    group by account_key

),

link_counts as (

    select
        account_key,
        count(distinct linked_account_key) as linked_account_count
    from account_edges
    group by account_key

),

customer_sizes as (

    select
        customer_id,
        count(*) as customer_account_count
    from accounts
    group by customer_id

),

final as (

    select
        cast(accounts.account_key as {{ dbt.type_string() }}) as account_key,
        cast(accounts.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(accounts.source_system as {{ dbt.type_string() }}) as source_system,
        cast(accounts.source_customer_id as {{ dbt.type_string() }}) as source_customer_id,
        -- an account no rule links to another one is a customer of its own
        cast(coalesce(rule_lists.matched_by, 'self') as {{ dbt.type_string() }}) as matched_by,
        cast(coalesce(link_counts.linked_account_count, 0) as integer) as linked_account_count,
        cast(customer_sizes.customer_account_count as integer) as customer_account_count,
        cast(accounts.root_account_key as {{ dbt.type_string() }}) as root_account_key,
        accounts.account_key = accounts.root_account_key as is_root_account,
        accounts.has_profile,
        cast(accounts.first_seen_at as {{ type_timestamptz() }}) as first_seen_at,
        cast('{{ as_of_date() }}' as date) as as_of_date
    from accounts
    left join rule_lists
        on accounts.account_key = rule_lists.account_key
    left join link_counts
        on accounts.account_key = link_counts.account_key
    inner join customer_sizes
        on accounts.customer_id = customer_sizes.customer_id

)

select * from final
