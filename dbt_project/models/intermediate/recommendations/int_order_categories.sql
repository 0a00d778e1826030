-- One row per completed sale and product category in it, with the number and the cost of goods of
-- the sale's lines in that category, as of the run date, over the whole history: the baskets every
-- recommendation mart reads by category (macro recs_category_lines), the lines
-- int_customer_preferences weighs categories by and the costs customer_4c adds up, computed once
-- per run. The whole history, not just the longest window, so that
-- replays of recommendation_evaluation for earlier window ends or longer windows
-- (loyalist/recommend_eval.py) read complete baskets from the same table.
--
-- Incremental (macros/order_categories.sql): a run recomputes the sales whose transactions row a
-- later run wrote (transactions.changed_at), or every sale after a catalogue load, and a post-hook
-- deletes the rows whose sale's row has changed or left since. Spark's Parquet tables cannot
-- delete rows: there the table is rebuilt every run.

{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    unique_key='order_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    post_hook="{{ delete_stale_order_categories() }}"
) }}

select
    order_id,
    customer_id,
    order_date,
    item as category,
    -- what the row was built from: the sale's transactions row and the catalogue load
    cast(transaction_changed_at as {{ type_timestamptz() }}) as transaction_changed_at,
    cast(({{ catalogue_loaded_at() }}) as {{ type_timestamptz() }}) as products_loaded_at,
    -- last: a table built before these columns existed gets them appended (and a run of every sale)
    cast(lines as integer) as lines,
    cast(cost_of_goods as decimal(18, 2)) as cost_of_goods
from ({{ recs_basket_lines(as_of_date(), 'products.category', order_categories_changed_after()) }}) as lines
