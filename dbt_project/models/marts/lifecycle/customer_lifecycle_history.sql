-- Lifecycle stage history (SCD type 2): one row per customer and period in one stage.
--
-- Built incrementally, one as-of day per run. A run for day D:
--   1. (pre-hook) deletes the rows that runs for D or later started (valid_from >= D), so a rerun of
--      D is idempotent and a rerun of an earlier day rewinds the history to that day;
--   2. compares each customer's stage on D with their latest remaining row, and
--        - closes that row at D (valid_to = D) when the stage changed or the customer no longer
--          exists (merged into another one by identity resolution),
--        - reopens it (valid_to = null) when a deleted later run had closed it but the stage on D
--          is still the same,
--        - opens a new row from D for a new customer or a new stage.
-- (On Spark, which cannot delete from Parquet tables, the run rewrites the whole table to the same
-- rows instead: macros/incremental.sql.)
-- Rows that started before D are never rewritten except for their valid_to / is_current, so "which
-- stage was X in on day Y" (valid_from <= Y < coalesce(valid_to, ...)) keeps the answer of the run for Y.
-- The first build (empty warehouse, or --full-refresh) backfills the stage at the month ends of the
-- lifecycle_backfill_months months before D, plus D, so transitions have history from day one; it
-- computes those stages itself (macro lifecycle_stages, the rules of int_customer_lifecycle_snapshots),
-- so the daily snapshot model computes only D.

{{ config(
    materialized='incremental',
    unique_key=['customer_id', 'valid_from'],
    incremental_strategy=replace_rows_strategy(),
    on_schema_change='fail',
    pre_hook="{{ lifecycle_history_delete_from_as_of() }}",
    post_hook="{{ drop_previous_rows() }}"
) }}

{%- set as_of = "cast('" ~ as_of_date() ~ "' as date)" %}
-- depends_on: {{ ref('int_customer_lifecycle_snapshots') }}

with

{% if is_incremental() %}

snapshots as (

    select * from {{ ref('int_customer_lifecycle_snapshots') }}
    where snapshot_date = {{ as_of }}

),

history as (

    -- what the pre-hook left: rows started before D (macros/incremental.sql)
    {{ previous_rows_kept(lifecycle_history_recomputed()) }}

),

latest_rows as (

    select
        *,
        row_number() over (partition by customer_id order by valid_from desc) as recency_rank
    from history

),

open_rows as (

    -- the row each customer was in just before D; rows closed before D belong to customers that
    -- had already disappeared and stay as they are
    select * from latest_rows
    where recency_rank = 1
        and (valid_to is null or valid_to >= {{ as_of }})

),

compared as (

    select
        coalesce(open_rows.customer_id, snapshots.customer_id) as customer_id,
        open_rows.lifecycle_stage as open_stage,
        open_rows.valid_from as open_valid_from,
        open_rows.valid_to as open_valid_to,
        snapshots.lifecycle_stage as stage_today
    from open_rows
    full outer join snapshots
        on open_rows.customer_id = snapshots.customer_id

),

changed_rows as (

    -- the earlier row, closed at D or (re)opened; only rows whose end actually changes are written
    select
        customer_id,
        open_stage as lifecycle_stage,
        open_valid_from as valid_from,
        case when stage_today = open_stage then null else {{ as_of }} end as valid_to
    from compared
    where open_stage is not null
        and (
            (stage_today = open_stage and open_valid_to is not null)
            or ((stage_today is null or stage_today <> open_stage) and open_valid_to is distinct from {{ as_of }})
        )

    union all

    -- a new period from D
    select
        customer_id,
        stage_today as lifecycle_stage,
        {{ as_of }} as valid_from,
        cast(null as date) as valid_to
    from compared
    where stage_today is not null
        and (open_stage is null or open_stage <> stage_today)

),

{% else %}

snapshots as (

    -- the stage at each backfill month end and on D, by the rules of int_customer_lifecycle_snapshots
    {{ lifecycle_stages(lifecycle_snapshot_dates()) | indent(4) }}

),

sequenced as (

    select
        customer_id,
        snapshot_date,
        lifecycle_stage,
        lag(lifecycle_stage) over (partition by customer_id order by snapshot_date) as previous_stage
    from snapshots

),

period_starts as (

    select * from sequenced
    where previous_stage is null or previous_stage <> lifecycle_stage

),

changed_rows as (

    -- gaps and islands: a period lasts until the next period of the same customer starts
    select
        customer_id,
        lifecycle_stage,
        snapshot_date as valid_from,
        lead(snapshot_date) over (partition by customer_id order by snapshot_date) as valid_to
    from period_starts

),

{% endif %}

final as (

    -- type_varchar(), not dbt.type_string() (text on Postgres): the incremental runs compare
    -- these types with the contract's (on_schema_change = fail)
    select
        cast(customer_id as {{ type_varchar() }}) as customer_id,
        cast(lifecycle_stage as {{ type_varchar() }}) as lifecycle_stage,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        valid_to is null as is_current,
        cast({{ as_of }} as date) as updated_as_of_date
    from changed_rows

)

select * from final
{{ incremental_kept_rows('final', 'history', ['customer_id', 'valid_from']) }}
