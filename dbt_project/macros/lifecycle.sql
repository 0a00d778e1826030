{#-
    The days a customer's lifecycle stage is computed for: the as-of date, and before it the month
    ends of the `lifecycle_backfill_months` months before it (for the first build of
    customer_lifecycle_history). Returned oldest first as 'YYYY-MM-DD' strings.
-#}
{% macro lifecycle_snapshot_dates() -%}
    {%- set as_of = modules.datetime.date.fromisoformat(as_of_date()) -%}
    {%- set one_day = modules.datetime.timedelta(days=1) -%}
    {%- set dates = [] -%}
    {%- set state = {'first_of_month': as_of.replace(day=1)} -%}
    {%- for _ in range(var('lifecycle_backfill_months') | int) -%}
        {%- set month_end = state['first_of_month'] - one_day -%}
        {%- do dates.insert(0, month_end.isoformat()) -%}
        {%- do state.update({'first_of_month': month_end.replace(day=1)}) -%}
    {%- endfor -%}
    {%- do dates.append(as_of.isoformat()) -%}
    {{ return(dates) }}
{%- endmacro %}


{#- Pre-hook of customer_lifecycle_history: a run for day D replaces what runs for D or later wrote. -#}
{% macro lifecycle_history_delete_from_as_of() -%}
    {{ delete_replaced_rows("valid_from >= cast('" ~ as_of_date() ~ "' as date)") }}
{%- endmacro %}
