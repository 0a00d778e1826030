{#-
    The days a customer's lifecycle stage is computed for: the as-of date, and before it the month
    ends of the `lifecycle_backfill_months` months before it (for the first build of
    customer_lifecycle_history). Returned oldest first as 'YYYY-MM-DD' strings. When this invocation
    builds the history incrementally (it exists, no --full-refresh), only the as-of date.
-#}
{% macro lifecycle_snapshot_dates() -%}
    {%- set as_of = modules.datetime.date.fromisoformat(as_of_date()) -%}
    {%- if lifecycle_history_builds_incrementally() -%}
        {#- the history reads only the as-of day then: 12 more days per run cost ~10x the snapshot's time -#}
        {{ return([as_of.isoformat()]) }}
    {%- endif -%}
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


{#-
    Will customer_lifecycle_history build incrementally in this invocation: does it exist, without
    --full-refresh? (A model cannot ref() its own child, so the relation is looked up in the graph.)
-#}
{% macro lifecycle_history_builds_incrementally() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set node = graph.nodes['model.loyalist.customer_lifecycle_history'] -%}
    {%- set relation = adapter.get_relation(node.database, node.schema, node.alias) -%}
    {{ return(relation is not none) }}
{%- endmacro %}


{#-
    First build of customer_lifecycle_history: fail unless the snapshots hold every backfill day. They
    hold only the as-of day when they were built while the history existed, e.g. before
    `dbt build --full-refresh -s customer_lifecycle_history` alone.
-#}
{% macro assert_lifecycle_backfill_snapshots(snapshots) -%}
    {%- if execute -%}
        {%- set expected = lifecycle_snapshot_dates() -%}
        {%- set found = run_query('select count(distinct snapshot_date) from ' ~ snapshots
            ~ " where snapshot_date >= cast('" ~ expected[0] ~ "' as date)").columns[0].values()[0] -%}
        {%- if found < expected | length -%}
            {{ exceptions.raise_compiler_error(
                'int_customer_lifecycle_snapshots holds ' ~ found ~ ' of the ' ~ (expected | length)
                ~ ' snapshot days the first build of customer_lifecycle_history backfills: rebuild both, '
                ~ 'e.g. dbt build --full-refresh -s int_customer_lifecycle_snapshots+') }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
