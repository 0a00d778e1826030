-- Pairs of source accounts that share an identity key (deterministic matching rules).

{#- A table: the label propagation reads it once per round on Spark (macros/identity.sql). -#}
{{ config(materialized='table') }}

{%- set max_accounts_per_key = var('identity_max_accounts_per_key') %}

with

accounts as (

    select * from {{ ref('stg_crm__customers') }}

),

identity_keys as (

    select account_key, 'email' as match_rule, email_normalized as key_value
    from accounts
    where email_normalized is not null

    union all

    select account_key, 'phone' as match_rule, phone_e164 as key_value
    from accounts
    where phone_e164 is not null

    union all

    select account_key, 'loyalty_card' as match_rule, loyalty_card_no as key_value
    from accounts
    where loyalty_card_no is not null

    union all

    select account_key, 'wechat_id' as match_rule, wechat_id as key_value
    from accounts
    where wechat_id is not null

),

usable_keys as (

    -- A key on more than a handful of accounts is a placeholder or shared (a shop's phone, a
    -- test email), not a person: ignore it rather than merge everyone who typed it.
    select
        match_rule,
        key_value
    from identity_keys
    group by match_rule, key_value
    having count(*) between 2 and {{ max_accounts_per_key }}

),

pairs as (

    select distinct
        left_side.account_key as account_key_a,
        right_side.account_key as account_key_b,
        left_side.match_rule
    from identity_keys as left_side
    inner join usable_keys
        on left_side.match_rule = usable_keys.match_rule
        and left_side.key_value = usable_keys.key_value
    inner join identity_keys as right_side
        on left_side.match_rule = right_side.match_rule
        and left_side.key_value = right_side.key_value
        -- each unordered pair once
        and left_side.account_key < right_side.account_key

),

final as (

    select
        account_key_a || '|' || account_key_b || '|' || match_rule as edge_id,
        account_key_a,
        account_key_b,
        match_rule
    from pairs

)

select * from final
