{#-
    intermediate.int_basket_pair_days is incremental (DuckDB, Postgres; Spark rebuilds it), by day: a
    basket has one day, so a window's pair counts are the sums of its days' counts, and a run only
    recounts the days whose baskets may have changed.

    Which days: each day's rows keep the fingerprint of the day's marts.transactions rows when they
    were counted (how many, and the sum of a hash of what decides a basket: the order, its type, its
    status and the load its lines came from) and the catalogue's load time. A day whose fingerprint
    differs is recounted (delete+insert by day), and after a catalogue load every day is. The
    fingerprint leaves out what does not change a basket: a daily run at 1M customers rewrites a few
    thousand sales on most days of the year only because identity resolution moved them to another
    customer, and a fingerprint of the rows' write times (changed_at) recounted every day.
    The post-hook then deletes the days whose rows still keep another fingerprint: days that no
    longer have a basket with an item (their sales left, were cancelled or lost their lines).
    tests/test_incremental_transactions.py checks day-by-day runs against full builds.
-#}

{#- One row per order day up to the as-of day: the number of its transactions rows and their fingerprint. -#}
{% macro basket_day_fingerprints() -%}
    select
        order_date,
        count(*) as day_transactions,
        -- summed as decimals: 64-bit sums overflow (Spark in ANSI mode raises)
        sum(cast({{ row_hash(['order_id', 'transaction_type', 'status', 'coalesce(lines_load_key, 0)']) }} as decimal(38, 0))) as day_fingerprint
    from {{ ref('transactions') }}
    where order_date <= cast('{{ as_of_date() }}' as date)
    group by order_date
{%- endmacro %}


{#- Post-hook: delete the rows whose day's fingerprint or catalogue load is no longer the current one. -#}
{% macro delete_stale_basket_pair_days() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where products_loaded_at is distinct from ({{ catalogue_loaded_at() }})
            or not exists (
                select 1
                from ({{ basket_day_fingerprints() }}) as current_days
                where current_days.order_date = {{ this.identifier }}.order_date
                    and current_days.day_transactions = {{ this.identifier }}.day_transactions
                    and current_days.day_fingerprint = {{ this.identifier }}.day_fingerprint
            )
    {%- endif -%}
{%- endmacro %}
