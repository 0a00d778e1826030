-- One row per completed sale and product category in it, as of the run date, over the whole
-- history: the baskets every recommendation mart reads by category (macro recs_basket_items),
-- computed once per run. The whole history, not just the longest window, so that replays of
-- recommendation_evaluation for earlier window ends or longer windows (loyalist/recommend_eval.py)
-- read complete baskets from the same table.

select
    order_id,
    customer_id,
    order_date,
    item as category
from ({{ recs_basket_lines(as_of_date(), none, 'products.category') }}) as lines
