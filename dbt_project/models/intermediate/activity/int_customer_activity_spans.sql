-- Each customer's completed transactions up to the as-of date, one row per customer and span of
-- churn_after_days + 1 days. The SQL is the macro customer_activity_spans (macros/activity.sql):
-- int_customer_rfm and int_customer_lifecycle_snapshots both start from this table, so the run
-- groups the whole transaction history by customer once.

{{ customer_activity_spans(as_of_date()) }}
