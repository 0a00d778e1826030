-- The seed rfm_segments must map every (r_score, fm_score) cell of the 5 x 5 grid to exactly one of
-- the 11 segments; a missing cell would leave buyers without a segment.
with

cells as (

    select
        count(*) as mapped_cells,
        count(distinct rfm_segment) as segments
    from {{ ref('rfm_segments') }}
    where r_score between 1 and 5
        and fm_score between 1 and 5

)

select * from cells
where mapped_cells <> 25 or segments <> 11
