{#-
    The base models (models/staging/crm/base) keep, for every key of a raw table, its rows from the
    latest load, and are incremental: a daily run ranks the loads of a handful of keys, not the whole
    history. A run recomputes the keys
      1. with raw rows loaded after the newest kept row (new keys, re-sent versions: whatever they
         hold, they have to be ranked against the kept one), and
      2. whose kept rows come from a replaced load: ingestion reloads a file by deleting its rows and
         inserting the new ones, all with a new _loaded_at (one transaction, one now()), so a kept row
         whose (_source_file, _loaded_at) no longer occurs in raw comes from a replaced or emptied
         file, which may not hold its key any more.
    delete+insert replaces the recomputed keys that still have raw rows; the post-hook then deletes
    the rows of the keys that have none (they still come from a replaced load). On Spark the run
    rewrites the table instead (macros/incremental.sql): the earlier rows of every key not recomputed,
    plus the recomputed ones. Erasure (loyalist forget) deletes a person's rows from raw and from the
    base tables alike. So any order of loads, reloads and reruns of earlier days ends in the rows a
    full build gives (tests/test_incremental_staging.py): the as-of day is not an input of these
    tables, their stg_ models apply it.
-#}

{#- The keys a run recomputes (1 and 2 above), from `kept`, the table as the last run left it. -#}
{% macro latest_load_recomputed_keys(kept, raw_table, key) -%}
    select newer.{{ key }}
    from {{ raw_table }} as newer
    -- an empty table (no orders loaded yet when it was built) takes everything
    where newer._loaded_at > coalesce(
        (select max(newest.loaded_at) from {{ kept }} as newest),
        {{ epoch_timestamptz() }}
    )

    union

    select replaced.{{ key }}
    from {{ kept }} as replaced
    where (replaced.source_file, replaced.loaded_at) in ({{ latest_load_replaced_loads(kept, raw_table) }})
{%- endmacro %}


{#- The loads (file, load time) of rows of `kept` that are no longer in raw (2 above); the raw side
    names them `column_prefix`source_file and `column_prefix`loaded_at (marts.transactions compares
    its rows with a base table's in the same way: macros/transactions.sql). -#}
{% macro latest_load_replaced_loads(kept, raw_table, column_prefix='_') -%}
    select replaced_load.source_file, replaced_load.loaded_at
    from (
        select kept_load.source_file, kept_load.loaded_at
        from {{ kept }} as kept_load
        group by kept_load.source_file, kept_load.loaded_at

        except

        select raw_load.{{ column_prefix }}source_file, raw_load.{{ column_prefix }}loaded_at
        from {{ raw_table }} as raw_load
        group by raw_load.{{ column_prefix }}source_file, raw_load.{{ column_prefix }}loaded_at
    ) as replaced_load
{%- endmacro %}


{#- Post-hook: delete the rows of recomputed keys that have no raw rows left (Spark: drop the copy). -#}
{% macro delete_vanished_latest_loads(raw_table) -%}
    {{ return(adapter.dispatch('delete_vanished_latest_loads', 'loyalist')(raw_table)) }}
{%- endmacro %}

{% macro default__delete_vanished_latest_loads(raw_table) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        -- the load, not the file: the recomputed rows of a reloaded file come from its new load
        where (source_file, loaded_at) in ({{ latest_load_replaced_loads(this, raw_table) }})
    {%- endif -%}
{%- endmacro %}

{% macro spark__delete_vanished_latest_loads(raw_table) -%}
    {{ drop_previous_rows() }}
{%- endmacro %}

