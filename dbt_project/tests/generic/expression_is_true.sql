{#- Rows where `expression` is not true fail (no dbt_utils here, so our own small version). -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
