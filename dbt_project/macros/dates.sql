{#- Date arithmetic on top of dbt's cross-database macros (which return timestamps on some adapters). -#}

{#- `date_expression` plus `days` (an integer or an integer expression), as a date. -#}
{% macro add_days(date_expression, days) -%}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{%- endmacro %}


{#- Whole days from `start_date` to `end_date` (positive when end is later). -#}
{% macro days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}


{#- A date as an integer day number (days since 1970-01-01), e.g. to order a RANGE window frame. -#}
{% macro day_number(date_expression) -%}
    {{ dbt.datediff("cast('1970-01-01' as date)", date_expression, 'day') }}
{%- endmacro %}


{#- The as-of date shifted by `days` (negative for earlier), as a 'YYYY-MM-DD' string (compile time). -#}
{% macro as_of_date_plus(days) -%}
    {%- set as_of = modules.datetime.date.fromisoformat(as_of_date()) -%}
    {{ return((as_of + modules.datetime.timedelta(days=days | int)).isoformat()) }}
{%- endmacro %}


{#- Hours (fractional) from `start_ts` to `end_ts`, two timestamps with time zone. -#}
{% macro hours_between(start_ts, end_ts) -%}
    ({{ dbt.datediff(start_ts, end_ts, 'second') }} / 3600.0)
{%- endmacro %}
