-- Line items of the orders kept in stg_crm__orders, from the latest load of each order's lines
-- (base_crm__order_items). A table, not a view: many models read it, and each would repeat the join.

select
    items.order_item_id,
    items.order_id,
    items.line_no,
    items.product_id,
    items.quantity,
    items.unit_price,
    items.discount_amount,
    items.line_amount,
    items.loaded_at

from {{ ref('base_crm__order_items') }} as items
-- lines of quarantined, later-dated or unknown orders would have no order to belong to
inner join {{ ref('stg_crm__orders') }} as orders
    on items.order_id = orders.order_id
