{#-
    The day a run is "as of" ('YYYY-MM-DD'). Event tables keep only events before the end of that day
    (UTC), so rerunning a past date reproduces that day's marts. Where it comes from, first found:
      1. the `as_of_date` var (`--vars '{as_of_date: 2025-12-31}'`, a string or a YAML date; unit tests
         override it);
      2. the environment variable LOYALIST_AS_OF_DATE (the pipeline sets it);
      3. otherwise 2100-01-01, i.e. everything.
    Why the pipeline does not pass --vars: dbt re-parses the whole project whenever --vars change
    (every day), about 7 s per run; an environment variable read only while executing is not part
    of the parse, so the saved parse is reused.
-#}
{% macro as_of_date() -%}
    {%- set from_var = var('as_of_date', '') | string | trim -%}
    {%- set from_env = env_var('LOYALIST_AS_OF_DATE', '') if execute else '' -%}
    {%- set raw_value = from_var or from_env or '2100-01-01' -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', raw_value) -%}
        {{ exceptions.raise_compiler_error("var as_of_date must be 'YYYY-MM-DD', got '" ~ raw_value ~ "'") }}
    {%- endif -%}
    {#- fromisoformat also rejects impossible days like 2025-02-30 -#}
    {{ return(modules.datetime.date.fromisoformat(raw_value).isoformat()) }}
{%- endmacro %}


{#- First instant after the as-of day, as a literal (computed here so the SQL stays portable). -#}
{% macro as_of_cutoff() -%}
    {%- set as_of = modules.datetime.date.fromisoformat(as_of_date()) -%}
    {%- set next_day = as_of + modules.datetime.timedelta(days=1) -%}
    cast('{{ next_day.isoformat() }} 00:00:00+00' as {{ type_timestamptz() }})
{%- endmacro %}


{#- The one place the as-of rule lives: `where {{ as_of_filter('ordered_at') }}`. -#}
{% macro as_of_filter(event_time_column) -%}
    {{ event_time_column }} < {{ as_of_cutoff() }}
{%- endmacro %}
