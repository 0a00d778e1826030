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

{#- The earliest time an incremental model compares with: what a watermark of an empty table stands for. -#}
{% macro epoch_timestamptz() -%}
    cast('1970-01-01 00:00:00+00' as {{ type_timestamptz() }})
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


{#-
    8-byte float spelled `double precision` (the marts' contracts name it so): dbt.type_float() is the
    4-byte FLOAT on DuckDB, and Spark has no two-word `double precision` (it calls it double).
-#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'loyalist')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro spark__type_double() -%}
    double
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


{#-
    A number made ready for division (`{{ as_fraction('a') }} / b`), so that a / b is the fraction, not
    an integer division. DuckDB divides decimals in double precision and Postgres in exact numerics;
    Spark keeps decimals and caps their scale (a ratio of products keeps only 6 decimals, an average
    of a decimal(2,1) only 5), which shows in the marts' 6th decimal: use doubles there, as DuckDB does.
-#}
{% macro as_fraction(expression) -%}
    {{ return(adapter.dispatch('as_fraction', 'loyalist')(expression)) }}
{%- endmacro %}

{% macro default__as_fraction(expression) -%}
    1.0 * {{ expression }}
{%- endmacro %}

{% macro spark__as_fraction(expression) -%}
    cast({{ expression }} as double)
{%- endmacro %}


{#-
    `name as {{ not_materialized() }} (...)`: a CTE read in several places is inlined into each, not
    copied. DuckDB (and Postgres) materialize a CTE read more than once: a `select *` of a fact is
    then a copy of all its columns before the first read (`customer_4c` at 1M customers: 44 -> 31
    CPU s with the keyword). Other engines' SQL lacks the keyword; Spark inlines CTEs anyway.
-#}
{% macro not_materialized() -%}
    {{ return(adapter.dispatch('not_materialized', 'loyalist')()) }}
{%- endmacro %}

{% macro default__not_materialized() -%}
{%- endmacro %}

{% macro duckdb__not_materialized() -%}
    not materialized
{%- endmacro %}

{% macro postgres__not_materialized() -%}
    not materialized
{%- endmacro %}


{#-
    `name as {{ materialized_cte() }} (...)`: the CTE is computed once, whatever the plan does with its
    readers. DuckDB's optimizer may copy a CTE's subtree into a plan it rewrites: a window
    `sum(x) over (partition by k)` becomes an aggregate joined back to its input, and the input (an
    aggregate of 32M rows in customer_recommendations at 1M customers) was then computed twice.
    Spark lacks the keyword.
-#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'loyalist')()) }}
{%- endmacro %}

{% macro default__materialized_cte() -%}
{%- endmacro %}

{% macro duckdb__materialized_cte() -%}
    materialized
{%- endmacro %}

{% macro postgres__materialized_cte() -%}
    materialized
{%- endmacro %}


{#-
    sum(expression) of doubles, the same whatever order the rows arrive in. A sum of doubles depends
    on the order of its terms (in the last bits), and DuckDB's threads add them in varying order, so
    a rerun of the same day gave a different table (and could reorder near-ties ranked by the sum).
    Each term is rounded to a decimal with 9 places (a billionth of its unit, far below what any
    figure here shows), the decimals are added exactly, and the exact sum is returned as a double.
-#}
{% macro exact_sum(expression) -%}
    cast(sum(cast({{ expression }} as decimal(18, 9))) as {{ type_double() }})
{%- endmacro %}


{#-
    avg(expression) rounded to decimal(precision, scale) the way DuckDB does it: DuckDB averages in
    double precision and rounds that double half away from zero, so an average that is a tie in
    exact arithmetic (8.40 and 8.41 -> 8.405) but lies just below it in binary rounds down (8.40).
    Postgres' exact numeric average would give 8.41 and Spark's decimal average too; there the same
    double is computed (exact sum, then divided) and rounded half away from zero explicitly.
-#}
{% macro avg_to_decimal(expression, precision, scale) -%}
    {{ return(adapter.dispatch('avg_to_decimal', 'loyalist')(expression, precision, scale)) }}
{%- endmacro %}

{% macro default__avg_to_decimal(expression, precision, scale) -%}
    cast(avg({{ expression }}) as decimal({{ precision }}, {{ scale }}))
{%- endmacro %}

{% macro postgres__avg_to_decimal(expression, precision, scale) -%}
    {{ avg_to_decimal_as_duckdb(expression, precision, scale) }}
{%- endmacro %}

{% macro spark__avg_to_decimal(expression, precision, scale) -%}
    {{ avg_to_decimal_as_duckdb(expression, precision, scale) }}
{%- endmacro %}

{% macro avg_to_decimal_as_duckdb(expression, precision, scale) -%}
    {%- set factor = 10 ** (scale | int) -%}
    cast(
        sign(cast(sum({{ expression }}) as {{ type_double() }}) / count({{ expression }}))
        * floor(abs(cast(sum({{ expression }}) as {{ type_double() }}) / count({{ expression }})) * {{ factor }} + 0.5)
        / {{ factor }}
        as decimal({{ precision }}, {{ scale }})
    )
{%- endmacro %}


{#-
    Whole minutes from `start_ts` to `end_ts` as DuckDB's datediff('minute') counts them: minute
    boundaries crossed (12:00:50 -> 12:01:10 is 1). dbt-spark's datediff rounds the elapsed seconds
    up instead (12:00:10 -> 12:01:20 is 70 s, 2 there, 1 here), so on Spark count the boundaries.
-#}
{% macro minutes_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('minutes_between', 'loyalist')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro default__minutes_between(start_ts, end_ts) -%}
    {{ dbt.datediff(start_ts, end_ts, 'minute') }}
{%- endmacro %}

{% macro spark__minutes_between(start_ts, end_ts) -%}
    (floor(unix_seconds({{ end_ts }}) / 60) - floor(unix_seconds({{ start_ts }}) / 60))
{%- endmacro %}


{#-
    The mean of whole minutes, in hours (null when there are none). The minutes are added as
    integers, exactly, so the mean is the same whatever order the rows arrive in (an avg of hours
    as doubles is not: see exact_sum).
-#}
{% macro average_hours(minutes_expression) -%}
    {{ as_fraction('sum(' ~ minutes_expression ~ ')') }} / nullif(count({{ minutes_expression }}), 0) / 60
{%- endmacro %}


{#-
    A 64-bit number from a few values (SQL expressions), the same for the same values on one engine:
    for identities and fingerprints where the text itself would cost too much to carry or compare.
    Only compared with numbers computed by the same engine; a change of the engine's hash after an
    upgrade makes every number differ, which makes the readers recompute more, never less. A null
    value gives a null number on Postgres: callers coalesce the values that may be null.
-#}
{% macro row_hash(expressions) -%}
    {{ return(adapter.dispatch('row_hash', 'loyalist')(expressions)) }}
{%- endmacro %}

{% macro duckdb__row_hash(expressions) -%}
    {#- hash() is a UBIGINT: the top bit dropped, it fits a BIGINT -#}
    cast(hash({{ expressions | join(', ') }}) >> 1 as bigint)
{%- endmacro %}

{% macro postgres__row_hash(expressions) -%}
    hashtextextended(
        {%- for expression in expressions %}cast({{ expression }} as text){{ " || '|' || " if not loop.last }}{% endfor -%}
    , 0)
{%- endmacro %}

{% macro spark__row_hash(expressions) -%}
    xxhash64({{ expressions | join(', ') }})
{%- endmacro %}


{#- The number of a load (landing file, load time): marts.transactions' lines_load_key. -#}
{% macro load_key(file_expression, loaded_at_expression) -%}
    {{ return(row_hash([file_expression, loaded_at_expression])) }}
{%- endmacro %}
