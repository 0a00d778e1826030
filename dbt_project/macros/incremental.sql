{#-
    The incremental marts (customer_lifecycle_history, loyalty_points_ledger, recommendation_evaluation)
    replace part of their rows on every run: a pre-hook deletes the rows the run recomputes, then
    delete+insert writes the recomputed rows. (The staging base tables base_crm__orders and
    base_crm__order_items delete+insert their recomputed keys and delete vanished ones after the run:
    macros/latest_loads.sql.) Spark's plain Parquet tables support neither DELETE nor MERGE (those need Delta
    or Iceberg), so on Spark the same models rewrite the whole table instead:
      1. the pre-hook copies the table to `<name>__previous` (Spark cannot overwrite a table that the
         query writing it reads),
      2. the model reads its earlier rows from that copy (incremental_previous()),
      3. incremental_kept_rows() appends the earlier rows the run keeps to the recomputed ones,
      4. insert_overwrite without partitions replaces the table with the result, and a post-hook
         drops the copy.
    Both paths end in the same rows; only the way they are written differs. In a dbt unit test
    `this` is the fixture (a CTE name, not a relation): the models then read it directly and the test
    checks the rows a run recomputes, which is the same SQL on every target.
-#}

{#- The lower-case column names of the table an incremental run updates (`this`); [] on a full build.
    Models whose later versions added columns check for them (on_schema_change appends them). -#}
{% macro held_column_names() -%}
    {%- if not is_incremental() -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}


{#- delete+insert where the warehouse can delete rows, a whole-table insert_overwrite on Spark. -#}
{% macro replace_rows_strategy() -%}
    {{ return(adapter.dispatch('replace_rows_strategy', 'loyalist')()) }}
{%- endmacro %}

{% macro default__replace_rows_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__replace_rows_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}


{#- The relation holding the rows earlier runs wrote: the table itself, or its copy on Spark. -#}
{% macro incremental_previous() -%}
    {{ return(adapter.dispatch('incremental_previous', 'loyalist')()) }}
{%- endmacro %}

{% macro default__incremental_previous() -%}
    {{ return(this) }}
{%- endmacro %}

{% macro spark__incremental_previous() -%}
    {%- if this is string -%}
        {{ return(this) }}
    {%- endif -%}
    {{ return(this.incorporate(path={'identifier': this.identifier ~ '__previous'})) }}
{%- endmacro %}


{#- True when incremental_previous() holds only the rows the run keeps: where the pre-hook deleted the
    recomputed rows (delete_replaced_rows) earlier in the same transaction, so the model can read them
    without filtering them again. False on Spark (the copy holds every earlier row) and in a unit test
    (`this` is the fixture, and no hook runs). -#}
{% macro previous_rows_pruned() -%}
    {{ return(adapter.dispatch('previous_rows_pruned', 'loyalist')()) }}
{%- endmacro %}

{% macro default__previous_rows_pruned() -%}
    {{ return(this is not string) }}
{%- endmacro %}

{% macro spark__previous_rows_pruned() -%}
    {{ return(false) }}
{%- endmacro %}


{#- The earlier rows a run keeps: incremental_previous() without the rows matching `recomputed`, the
    condition the model's pre-hook deletes (delete_replaced_rows). Where the pre-hook has deleted them
    already (previous_rows_pruned), the rows as they stand: filtering again would redo that work. -#}
{% macro previous_rows_kept(recomputed) -%}
    select * from {{ incremental_previous() }}
    {%- if not previous_rows_pruned() %}
    where not ({{ recomputed }})
    {%- endif %}
{%- endmacro %}


{#- Pre-hook body: delete the rows matching `condition` (on Spark: copy the table instead, see above). -#}
{% macro delete_replaced_rows(condition) -%}
    {{ return(adapter.dispatch('delete_replaced_rows', 'loyalist')(condition)) }}
{%- endmacro %}

{% macro default__delete_replaced_rows(condition) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ condition }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__delete_replaced_rows(condition) -%}
    {{ copy_previous_rows() }}
{%- endmacro %}


{#- Pre-hook body: copy the table to `<name>__previous` on Spark (nothing elsewhere). -#}
{% macro copy_previous_rows() -%}
    {{ return(adapter.dispatch('copy_previous_rows', 'loyalist')()) }}
{%- endmacro %}

{% macro default__copy_previous_rows() -%}
{%- endmacro %}

{% macro spark__copy_previous_rows() -%}
    {%- if is_incremental() -%}
        {%- do run_query('drop table if exists ' ~ incremental_previous()) -%}
        create table {{ incremental_previous() }} using parquet as select * from {{ this }}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook body: drop the Spark copy (nothing elsewhere). -#}
{% macro drop_previous_rows() -%}
    {{ return(adapter.dispatch('drop_previous_rows', 'loyalist')()) }}
{%- endmacro %}

{% macro default__drop_previous_rows() -%}
{%- endmacro %}

{% macro spark__drop_previous_rows() -%}
    {%- if is_incremental() -%}
        drop table if exists {{ incremental_previous() }}
    {%- endif -%}
{%- endmacro %}


{#-
    Appended to an incremental model's final select: on Spark, the kept earlier rows (`kept_rows`, a
    CTE of the model) whose `unique_key` the run did not recompute in `new_rows`. Elsewhere they are
    still in the table, so this renders nothing.
-#}
{% macro incremental_kept_rows(new_rows, kept_rows, unique_key) -%}
    {{ return(adapter.dispatch('incremental_kept_rows', 'loyalist')(new_rows, kept_rows, unique_key)) }}
{%- endmacro %}

{% macro default__incremental_kept_rows(new_rows, kept_rows, unique_key) -%}
{%- endmacro %}

{% macro spark__incremental_kept_rows(new_rows, kept_rows, unique_key) -%}
    {%- if is_incremental() and this is not string %}
union all
select kept.*
from {{ kept_rows }} as kept
left anti join {{ new_rows }} as recomputed
    on {% for key in ([unique_key] if unique_key is string else unique_key) -%}
        kept.{{ key }} = recomputed.{{ key }}{{ " and " if not loop.last }}
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}
