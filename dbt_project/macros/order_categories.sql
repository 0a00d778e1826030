{#-
    intermediate.int_order_categories is incremental (DuckDB, Postgres; Spark rebuilds it). Each row
    keeps what it was built from: its sale's transactions.changed_at and the catalogue's load time.
    A run recomputes the sales whose transactions row changed after the newest stamp the table holds
    (order_categories_changed_after; transactions stamps every row it writes, later than all before),
    and every sale when the catalogue was loaded again (a product may have moved to another
    category). delete+insert replaces those sales' rows; the post-hook then deletes the rows whose
    sale's row is gone or was written again since: the sale left the as-of day, stopped being a
    completed sale or lost its lines, so the batch had no row to replace them with. After a catalogue
    load the batch holds every sale that has a category, and no product loses its category (the raw
    contract requires one, and staging keeps each product's latest version), so no row of an older
    catalogue is left.
    tests/test_incremental_transactions.py checks day-by-day runs against full builds.
-#}

{#- The newest catalogue load (stg_crm__products.loaded_at): one value per run. -#}
{% macro catalogue_loaded_at() -%}
    select max(products.loaded_at) from {{ ref('stg_crm__products') }} as products
{%- endmacro %}


{#- SQL for recs_basket_lines' changed_after on an incremental run; none on a full build. -#}
{% macro order_categories_changed_after() -%}
    {%- if not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set epoch = epoch_timestamptz() -%}
    {%- set held_columns = held_column_names() -%}
    {%- if 'transaction_changed_at' not in held_columns or 'products_loaded_at' not in held_columns
        or 'lines' not in held_columns or 'cost_of_goods' not in held_columns -%}
        {#- a table built before it kept its sources, lines or costs (an earlier version): every sale, once -#}
        {{ return(epoch) }}
    {%- endif -%}
    {%- set changed_after -%}
    (
        select
            case
                when max(held.products_loaded_at) is distinct from ({{ catalogue_loaded_at() }}) then {{ epoch }}
                else coalesce(max(held.transaction_changed_at), {{ epoch }})
            end
        from {{ this }} as held
    )
    {%- endset -%}
    {{ return(changed_after) }}
{%- endmacro %}


{#- Post-hook: delete the rows the run's batch did not rebuild and that no longer hold (see above). -#}
{% macro delete_stale_order_categories() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where not exists (
                select 1
                from {{ ref('transactions') }} as current_rows
                where current_rows.order_id = {{ this.identifier }}.order_id
                    and current_rows.changed_at = {{ this.identifier }}.transaction_changed_at
            )
    {%- endif -%}
{%- endmacro %}
