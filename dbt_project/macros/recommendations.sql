{#-
    Category recommendations as of a cutoff day ('YYYY-MM-DD'). The marts call these with the run's
    as_of_date, and recommendation_evaluation calls the same macros with an earlier cutoff, so the
    offline evaluation scores exactly the logic that the daily mart publishes (one place for the
    rules; thresholds are vars in dbt_project.yml). Every event is filtered by order_date <= cutoff,
    so a cutoff in the past sees only what was known by then (identity resolution and order
    corrections are as known at the run date).
-#}

{#- The window of `window_days` days ending on `cutoff` ('YYYY-MM-DD'), as a condition on `column`. -#}
{% macro recs_in_window(column, cutoff, window_days) -%}
    {{ column }} <= cast('{{ cutoff }}' as date)
        and {{ column }} > {{ add_days("cast('" ~ cutoff ~ "' as date)", -(window_days | int)) }}
{%- endmacro %}


{#-
    One row per (completed sale, category) on or before `cutoff`, `window_days` days back at most,
    from int_order_categories, built once per run, so the recommendation marts do not each redo the
    distinct over every order line of the window (at 1M customers, the mart ran out of memory with
    3GB doing it four times in one query).
-#}
{% macro recs_category_lines(cutoff, window_days) -%}
    select order_id, customer_id, order_date, category
    from {{ ref('int_order_categories') }}
    where {{ recs_in_window('order_date', cutoff, window_days) }}
{%- endmacro %}


{#- One row per (completed sale, item) on or before the cutoff, from transactions, order lines and
    products, with the number of the sale's lines of that item (lines), their cost of goods
    (cost_of_goods: quantity x unit_cost; null when a line's product has no unit cost) and the sale's
    transactions.changed_at: int_order_categories' rows (item: the category). The lines are grouped
    by (order, item) before the sale's customer and day join in (they follow from the order): at 1M
    customers the whole history's category lines took 8.4 s instead of 11.7 s with the distinct over
    all four columns.
    `changed_after` (SQL, a timestamp): only the sales whose transactions row changed after it, with
    their lines alone read (int_order_categories' incremental runs). -#}
{% macro recs_basket_lines(cutoff, item, changed_after=none) -%}
    select
        transactions.order_id,
        transactions.customer_id,
        transactions.order_date,
        lines.item,
        lines.lines,
        lines.cost_of_goods,
        transactions.changed_at as transaction_changed_at
    from (
        select
            order_items.order_id,
            {{ item }} as item,
            count(*) as lines,
            case
                when count(*) = count(products.unit_cost) then sum(order_items.quantity * products.unit_cost)
            end as cost_of_goods
        from {{ ref('stg_crm__order_items') }} as order_items
        inner join {{ ref('stg_crm__products') }} as products
            on order_items.product_id = products.product_id
        where {{ item }} is not null
            {%- if changed_after is not none %}
            and order_items.order_id in (
                select changed.order_id
                from {{ ref('transactions') }} as changed
                where changed.changed_at > {{ changed_after }}
            )
            {%- endif %}
        group by order_items.order_id, {{ item }}
    ) as lines
    inner join {{ ref('transactions') }} as transactions
        on lines.order_id = transactions.order_id
    where transactions.transaction_type = 'sale'
        and transactions.status = 'completed'
        and transactions.order_date <= cast('{{ cutoff }}' as date)
        {%- if changed_after is not none %}
        and transactions.changed_at > {{ changed_after }}
        {%- endif %}
{%- endmacro %}


{#- (customer, category) pairs bought in the last recs_exclude_bought_within_days days: not recommended. -#}
{% macro recs_recently_bought(cutoff) -%}
    select distinct customer_id, category
    from ({{ recs_category_lines(cutoff, var('recs_exclude_bought_within_days')) }}) as lines
{%- endmacro %}


{#- Category popularity: baskets holding the category in the basket window (ties: category name),
    the window's sums of int_basket_pair_days (a category paired with itself: the baskets holding it). -#}
{% macro recs_category_popularity(cutoff) -%}
    select
        antecedent_item as category,
        sum(baskets) as baskets,
        row_number() over (order by sum(baskets) desc, antecedent_item) as popularity_rank
    from {{ ref('int_basket_pair_days') }}
    where item_level = 'category'
        and antecedent_item = consequent_item
        and {{ recs_in_window('order_date', cutoff, var('recs_basket_window_days')) }}
    group by antecedent_item
{%- endmacro %}


{#-
    Association rules antecedent -> consequent between items (level 'category' or 'product') bought
    in the same basket, with the thresholds of that level (recs_min_* or recs_product_min_*), over
    the recs_basket_window_days days ending on `cutoff`: the sums of the window's days' counts in
    int_basket_pair_days (a basket has one day), which a daily run updates by the days that changed.
    At 1M customers the product rules took 11 s a day counting the window's baskets themselves.
-#}
{% macro recs_association_rules(cutoff, level) -%}
    {%- if level not in ('category', 'product') -%}
        {{ exceptions.raise_compiler_error("recs_association_rules: level must be 'category' or 'product', got " ~ level) }}
    {%- endif -%}
    {%- set prefix = 'recs_' if level == 'category' else 'recs_product_' %}
    with

    window_days as (
        select *
        from {{ ref('int_basket_pair_days') }}
        where item_level = '{{ level }}'
            and {{ recs_in_window('order_date', cutoff, var('recs_basket_window_days')) }}
    ),

    basket_total as (
        -- day_baskets is the same on every row of a day
        select coalesce(sum(day_baskets), 0) as baskets
        from (select distinct order_date, day_baskets from window_days) as days
    ),

    item_baskets as (
        -- an item paired with itself: the baskets holding it
        select antecedent_item as item, sum(baskets) as baskets
        from window_days
        where antecedent_item = consequent_item
        group by antecedent_item
    ),

    pair_baskets as (
        select antecedent_item, consequent_item, sum(baskets) as baskets
        from window_days
        where antecedent_item <> consequent_item
        group by antecedent_item, consequent_item
    ),

    measured as (
        select
            pair_baskets.antecedent_item,
            pair_baskets.consequent_item,
            pair_baskets.baskets as pair_baskets,
            antecedents.baskets as antecedent_baskets,
            consequents.baskets as consequent_baskets,
            basket_total.baskets as total_baskets,
            {{ as_fraction('pair_baskets.baskets') }} / basket_total.baskets as support,
            {{ as_fraction('pair_baskets.baskets') }} / antecedents.baskets as confidence,
            -- lift = confidence / P(consequent): how much the antecedent raises the consequent's odds
            {{ as_fraction('pair_baskets.baskets') }} * basket_total.baskets
                / (antecedents.baskets * consequents.baskets) as lift
        from pair_baskets
        inner join item_baskets as antecedents
            on pair_baskets.antecedent_item = antecedents.item
        inner join item_baskets as consequents
            on pair_baskets.consequent_item = consequents.item
        cross join basket_total
    )

    select *
    from measured
    where support >= {{ var(prefix ~ 'min_support') }}
        and confidence >= {{ var(prefix ~ 'min_confidence') }}
        and lift > {{ var(prefix ~ 'min_lift') }}
{%- endmacro %}


{#-
    Top recs_top_k categories per customer as of `cutoff`, skipping categories bought in the last
    recs_exclude_bought_within_days days. Score of a candidate category c for a customer:
        sum over the customer's categories a of  share(a) * lift(a -> c)      (kept rules only)
      + recs_repeat_weight * share(c)
    where share(x) is x's share of the customer's purchased categories (per basket) in the history
    window. Candidates are the categories sold in the basket window. Customers without history or
    without any matching rule get score 0, and the category popularity (then the name) breaks ties,
    which is the popularity fallback.

    `rules_relation`: a table of these rules for the same cutoff (category_associations, for the
    run's day) to read instead of mining them again; recommendation_evaluation's earlier cutoff has
    none, so it mines them here. At 1M customers, reading the mart's rules took customer_recommendations
    from 17.9 to 12.4 s (the same rows; benchmarks/findings.md).

    `few_customers`: true when `customers_relation` holds a part of the customers
    (recommendation_evaluation's evaluated ones): only their history is grouped (at 1M customers the
    evaluation took 9.1 s instead of 11.3 s). With every customer (the mart) the filter only adds a
    join, and the query ran out of memory with 3GB.
-#}
{% macro recs_customer_recommendations(cutoff, customers_relation, rules_relation=none, few_customers=false) -%}
    with

    customers as (
        select customer_id from {{ customers_relation }}
    ),

    history as (
        {{ recs_category_lines(cutoff, var('recs_history_window_days')) }}
        {%- if few_customers %}
            and customer_id in (select customer_id from customers)
        {%- endif %}
    ),

    rules as (
        {%- if rules_relation is none %}
        {{ recs_association_rules(cutoff, 'category') }}
        {%- else %}
        select antecedent_category as antecedent_item, consequent_category as consequent_item, lift
        from {{ rules_relation }}
        {%- endif %}
    ),

    popularity as (
        {{ recs_category_popularity(cutoff) }}
    ),

    -- materialized: the window in `shares` must not re-aggregate the history (macro materialized_cte)
    category_counts as {{ materialized_cte() }} (
        select customer_id, category, count(*) as baskets
        from history
        group by customer_id, category
    ),

    shares as (
        select
            customer_id,
            category,
            {{ as_fraction('baskets') }} / sum(baskets) over (partition by customer_id) as share
        from category_counts
    ),

    association_scores as (
        select
            shares.customer_id,
            rules.consequent_item as category,
            {{ exact_sum('shares.share * rules.lift') }} as score
        from shares
        inner join rules
            on shares.category = rules.antecedent_item
        group by shares.customer_id, rules.consequent_item
    ),

    recent as (
        {{ recs_recently_bought(cutoff) }}
    ),

    candidates as (
        select
            customers.customer_id,
            popularity.category,
            popularity.popularity_rank,
            coalesce(association_scores.score, 0)
                + {{ var('recs_repeat_weight') }} * coalesce(shares.share, 0) as score
        from customers
        cross join popularity
        left join shares
            on customers.customer_id = shares.customer_id
            and popularity.category = shares.category
        left join association_scores
            on customers.customer_id = association_scores.customer_id
            and popularity.category = association_scores.category
        left join recent
            on customers.customer_id = recent.customer_id
            and popularity.category = recent.category
        -- bought within the exclusion window: the customer has it already
        where recent.customer_id is null
    ),

    ranked as (
        select
            customer_id,
            category,
            score,
            popularity_rank,
            row_number() over (
                partition by customer_id
                order by score desc, popularity_rank
            ) as recommendation_rank
        from candidates
    )

    select *
    from ranked
    where recommendation_rank <= {{ var('recs_top_k') }}
{%- endmacro %}


{#- The popularity baseline: the most popular categories not bought in the exclusion window. -#}
{% macro recs_popularity_recommendations(cutoff, customers_relation) -%}
    with

    customers as (
        select customer_id from {{ customers_relation }}
    ),

    recent as (
        {{ recs_recently_bought(cutoff) }}
    ),

    popularity as (
        {{ recs_category_popularity(cutoff) }}
    ),

    ranked as (
        select
            customers.customer_id,
            popularity.category,
            row_number() over (
                partition by customers.customer_id
                order by popularity.popularity_rank
            ) as recommendation_rank
        from customers
        cross join popularity
        left join recent
            on customers.customer_id = recent.customer_id
            and popularity.category = recent.category
        where recent.customer_id is null
    )

    select *
    from ranked
    where recommendation_rank <= {{ var('recs_top_k') }}
{%- endmacro %}


{#- The day recommendation_evaluation recommends as of: recs_eval_window_days before the run's as-of day. -#}
{% macro recs_eval_cutoff() -%}
    {{ return(as_of_date_plus(-(var('recs_eval_window_days') | int))) }}
{%- endmacro %}
