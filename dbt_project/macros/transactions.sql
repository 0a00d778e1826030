{#-
    marts.transactions is incremental (DuckDB, Postgres; Spark rebuilds it). A run recomputes the
    orders whose row may differ from the one the table holds, and no others:
      1. order copies and lines loaded after the newest load the table holds (new orders, re-sent
         ones, lines that came later); every load after the last run is later than that;
      2. orders the as-of day now reaches (dated after the latest order the table holds);
      3. rows built from a load that is no longer in the base tables (a replaced or emptied file:
         the order or its lines changed or left);
      4. rows whose account now resolves to another customer (identity merges), or to none;
      5. refunds of the orders above: whether their sale is known may have changed.
    delete+insert replaces the recomputed orders that staging still holds; the post-hook then deletes
    the rows of orders staging no longer holds: dated after the as-of day (a rerun of an earlier day,
    or a re-sent copy with a later time), or gone from the base table with their load. Erasure
    (loyalist forget) deletes rows from this table itself. Rule 1 assumes, as the base tables do, that
    ingestion stamps a load with the time it ran and never runs while dbt does.

    Every row a run writes gets that run's `changed_at` (transactions_changed_at), so the models that
    read this table can recompute just the orders changed since their own last run
    (int_order_categories).
-#}

{% macro transactions_recomputed_orders() -%}
    {%- set epoch = epoch_timestamptz() %}
    {%- set held_columns = held_column_names() %}
    {%- if transactions_load_columns() | reject('in', held_columns) | list %}
    -- the table was built before it kept its loads (an earlier version): every order, once
    select everything.order_id
    from {{ ref('stg_crm__orders') }} as everything
    {%- else %}
    with

    held as (

        select
            -- ingestion loads an interval's orders, then its lines: the newest of both
            greatest(coalesce(max(loaded_at), {{ epoch }}), coalesce(max(lines_loaded_at), {{ epoch }}))
                as newest_load,
            coalesce(max(ordered_at), {{ epoch }}) as latest_order
        from {{ this }}

    ),

    changed as (

        -- 1.
        select newer.order_id
        from {{ ref('base_crm__orders') }} as newer
        where newer.loaded_at > (select held.newest_load from held)

        union

        select newer_lines.order_id
        from {{ ref('base_crm__order_items') }} as newer_lines
        where newer_lines.loaded_at > (select held.newest_load from held)

        union

        -- 2.
        select reached.order_id
        from {{ ref('stg_crm__orders') }} as reached
        where reached.ordered_at > (select held.latest_order from held)

        union

        -- 3.
        select replaced.order_id
        from {{ this }} as replaced
        where (replaced.source_file, replaced.loaded_at) in ({{ latest_load_replaced_loads(this, ref('base_crm__orders'), column_prefix='') }})
            or replaced.lines_load_key in (
                select held_lines.lines_load_key
                from {{ this }} as held_lines
                where held_lines.lines_load_key is not null
                group by held_lines.lines_load_key

                except

                select {{ load_key('base_lines.source_file', 'base_lines.loaded_at') }}
                from {{ ref('base_crm__order_items') }} as base_lines
                group by base_lines.source_file, base_lines.loaded_at
            )

        union

        -- 4.
        select remapped.order_id
        from {{ this }} as remapped
        left join {{ ref('int_customer_accounts_resolved') }} as accounts
            on remapped.source_system = accounts.source_system
            and remapped.source_customer_id = accounts.source_customer_id
        where remapped.customer_id is distinct from accounts.customer_id

    )

    select changed.order_id
    from changed

    union

    -- 5.
    select refunds.order_id
    from {{ ref('stg_crm__orders') }} as refunds
    where refunds.transaction_type = 'refund'
        and refunds.original_order_id in (select changed.order_id from changed)
    {%- endif %}
{%- endmacro %}


{#- The columns that hold each row's loads and the run that wrote it (all appended together,
    on_schema_change); a table without them is recomputed whole once. -#}
{% macro transactions_load_columns() -%}
    {{ return(['source_file', 'loaded_at', 'lines_loaded_at', 'lines_load_key', 'changed_at']) }}
{%- endmacro %}


{#-
    `changed_at` of the rows this run writes: dbt's start time, and later than every stamp the table
    holds, so that a clock set back between runs cannot hide a changed row from a reader that asks
    for the rows changed after the newest stamp it has seen.
-#}
{% macro transactions_changed_at() -%}
    {%- set run_start = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "+00:00' as " ~ type_timestamptz() ~ ")" -%}
    {%- if 'changed_at' in held_column_names() -%}
    greatest({{ run_start }}, (select max(held.changed_at) from {{ this }} as held) + interval '1 microsecond')
    {%- else -%}
    {{ run_start }}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook: delete the rows of orders that staging no longer holds (see above). -#}
{% macro delete_departed_transactions() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where ordered_at >= {{ as_of_cutoff() }}
            or order_id in (
                select later.order_id
                from {{ ref('base_crm__orders') }} as later
                where not ({{ as_of_filter('later.ordered_at') }})
            )
            or (source_file, loaded_at) in ({{ latest_load_replaced_loads(this, ref('base_crm__orders'), column_prefix='') }})
            -- left from a table built before it kept its loads: every order staging holds got them
            or loaded_at is null
    {%- endif -%}
{%- endmacro %}
