{#-
    Category recommendations as of a cutoff day ('YYYY-MM-DD'). The marts call these with the run's
    as_of_date, and recommendation_evaluation calls the same macros with an earlier cutoff, so the
    offline evaluation scores exactly the logic that the daily mart publishes (one place for the
    rules; thresholds are vars in dbt_project.yml). Every event is filtered by order_date <= cutoff,
    so a cutoff in the past sees only what was known by then (identity resolution and order
    corrections are as known at the run date).
-#}

{#- One row per (completed sale, category) on or before `cutoff`, `window_days` days back at most. -#}
{% macro recs_category_lines(cutoff, window_days) -%}
    select distinct
        transactions.order_id,
        transactions.customer_id,
        transactions.order_date,
        products.category
    from {{ ref('transactions') }} as transactions
    inner join {{ ref('stg_crm__order_items') }} as order_items
        on transactions.order_id = order_items.order_id
    inner join {{ ref('stg_crm__products') }} as products
        on order_items.product_id = products.product_id
    where transactions.transaction_type = 'sale'
        and transactions.status = 'completed'
        and products.category is not null
        and transactions.order_date <= cast('{{ cutoff }}' as date)
        and transactions.order_date > {{ add_days("cast('" ~ cutoff ~ "' as date)", -(window_days | int)) }}
{%- endmacro %}


{#- (customer, category) pairs bought in the last recs_exclude_bought_within_days days: not recommended. -#}
{% macro recs_recently_bought(cutoff) -%}
    select distinct customer_id, category
    from ({{ recs_category_lines(cutoff, var('recs_exclude_bought_within_days')) }}) as lines
{%- endmacro %}


{#- Category popularity: baskets holding the category in the basket window (ties: category name). -#}
{% macro recs_category_popularity(cutoff) -%}
    select
        category,
        count(*) as baskets,
        row_number() over (order by count(*) desc, category) as popularity_rank
    from ({{ recs_category_lines(cutoff, var('recs_basket_window_days')) }}) as lines
    group by category
{%- endmacro %}


{#- Association rules antecedent -> consequent between categories within the same basket. -#}
{% macro recs_category_rules(cutoff) -%}
    with

    lines as (
        {{ recs_category_lines(cutoff, var('recs_basket_window_days')) }}
    ),

    basket_total as (
        select count(distinct order_id) as baskets from lines
    ),

    category_baskets as (
        select category, count(*) as baskets from lines group by category
    ),

    pair_baskets as (
        select
            antecedent.category as antecedent_category,
            consequent.category as consequent_category,
            count(*) as baskets
        from lines as antecedent
        inner join lines as consequent
            on antecedent.order_id = consequent.order_id
            and antecedent.category <> consequent.category
        group by antecedent.category, consequent.category
    ),

    measured as (
        select
            pair_baskets.antecedent_category,
            pair_baskets.consequent_category,
            pair_baskets.baskets as pair_baskets,
            antecedents.baskets as antecedent_baskets,
            consequents.baskets as consequent_baskets,
            basket_total.baskets as total_baskets,
            1.0 * pair_baskets.baskets / basket_total.baskets as support,
            1.0 * pair_baskets.baskets / antecedents.baskets as confidence,
            -- lift = confidence / P(consequent): how much the antecedent raises the consequent's odds
            1.0 * pair_baskets.baskets * basket_total.baskets
                / (antecedents.baskets * consequents.baskets) as lift
        from pair_baskets
        inner join category_baskets as antecedents
            on pair_baskets.antecedent_category = antecedents.category
        inner join category_baskets as consequents
            on pair_baskets.consequent_category = consequents.category
        cross join basket_total
    )

    select *
    from measured
    where support >= {{ var('recs_min_support') }}
        and confidence >= {{ var('recs_min_confidence') }}
        and lift > {{ var('recs_min_lift') }}
{%- endmacro %}


{#-
    Top recs_top_k categories per customer as of `cutoff`, skipping categories bought in the last
    recs_exclude_bought_within_days days. Score of a candidate category c for a customer:
        sum over the customer's categories a of  share(a) * lift(a -> c)      (kept rules only)
      + recs_repeat_weight * share(c)
    where share(x) is x's share of the customer's purchased categories (per basket) in the history
    window. Customers without history or without any matching rule get score 0, and the category
    popularity (then the name) breaks ties, which is the popularity fallback.
-#}
{% macro recs_customer_recommendations(cutoff, customers_relation) -%}
    with

    customers as (
        select customer_id from {{ customers_relation }}
    ),

    history as (
        {{ recs_category_lines(cutoff, var('recs_history_window_days')) }}
    ),

    rules as (
        {{ recs_category_rules(cutoff) }}
    ),

    popularity as (
        {{ recs_category_popularity(cutoff) }}
    ),

    category_counts as (
        select customer_id, category, count(*) as baskets, max(order_date) as last_bought_on
        from history
        group by customer_id, category
    ),

    shares as (
        select
            customer_id,
            category,
            last_bought_on,
            1.0 * baskets / sum(baskets) over (partition by customer_id) as share
        from category_counts
    ),

    association_scores as (
        select
            shares.customer_id,
            rules.consequent_category as category,
            sum(shares.share * rules.lift) as score
        from shares
        inner join rules
            on shares.category = rules.antecedent_category
        group by shares.customer_id, rules.consequent_category
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
