{#-
    What the Spark target (dbt-spark, session method) needs beyond the dialect macros of cross_db.sql.
-#}

{#-
    on-run-start: register the Parquet folders written by loyalist.targets.export_raw_for_spark (one per
    table of every source: raw.*, ml.feedback_classified, ...) as tables of the Spark database named like
    the source's schema. Other targets read source tables that already exist, so this renders nothing there.
-#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources', 'loyalist')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
{%- endmacro %}

{% macro spark__register_raw_sources() -%}
    {%- if execute -%}
        {%- set sources_dir = env_var('LOYALIST_SPARK_DIR') ~ '/sources' -%}
        {%- set schemas = [] -%}
        {%- for source in graph.sources.values() -%}
            {%- if source.schema not in schemas -%}
                {%- do run_query('create database if not exists ' ~ source.schema) -%}
                {%- do schemas.append(source.schema) -%}
            {%- endif -%}
            {#- Dropping an external (LOCATION) table keeps its files; re-creating it reads the new export. -#}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query("create table " ~ source.schema ~ "." ~ source.identifier ~ " using parquet location '"
                ~ sources_dir ~ "/" ~ source.schema ~ "/" ~ source.identifier ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#-
    Contracts name types the way DuckDB and Postgres spell them (varchar, timestamp with time zone).
    dbt checks a contract by casting null to each declared type; on Spark, translate the names to
    Spark's own (string, timestamp) first, so one contract serves every target.
-#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set spark_names = {
        'varchar': 'string',
        'text': 'string',
        'timestamptz': 'timestamp',
        'timestamp with time zone': 'timestamp',
        'double precision': 'double',
    } -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set declared = (column['data_type'] or '') | trim | lower -%}
        {%- do translated.update({name: dict(column, data_type=spark_names.get(declared, column['data_type']))}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(translated)) }}
{%- endmacro %}


{#-
    Seeds on Spark. dbt-spark's session cursor formats bindings itself: a null becomes the string
    'None' and a quote in a value ends the literal (rfm_segments has "Can't Lose Them"). Render
    escaped literals instead, in batches like dbt-spark does.
-#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- set value = row[loop.index0] -%}
                    {%- if value is none -%}
                        cast(null as {{ type }})
                    {%- else -%}
                        cast('{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ type }})
                    {%- endif -%}
                    {{- ", " if not loop.last -}}
                {%- endfor -%}){{ "," if not loop.last }}
            {% endfor -%}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- do statements.append(sql) if loop.first -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{%- endmacro %}


{#-
    dbt.listagg on Spark ignores its `order by` (dbt-spark warns and concatenates in arrival order,
    which differs between runs). Sort (order key, value) pairs instead; ascending keys only, which is
    all this project uses.
-#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if order_by_clause -%}
        {%- set order_key = modules.re.sub('(?i)^\\s*order\\s+by\\s+', '', order_by_clause) | trim -%}
        {%- if modules.re.search('(?i)\\s(desc|asc|nulls)\\b|,', order_key) -%}
            {{ exceptions.raise_compiler_error("listagg on Spark supports one ascending order key, got: " ~ order_by_clause) }}
        {%- endif -%}
        {%- set collected = 'transform(array_sort(collect_list(struct(' ~ order_key ~ ' as sort_key, '
            ~ measure ~ ' as item))), pair -> pair.item)' -%}
    {%- else -%}
        {%- set collected = 'collect_list(' ~ measure ~ ')' -%}
    {%- endif -%}
    {%- if limit_num -%}
        {%- set collected = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' -%}
    {%- endif -%}
    array_join({{ collected }}, {{ delimiter_text }})
{%- endmacro %}
