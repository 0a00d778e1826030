-- Customers moving between lifecycle stages, per month (from customer_lifecycle_history).

with

history as (

    select * from {{ ref('customer_lifecycle_history') }}
    where valid_from <= cast('{{ as_of_date() }}' as date)

),

sequenced as (

    select
        customer_id,
        lifecycle_stage,
        valid_from,
        lag(lifecycle_stage) over (partition by customer_id order by valid_from) as previous_stage,
        lag(valid_to) over (partition by customer_id order by valid_from) as previous_valid_to
    from history

),

transitions as (

    -- a transition is a period that starts the day the customer's previous period ends (a customer
    -- who disappeared and came back is not counted as moving between stages)
    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'valid_from') }} as date) as transition_month,
        previous_stage as from_stage,
        lifecycle_stage as to_stage
    from sequenced
    where previous_stage is not null
        and previous_valid_to = valid_from

),

final as (

    select
        transition_month as month,
        cast(from_stage as {{ dbt.type_string() }}) as from_stage,
        cast(to_stage as {{ dbt.type_string() }}) as to_stage,
        cast(count(distinct customer_id) as integer) as customers,
        cast(count(*) as integer) as transitions
    from transitions
    group by transition_month, from_stage, to_stage

)

select * from final
