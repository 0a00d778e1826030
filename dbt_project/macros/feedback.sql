{#- 'up' / 'down' / 'flat' from the previous answer to the latest; null without a previous answer. -#}
{% macro score_trend(latest, previous) -%}
    case
        when {{ latest }} is null or {{ previous }} is null then null
        when {{ latest }} > {{ previous }} then 'up'
        when {{ latest }} < {{ previous }} then 'down'
        else 'flat'
    end
{%- endmacro %}


{#- Is a service level breached as of the run: the event came later than `sla_hours` after `start_ts`,
    or it has not happened by the end of the as-of day and that is already later. -#}
{% macro sla_breached(start_ts, event_ts, sla_hours) -%}
    case
        when {{ event_ts }} is not null then {{ hours_between(start_ts, event_ts) }} > {{ sla_hours }}
        else {{ hours_between(start_ts, as_of_cutoff()) }} > {{ sla_hours }}
    end
{%- endmacro %}
