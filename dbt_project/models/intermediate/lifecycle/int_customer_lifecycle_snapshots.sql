-- Lifecycle stage of every customer on the as-of date (snapshot_date). The SQL is the macro
-- lifecycle_stages (macros/lifecycle.sql), which the first build of customer_lifecycle_history also
-- runs for its backfill month ends: a daily run computes the one day it needs.
--
-- The stage on day S uses completed sales up to the end of S only, so it is what a run for S sees.
-- Stages, checked in this order (thresholds are vars in dbt_project.yml):
--   prospect     no completed sale yet
--   churned      last sale more than churn_after_days ago
--   at_risk      last sale more than lifecycle_active_within_days ago
--   reactivated  came back (a sale more than churn_after_days after the previous one) at most
--                lifecycle_reactivated_within_days ago
--   new          first sale at most lifecycle_new_within_days ago
--   loyal        at least lifecycle_loyal_min_orders sales in the last lifecycle_loyal_window_days
--   active       everyone else (last sale at most lifecycle_active_within_days ago)
-- Identities are today's resolution; a customer appears from the day of their first account or sale.

{{ lifecycle_stages([as_of_date()]) }}
