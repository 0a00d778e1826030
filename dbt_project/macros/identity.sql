{#-
    Connected components of the identity graph by min-label propagation: for every node of
    `nodes` (a relation with an integer `account_rank`), the smallest rank it is connected to through
    `edges` (`from_rank`, `to_rank`, both directions present). Returns rows (account_rank, component_rank).
-#}
{% macro min_label_components(nodes, edges) -%}
    {{ return(adapter.dispatch('min_label_components', 'loyalist')(nodes, edges)) }}
{%- endmacro %}

{#-
    Every account starts with its own label and passes labels to its neighbours, but only labels
    smaller than the neighbour's own, so the component minimum reaches everyone while most useless
    pairs are never made. `union` (not `union all`) drops pairs already found, which is what ends the
    recursion: it is bounded by the number of (account, smaller account in the same component) pairs.
    The recursive CTE sits in a subquery so that dbt can still prepend its own CTEs (unit-test
    fixtures, ephemeral models) to a plain top-level `with`.
-#}
{% macro default__min_label_components(nodes, edges) -%}
    select
        account_rank,
        min(label) as component_rank
    from (
        with recursive propagation (account_rank, label) as (

            select account_rank, account_rank as label
            from {{ nodes }}

            union

            select
                {{ edges }}.to_rank as account_rank,
                propagation.label
            from propagation
            inner join {{ edges }}
                on propagation.account_rank = {{ edges }}.from_rank
            where propagation.label < {{ edges }}.to_rank

        )

        select account_rank, label from propagation
    ) as labels
    group by account_rank
{%- endmacro %}

{#-
    Spark's recursive CTEs allow only UNION ALL, which never ends on a cycle. Instead, run
    `identity_label_rounds_spark` rounds of propagation, each a join and a group-by: after round n
    every account holds the smallest rank within n links. The singular test
    assert_identity_edges_within_one_customer fails the build if a component needed more rounds.
-#}
{% macro spark__min_label_components(nodes, edges) -%}
    {%- set rounds = var('identity_label_rounds_spark') | int -%}
    {%- set ns = namespace(labels='(select account_rank, account_rank as label from ' ~ nodes ~ ')') -%}
    {%- for _ in range(rounds) -%}
        {%- set ns.labels -%}
        (
            select neighbour.account_rank, min(labels.label) as label
            from {{ ns.labels }} as labels
            inner join (
                select from_rank, to_rank as account_rank from {{ edges }}
                union all
                select account_rank as from_rank, account_rank from {{ nodes }}
            ) as neighbour
                on labels.account_rank = neighbour.from_rank
            group by neighbour.account_rank
        )
        {%- endset -%}
    {%- endfor -%}
    select account_rank, label as component_rank
    from {{ ns.labels }} as labels
{%- endmacro %}
