{#-
    Each customer's completed transactions up to the end of `snapshot_date` ('YYYY-MM-DD'), one row per
    customer and span of churn_after_days + 1 days (span_number = day number / span length): the
    one pass over the whole history that both the RFM metrics and the lifecycle stages start from.

    Why spans: the lifecycle stage needs each customer's comebacks (a sale more than churn_after_days
    after the previous one). Two sales in one span are at most churn_after_days apart, so a comeback
    is always the first sale of its span, and its previous sale is the last sale of the customer's
    previous span with a sale: ordering a customer's few spans (about 2.5 a year at 1M customers)
    replaces sorting all their sales. The RFM metrics are sums and maxima, so they add up over spans.

    Both models group the 19M rows of the 1M-customer sample by customer; grouping once here and then
    the 2M span rows twice costs less than grouping the sales twice (benchmarks/findings.md).

    Columns: customer_id, span_number, first_sale_date, last_sale_date (null in a span of refunds
    only), sales, sales_in_loyal_window (lifecycle_loyal_window_days ending on the day),
    sales_in_rfm_window and net_amount_in_rfm_window (rfm_window_days ending on the day; refunds
    count against the amount).
-#}
{% macro customer_activity_spans(snapshot_date) -%}
    {%- set day = "cast('" ~ snapshot_date ~ "' as date)" -%}
    {%- set is_sale = "transaction_type = 'sale'" -%}
    {%- set in_loyal_window = "order_date >= " ~ add_days(day, 1 - var('lifecycle_loyal_window_days') | int) -%}
    {%- set in_rfm_window = "order_date >= " ~ add_days(day, 1 - var('rfm_window_days') | int) -%}
    select
        customer_id,
        cast(floor({{ day_number('order_date') }} / {{ var('churn_after_days') | int + 1 }}.0) as integer) as span_number,
        min(case when {{ is_sale }} then order_date end) as first_sale_date,
        max(case when {{ is_sale }} then order_date end) as last_sale_date,
        sum(case when {{ is_sale }} then 1 else 0 end) as sales,
        sum(case when {{ is_sale }} and {{ in_loyal_window }} then 1 else 0 end) as sales_in_loyal_window,
        sum(case when {{ is_sale }} and {{ in_rfm_window }} then 1 else 0 end) as sales_in_rfm_window,
        cast(sum(case when {{ in_rfm_window }} then net_amount else 0 end) as decimal(18, 2)) as net_amount_in_rfm_window
    from {{ ref('transactions') }}
    where status = 'completed'
        and order_date <= {{ day }}
    group by 1, 2
{%- endmacro %}
