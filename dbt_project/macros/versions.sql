{#-
    Two CTEs for a staging model that keeps one version of each key of a raw table: `resent` (the
    keys that came more than once) and `versions` (every row of `relation`, version_rank 1 for the
    version that wins: the first by `order_by` among its key's rows). Readers keep
    `version_rank <= 1`. Insert in a `with` list: `{{ ranked_versions('source', [...], '...') }},`

    Almost every key arrives once, so only the keys that came more than once are ranked: the window,
    which sorts every column of its rows, then runs over a few rows instead of the whole table. At
    1M customers, for the query: consent events 3.2 -> 2.1 s, feedback 2.3 -> 1.9 s; the same
    rows. `=` on the keys: the raw contract requires every key column (ingest quarantines a row
    without one), and Postgres hash-joins only on `=` (`is not distinct from` nests loops over all rows).
    The reference tables (stg_crm__products, stg_crm__stores) rank every row: they are re-sent whole.
    `relation` is read three times: make it a CTE `as {{ not_materialized() }}`, or DuckDB copies it.
-#}
{% macro ranked_versions(relation, key_columns, order_by) -%}
    {%- set same_key -%}
        {%- for column in key_columns %}
            {{ 'and ' if not loop.first }}resent.{{ column }} = {{ relation }}.{{ column }}
        {%- endfor %}
    {%- endset -%}

    resent as (

        select {{ key_columns | join(', ') }}
        from {{ relation }}
        group by {{ key_columns | join(', ') }}
        having count(*) > 1

    ),

    versions as (

        select
            *,
            1 as version_rank
        from {{ relation }}
        where not exists (
            select 1
            from resent
            where {{ same_key }}
        )
        union all
        select * from (
            select
                *,
                row_number() over (
                    partition by {{ key_columns | join(', ') }}
                    order by {{ order_by }}
                ) as version_rank
            from {{ relation }}
            where exists (
                select 1
                from resent
                where {{ same_key }}
            )
        ) as ranked

    )
{%- endmacro %}
