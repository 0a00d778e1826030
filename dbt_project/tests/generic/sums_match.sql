{#-
    Reconciliation: sum(column_name) of `model` per `group_by` equals sum(compare_expression) of
    `compare_model` per `compare_group_by`, within `tolerance`. A group present on only one side
    counts as 0 on the other (null keys match each other). Returns the groups that differ. Use
    group_by="'all'" (on both sides) for a grand total; `model_filter` / `compare_filter` restrict
    each side.
-#}
{% test sums_match(model, column_name, group_by, compare_model, compare_expression, compare_group_by,
                   model_filter='1 = 1', compare_filter='1 = 1', tolerance=0.005) %}

with

model_side as (
    select coalesce(cast({{ group_by }} as {{ dbt.type_string() }}), '(null)') as group_key,
        sum({{ column_name }}) as total
    from {{ model }}
    where {{ model_filter }}
    group by 1  -- by position: Postgres rejects grouping by a literal like 'all'
),

compare_side as (
    select coalesce(cast({{ compare_group_by }} as {{ dbt.type_string() }}), '(null)') as group_key,
        sum({{ compare_expression }}) as total
    from {{ compare_model }}
    where {{ compare_filter }}
    group by 1
)

select
    coalesce(model_side.group_key, compare_side.group_key) as group_key,
    model_side.total as model_total,
    compare_side.total as compare_total
from model_side
full outer join compare_side
    on model_side.group_key = compare_side.group_key
where abs(coalesce(model_side.total, 0) - coalesce(compare_side.total, 0)) > {{ tolerance }}

{% endtest %}
