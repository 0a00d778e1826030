-- After a run, the open periods of customer_lifecycle_history are exactly today's customers and
-- stages: one current row per customer in marts.customers, with its lifecycle_stage, and none for
-- customers that no longer exist.
with

current_rows as (

    select customer_id, lifecycle_stage, count(*) over (partition by customer_id) as current_rows
    from {{ ref('customer_lifecycle_history') }}
    where is_current

),

customers as (

    select customer_id, lifecycle_stage from {{ ref('customers') }}

)

select
    coalesce(customers.customer_id, current_rows.customer_id) as customer_id,
    customers.lifecycle_stage as customer_stage,
    current_rows.lifecycle_stage as history_stage
from customers
full outer join current_rows
    on customers.customer_id = current_rows.customer_id
where customers.customer_id is null
    or current_rows.customer_id is null
    or current_rows.current_rows <> 1
    or current_rows.lifecycle_stage <> customers.lifecycle_stage
