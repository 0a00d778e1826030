{#-
    The base models (models/staging/crm/base) keep, for every key of a raw table, its rows from the
    latest load, and are incremental: a daily run ranks the loads of a handful of keys, not the whole
    history. A kept row is stale, and its key is ranked again, when
      1. the raw table has rows of its key loaded after the newest kept row (a new or re-sent
         version: whatever it holds, it has to be ranked against the kept one), or
      2. the load it came from is gone from raw: ingestion reloads a file by deleting its rows and
         inserting the new ones, all with a new _loaded_at (one transaction, one now()), so a kept row
         whose (_source_file, _loaded_at) no longer occurs in raw comes from a replaced or emptied file
         and may have lost its key there.
    Erasure (loyalist forget) deletes a person's rows from raw and from the base tables alike, so it
    leaves nothing to rank. Both conditions read only the kept rows and raw, so any order of loads,
    reloads and reruns of earlier days ends in the rows a full build gives: the as-of day is not an
    input of these tables, their stg_ models apply it.
-#}
{% macro latest_load_is_stale(kept, raw_table, key) -%}
    (
        {{ key }} in (
            select newer.{{ key }}
            from {{ raw_table }} as newer
            where newer._loaded_at > (select max(newest.loaded_at) from {{ kept }} as newest)
        )
        or source_file in (
            select replaced.source_file
            from (
                select kept_load.source_file, kept_load.loaded_at
                from {{ kept }} as kept_load
                group by kept_load.source_file, kept_load.loaded_at

                except

                select raw_load._source_file, raw_load._loaded_at
                from {{ raw_table }} as raw_load
                group by raw_load._source_file, raw_load._loaded_at
            ) as replaced
        )
    )
{%- endmacro %}


{#- Pre-hook: delete the stale rows (same transaction as the insert; on Spark, copy the table). -#}
{% macro delete_stale_latest_loads(raw_table, key) -%}
    {{ delete_replaced_rows(latest_load_is_stale(this, raw_table, key)) }}
{%- endmacro %}
