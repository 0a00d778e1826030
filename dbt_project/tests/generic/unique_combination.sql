{#- A compound key: no two rows share the values of all `combination_of_columns` (no dbt_utils here). -#}
{% test unique_combination(model, combination_of_columns) %}

{%- set columns = combination_of_columns | join(', ') %}

select {{ columns }}, count(*) as duplicate_rows
from {{ model }}
group by {{ columns }}
having count(*) > 1

{% endtest %}
