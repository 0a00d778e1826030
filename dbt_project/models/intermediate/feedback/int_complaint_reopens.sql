-- One row per complaint: how often it was reopened, from every version received up to the run date.
-- The feed re-sends a complaint on each status change; a reopen is a version with status 'open'
-- that follows (by updated_at) a version with status 'resolved'.

with

source as (

    select * from {{ source('raw', 'feedback') }}
    where feedback_type = 'complaint'
        and {{ as_of_filter('updated_at') }}

),

versions as (

    select
        feedback_id,
        updated_at,
        status,
        -- the same version may be landed twice (a re-sent file): keep one copy
        row_number() over (
            partition by feedback_id, updated_at
            order by _loaded_at desc, _partition_date desc, _source_file desc, _row_in_file desc
        ) as copy_rank
    from source

),

ordered as (

    select
        feedback_id,
        status,
        lag(status) over (partition by feedback_id order by updated_at) as previous_status
    from versions
    where copy_rank = 1

),

final as (

    select
        feedback_id,
        sum(case when status = 'open' and previous_status = 'resolved' then 1 else 0 end) as times_reopened
    from ordered
    group by feedback_id

)

select * from final
