-- Accounts that share an identity key belong to the same customer: identity resolution is
-- transitive and complete. On Spark this is also the check that the bounded label propagation
-- (macros/identity.sql) ran enough rounds.
select
    edges.account_key_a,
    edges.account_key_b,
    account_a.customer_id as customer_id_a,
    account_b.customer_id as customer_id_b
from {{ ref('int_customer_identity_edges') }} as edges
inner join {{ ref('int_customer_accounts_resolved') }} as account_a
    on edges.account_key_a = account_a.account_key
inner join {{ ref('int_customer_accounts_resolved') }} as account_b
    on edges.account_key_b = account_b.account_key
where account_a.customer_id <> account_b.customer_id
