-- One row per customer with consent events: current marketing consent per channel.
--
-- Each account's state for a channel is its latest event. A person with several accounts consents
-- to a channel only if at least one account granted it and no account's latest event is an opt-out:
-- an opt-out on any account wins over grants on the others (conservative, as privacy law expects).

with

consent_events as (

    select * from {{ ref('stg_crm__consent_events') }}

),

accounts as (

    select * from {{ ref('int_customer_accounts_resolved') }}

),

account_states as (

    select
        accounts.customer_id,
        consent_events.account_key,
        consent_events.consent_channel,
        consent_events.granted,
        consent_events.event_at,
        row_number() over (
            partition by consent_events.account_key, consent_events.consent_channel
            -- an opt-out and a grant at the same instant: the opt-out wins
            order by
                consent_events.event_at desc,
                case when consent_events.granted then 1 else 0 end
        ) as recency_rank
    from consent_events
    inner join accounts
        on consent_events.account_key = accounts.account_key

),

channel_states as (

    select
        customer_id,
        consent_channel,
        min(case when granted then 1 else 0 end) = 1 as is_granted,
        max(event_at) as updated_at
    from account_states
    where recency_rank = 1
    group by customer_id, consent_channel

),

final as (

    select
        customer_id,
        -- no event for a channel: never asked, so no consent
        coalesce(max(case when consent_channel = 'email' and is_granted then 1 end), 0) = 1 as consent_email,
        coalesce(max(case when consent_channel = 'sms' and is_granted then 1 end), 0) = 1 as consent_sms,
        coalesce(max(case when consent_channel = 'ads' and is_granted then 1 end), 0) = 1 as consent_ads,
        max(updated_at) as consent_updated_at
    from channel_states
    group by customer_id

)

select * from final
