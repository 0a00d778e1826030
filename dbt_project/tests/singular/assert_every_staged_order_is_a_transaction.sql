-- Never drop a transaction: every staged order must reach marts.transactions.
select orders.order_id
from {{ ref('stg_crm__orders') }} as orders
left join {{ ref('transactions') }} as transactions
    on orders.order_id = transactions.order_id
where transactions.order_id is null
