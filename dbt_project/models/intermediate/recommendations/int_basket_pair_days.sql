-- One row per day, item level and pair of items bought in the same completed sale that day, over the
-- whole history up to the run date: the counts the association rules of any window add up
-- (macro recs_association_rules), so that a daily run recounts a day's baskets instead of a
-- window's. An item paired with itself counts the day's baskets holding it.
--
-- Incremental (macros/basket_pairs.sql): a run recounts the days whose baskets may have changed
-- since their rows were counted (by a fingerprint of the day's transactions), or every day after a
-- catalogue load; a post-hook deletes the days that no longer have such a basket. Spark's Parquet
-- tables cannot delete rows: there the table is rebuilt every run.

{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    unique_key='order_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{{ delete_stale_basket_pair_days() }}"
) }}

with

fingerprints as (

    {{ basket_day_fingerprints() }}

),
{%- if is_incremental() %}

days_to_count as (

    -- the days whose rows were counted from other transactions rows or another catalogue, or
    -- have no rows
    select fingerprints.order_date
    from fingerprints
    where not exists (
        select 1
        from {{ this }} as held
        where held.order_date = fingerprints.order_date
            and held.day_transactions = fingerprints.day_transactions
            and held.day_fingerprint = fingerprints.day_fingerprint
            and held.products_loaded_at = ({{ catalogue_loaded_at() }})
    )

),
{%- endif %}

sales as (

    -- the completed sales of the days this run counts
    select
        order_id,
        order_date
    from {{ ref('transactions') }}
    where transaction_type = 'sale'
        and status = 'completed'
        and order_date <= cast('{{ as_of_date() }}' as date)
        {%- if is_incremental() %}
        and order_date in (select order_date from days_to_count)
        {%- endif %}

),

product_lines as (

    -- each product of an order once
    select distinct
        order_items.order_id,
        order_items.product_id
    from {{ ref('stg_crm__order_items') }} as order_items
    inner join {{ ref('stg_crm__products') }} as products
        on order_items.product_id = products.product_id
    {%- if is_incremental() %}
    where order_items.order_id in (select order_id from sales)
    {%- endif %}

),

sale_products as (

    select
        sales.order_date,
        sales.order_id,
        product_lines.product_id
    from product_lines
    inner join sales
        on product_lines.order_id = sales.order_id

),

sale_categories as (

    -- each category of a sale once: int_order_categories' rows, which this run has brought up to date
    select
        order_date,
        order_id,
        category
    from {{ ref('int_order_categories') }}
    where order_date <= cast('{{ as_of_date() }}' as date)
        {%- if is_incremental() %}
        and order_date in (select order_date from days_to_count)
        {%- endif %}

),

pairs as (

    select
        'product' as item_level,
        antecedent.order_date,
        antecedent.product_id as antecedent_item,
        consequent.product_id as consequent_item,
        count(*) as baskets
    from sale_products as antecedent
    inner join sale_products as consequent
        on antecedent.order_id = consequent.order_id
    group by antecedent.order_date, antecedent.product_id, consequent.product_id

    union all

    select
        'category' as item_level,
        antecedent.order_date,
        antecedent.category as antecedent_item,
        consequent.category as consequent_item,
        count(*) as baskets
    from sale_categories as antecedent
    inner join sale_categories as consequent
        on antecedent.order_id = consequent.order_id
    group by antecedent.order_date, antecedent.category, consequent.category

),

day_baskets as (

    select 'product' as item_level, order_date, count(distinct order_id) as baskets
    from sale_products
    group by order_date

    union all

    select 'category' as item_level, order_date, count(distinct order_id) as baskets
    from sale_categories
    group by order_date

),

final as (

    -- type_varchar(), not dbt.type_string() (text on Postgres): the incremental runs compare column types
    select
        cast(pairs.item_level as {{ type_varchar() }}) as item_level,
        pairs.order_date,
        cast(pairs.antecedent_item as {{ type_varchar() }}) as antecedent_item,
        cast(pairs.consequent_item as {{ type_varchar() }}) as consequent_item,
        cast(pairs.baskets as integer) as baskets,
        cast(day_baskets.baskets as integer) as day_baskets,
        -- what the day's rows were counted from: its transactions and the catalogue load
        cast(fingerprints.day_transactions as integer) as day_transactions,
        cast(fingerprints.day_fingerprint as decimal(38, 0)) as day_fingerprint,
        cast(({{ catalogue_loaded_at() }}) as {{ type_timestamptz() }}) as products_loaded_at
    from pairs
    inner join day_baskets
        on pairs.item_level = day_baskets.item_level
        and pairs.order_date = day_baskets.order_date
    inner join fingerprints
        on pairs.order_date = fingerprints.order_date

)

select * from final
