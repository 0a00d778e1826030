{#- Dialect differences live here, behind adapter.dispatch; the default is standard SQL. -#}

{#- Timestamp with time zone: dbt.type_timestamp() is the zone-less type, which we never want. -#}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'loyalist')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamp with time zone
{%- endmacro %}

{#- Spark's TIMESTAMP is an instant shown in the session time zone (UTC: profiles.yml), like timestamptz. -#}
{% macro spark__type_timestamptz() -%}
    timestamp
{%- endmacro %}


{#-
    Variable-length string spelled `varchar`: the type the marts' contracts name. dbt.type_string()
    is `text` on Postgres, which an incremental model's on_schema_change check tells apart from
    varchar; Spark has no bare varchar (it wants a length) and calls it string.
-#}
{% macro type_varchar() -%}
    {{ return(adapter.dispatch('type_varchar', 'loyalist')()) }}
{%- endmacro %}

{% macro default__type_varchar() -%}
    varchar
{%- endmacro %}

{% macro spark__type_varchar() -%}
    string
{%- endmacro %}


{#- The UTC calendar day of a timestamptz, independent of the session time zone. -#}
{% macro utc_date(timestamp_column) -%}
    {{ return(adapter.dispatch('utc_date', 'loyalist')(timestamp_column)) }}
{%- endmacro %}

{% macro default__utc_date(timestamp_column) -%}
    cast(({{ timestamp_column }} at time zone 'UTC') as date)
{%- endmacro %}

{#- Spark has no AT TIME ZONE; to_utc_timestamp shifts the instant to UTC wall-clock time first. -#}
{% macro spark__utc_date(timestamp_column) -%}
    cast(to_utc_timestamp({{ timestamp_column }}, current_timezone()) as date)
{%- endmacro %}


{#- Keep only the digits 0-9 of a string. DuckDB and Postgres share regexp_replace with a 'g' flag. -#}
{% macro strip_non_digits(string_expression) -%}
    {{ return(adapter.dispatch('strip_non_digits', 'loyalist')(string_expression)) }}
{%- endmacro %}

{% macro default__strip_non_digits(string_expression) -%}
    regexp_replace({{ string_expression }}, '[^0-9]', '', 'g')
{%- endmacro %}

{% macro snowflake__strip_non_digits(string_expression) -%}
    regexp_replace({{ string_expression }}, '[^0-9]', '')
{%- endmacro %}

{% macro spark__strip_non_digits(string_expression) -%}
    regexp_replace({{ string_expression }}, '[^0-9]', '')
{%- endmacro %}


{#-
    Post-hook of every model (dbt_project.yml). A table built in this run has no planner statistics
    on Postgres until autovacuum reaches it, and the models built on it in the same run then get
    row estimates of 1 and nested-loop plans that take minutes: analyze each table right after it
    is built. DuckDB keeps its statistics itself, so by default this renders nothing.
-#}
{% macro analyze_if_table() -%}
    {{ return(adapter.dispatch('analyze_if_table', 'loyalist')()) }}
{%- endmacro %}

{% macro default__analyze_if_table() -%}
{%- endmacro %}

{% macro postgres__analyze_if_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
