-- One row per topic of each classified feedback version. When the classify step has never run
-- (a warehouse built by `dbt build` alone), the source table does not exist yet: an empty set of
-- the same shape keeps the feedback marts buildable (their topic counts are then empty).

{%- set classified = source('ml', 'feedback_classified') %}
{%- set relation = adapter.get_relation(database=classified.database, schema=classified.schema,
                                        identifier=classified.identifier) %}

with

{% if relation is not none %}

source as (

    select * from {{ classified }}

),

{% else %}

source as (

    select
        cast(null as {{ dbt.type_string() }}) as feedback_id,
        cast(null as {{ type_timestamptz() }}) as updated_at,
        cast(null as {{ dbt.type_string() }}) as topic,
        cast(null as {{ dbt.type_string() }}) as dimension,
        cast(null as {{ dbt.type_string() }}) as sentiment,
        cast(null as integer) as sentiment_score,
        cast(null as {{ dbt.type_string() }}) as language
    where 1 = 0

),

{% endif %}

renamed as (

    select
        feedback_id,
        updated_at,
        topic,
        dimension,
        sentiment,
        sentiment_score,
        language,
        feedback_id || '|' || cast(updated_at as {{ dbt.type_string() }}) || '|' || topic as feedback_topic_key
    from source

)

select * from renamed
