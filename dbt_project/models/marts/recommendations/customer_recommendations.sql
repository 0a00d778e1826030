-- Next-best categories: one row per customer and rank (1 = best), up to recs_top_k, as of the run
-- date. Scoring and exclusions: macro recs_customer_recommendations (docs/recommendations.md), with
-- the association rules that category_associations mined for the same day.

-- depends_on: {{ ref('int_order_categories') }}, {{ ref('int_basket_pair_days') }}

with

recommendations as (

    {{ recs_customer_recommendations(as_of_date(), ref('int_customer_profiles'), ref('category_associations')) }}

),

final as (

    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(recommendation_rank as integer) as recommendation_rank,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(score as {{ type_double() }}) as score,
        -- score 0: nothing in the customer's history points at it; it is there for its popularity
        cast(case when score > 0 then 'history' else 'popularity' end as {{ dbt.type_string() }}) as basis,
        cast('{{ as_of_date() }}' as date) as as_of_date
    from recommendations

)

select * from final
