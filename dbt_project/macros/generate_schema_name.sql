{#-
    Use a model's custom schema (staging, intermediate, marts) as-is instead of dbt's default
    `<target_schema>_<custom>`: downstream tools and the ML code read `marts.customers`, whatever the
    target. Models without a custom schema land in the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
