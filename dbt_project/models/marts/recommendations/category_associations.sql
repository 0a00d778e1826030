-- One row per association rule antecedent category -> consequent category (same basket), as of the
-- run date, over the baskets of the last recs_basket_window_days days; thresholds are vars.

-- depends_on: {{ ref('int_basket_pair_days') }}

with

rules as (

    {{ recs_association_rules(as_of_date(), 'category') }}

),

final as (

    select
        cast(antecedent_item || ' -> ' || consequent_item as {{ dbt.type_string() }}) as rule_id,
        cast(antecedent_item as {{ dbt.type_string() }}) as antecedent_category,
        cast(consequent_item as {{ dbt.type_string() }}) as consequent_category,
        cast(pair_baskets as integer) as pair_baskets,
        cast(antecedent_baskets as integer) as antecedent_baskets,
        cast(consequent_baskets as integer) as consequent_baskets,
        cast(total_baskets as integer) as total_baskets,
        cast(support as {{ type_double() }}) as support,
        cast(confidence as {{ type_double() }}) as confidence,
        cast(lift as {{ type_double() }}) as lift,
        cast('{{ as_of_date() }}' as date) as as_of_date
    from rules

)

select * from final
