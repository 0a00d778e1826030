"""What the run report shows, read from a (published) warehouse: one function per section.

Every function takes an open read-only DuckDB connection and returns plain data (DataFrames, dicts),
or ``None`` when the tables it needs are not in this warehouse (an older build, a branch without that
feature, a run whose scoring was skipped): the report then says so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from ml.config import dbt_var

# Lifecycle stages (seed lifecycle_stages) whose customers bought within the active window.
ACTIVE_STAGES = ("new", "active", "loyal", "reactivated")
# NPS and CSAT thresholds: the dbt vars are their one home (the feedback marts use the same ones).
NPS_PROMOTER_MIN = int(dbt_var("nps_promoter_min_score", 9))
NPS_DETRACTOR_MAX = int(dbt_var("nps_detractor_max_score", 6))
CSAT_SATISFIED_MIN = int(dbt_var("csat_satisfied_min_score", 4))
KPI_WINDOW_DAYS = 30
NPS_WINDOW_DAYS = 90
RECENT_MONTHS = 3  # months of lifecycle transitions in the Sankey
TREND_MONTHS = 12
TOPIC_MONTHS = 3  # months of classified feedback in the top-topics chart


class Warehouse:
    """A read-only connection plus the catalogue of what exists in it."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        rows = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                           "where table_schema not in ('information_schema', 'pg_catalog')").fetchall()
        self.columns: dict[str, set[str]] = {}
        for schema, table, column in rows:
            self.columns.setdefault(f"{schema}.{table}", set()).add(column)

    def has(self, table: str, *columns: str) -> bool:
        return table in self.columns and set(columns) <= self.columns[table]

    def df(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def one(self, sql: str, params: list | dict | None = None):
        return self.con.execute(sql, params or []).fetchone()


def as_of_date(wh: Warehouse) -> date | None:
    if not wh.has("marts.customers", "as_of_date"):
        return None
    value = wh.one("select max(as_of_date) from marts.customers")[0]
    return value


@dataclass(frozen=True)
class Kpis:
    customers: int
    prospects: int
    active: int
    revenue_window: float | None
    revenue_lifetime: float
    nps: float | None
    nps_responses: int


def _nps_sql(where: str) -> str:
    return f"""
        select 100.0 * (count(*) filter (where score >= {NPS_PROMOTER_MIN})
                        - count(*) filter (where score <= {NPS_DETRACTOR_MAX})) / nullif(count(*), 0),
               count(*)
        from staging.stg_crm__feedback where feedback_type = 'nps' and score is not null and {where}"""


def kpis(wh: Warehouse, as_of: date) -> Kpis | None:
    if not wh.has("marts.customers", "is_prospect", "lifecycle_stage", "revenue"):
        return None
    customers, prospects, active, lifetime = wh.one(
        "select count(*) filter (where not is_prospect), count(*) filter (where is_prospect), "
        "count(*) filter (where lifecycle_stage in (select unnest(?))), coalesce(sum(revenue), 0) "
        "from marts.customers", [list(ACTIVE_STAGES)])
    revenue = None
    if wh.has("marts.transactions", "order_date", "net_amount", "status"):
        revenue = wh.one("select coalesce(sum(net_amount), 0) from marts.transactions where status = 'completed' "
                         "and order_date > ? - ? and order_date <= ?", [as_of, KPI_WINDOW_DAYS, as_of])[0]
    nps, responses = None, 0
    if wh.has("staging.stg_crm__feedback", "feedback_type", "score", "created_at"):
        nps, responses = wh.one(_nps_sql("cast(created_at as date) > ? - ? and cast(created_at as date) <= ?"),
                                [as_of, NPS_WINDOW_DAYS, as_of])
    return Kpis(int(customers), int(prospects), int(active), None if revenue is None else float(revenue),
                float(lifetime), None if nps is None else float(nps), int(responses or 0))


def rfm_segments(wh: Warehouse) -> pd.DataFrame | None:
    if not wh.has("marts.customer_segments", "rfm_segment"):
        return None
    return wh.df("select rfm_segment as segment, count(*) as customers from marts.customer_segments "
                 "where rfm_segment is not null group by 1 order by 2 desc")


def rfm_grid(wh: Warehouse) -> pd.DataFrame | None:
    """Customers per (recency score, frequency score)."""
    if not wh.has("marts.customer_segments", "r_score", "f_score"):
        return None
    return wh.df("select r_score, f_score, count(*) as customers from marts.customer_segments "
                 "where r_score is not null and f_score is not null group by all order by all")


def lifecycle_funnel(wh: Warehouse) -> pd.DataFrame | None:
    """Stage counts in the latest month of marts.lifecycle_funnel, in funnel order."""
    if not wh.has("marts.lifecycle_funnel", "month", "lifecycle_stage", "stage_order", "customers"):
        return None
    return wh.df("select lifecycle_stage, stage_order, customers, funnel_previous_stage, conversion_rate "
                 "from marts.lifecycle_funnel "
                 "where month = (select max(month) from marts.lifecycle_funnel) order by stage_order")


def lifecycle_trend(wh: Warehouse) -> pd.DataFrame | None:
    if not wh.has("marts.lifecycle_funnel", "month", "lifecycle_stage", "stage_order", "customers"):
        return None
    return wh.df("select month, lifecycle_stage, stage_order, customers from marts.lifecycle_funnel "
                 "where month > (select max(month) from marts.lifecycle_funnel) - ? * interval 1 month "
                 "order by month, stage_order", [TREND_MONTHS])


def lifecycle_flows(wh: Warehouse) -> tuple[pd.DataFrame, date | None] | None:
    """Stage-to-stage moves summed over the last RECENT_MONTHS months of marts.lifecycle_transitions."""
    if not wh.has("marts.lifecycle_transitions", "month", "from_stage", "to_stage", "customers"):
        return None
    first = wh.one("select max(month) - ? * interval 1 month + interval 1 month from marts.lifecycle_transitions",
                   [RECENT_MONTHS])[0]
    flows = wh.df("select from_stage, to_stage, sum(customers) as customers from marts.lifecycle_transitions "
                  "where month >= ? group by all order by customers desc", [first])
    return flows, (first.date() if hasattr(first, "date") else first)


def churn_scores(wh: Warehouse) -> pd.DataFrame | None:
    """The latest scoring's probabilities and bands."""
    if not wh.has("ml.churn_scores", "as_of_date", "churn_probability", "risk_band"):
        return None
    frame = wh.df("select as_of_date, churn_probability, risk_band from ml.churn_scores "
                  "where as_of_date = (select max(as_of_date) from ml.churn_scores)")
    return frame if len(frame) else None


def churn_evaluation(wh: Warehouse) -> pd.DataFrame | None:
    """The latest churn evaluation's metrics: one row per metric, columns model / recency / heuristic."""
    if not wh.has("ml.model_evaluations", "metric", "model_value", "baseline_recency", "baseline_heuristic"):
        return None
    frame = wh.df("""
        select metric, model_value as model, baseline_recency as recency, baseline_heuristic as heuristic,
               model_version, evaluated_at_cutoff, n_customers, promoted
        from ml.model_evaluations
        where model_kind = 'churn' and (model_version, evaluated_at_cutoff) = (
            select (model_version, evaluated_at_cutoff) from ml.model_evaluations
            where model_kind = 'churn' order by created_at desc, model_version limit 1)""")
    return frame.set_index("metric") if len(frame) else None


def feedback_trend(wh: Warehouse, as_of: date) -> pd.DataFrame | None:
    """NPS and CSAT per month (last TREND_MONTHS months), from the staged feedback."""
    if not wh.has("staging.stg_crm__feedback", "feedback_type", "score", "created_at"):
        return None
    return wh.df(f"""
        select cast(date_trunc('month', created_at) as date) as month,
               100.0 * (count(*) filter (where feedback_type = 'nps' and score >= {NPS_PROMOTER_MIN})
                        - count(*) filter (where feedback_type = 'nps' and score <= {NPS_DETRACTOR_MAX}))
                     / nullif(count(*) filter (where feedback_type = 'nps'), 0) as nps,
               count(*) filter (where feedback_type = 'nps') as nps_responses,
               100.0 * count(*) filter (where feedback_type = 'csat' and score >= {CSAT_SATISFIED_MIN})
                     / nullif(count(*) filter (where feedback_type = 'csat'), 0) as csat,
               count(*) filter (where feedback_type = 'csat') as csat_responses
        from staging.stg_crm__feedback
        where score is not null and cast(created_at as date) <= $as_of
          and created_at >= date_trunc('month', $as_of) - interval {TREND_MONTHS - 1} month
        group by 1 order by 1""", {"as_of": as_of})


def feedback_topics(wh: Warehouse, as_of: date) -> pd.DataFrame | None:
    """Feedback items per topic and sentiment over the last TOPIC_MONTHS months (marts.feedback_topics_monthly)."""
    if not wh.has("marts.feedback_topics_monthly", "feedback_month", "topic", "dimension", "sentiment",
                  "feedback_items"):
        return None
    return wh.df(f"""
        select topic, dimension,
               sum(feedback_items) as mentions,
               sum(feedback_items) filter (where sentiment = 'negative') as negative
        from marts.feedback_topics_monthly
        where feedback_month >= date_trunc('month', cast($as_of as date)) - interval {TOPIC_MONTHS - 1} month
        group by 1, 2 order by mentions desc, topic limit 10""", {"as_of": as_of})


def recent_comments(wh: Warehouse, as_of: date, limit: int = 6) -> pd.DataFrame | None:
    """The latest low-score or complaint texts: what unhappy customers actually wrote."""
    if not wh.has("staging.stg_crm__feedback", "feedback_text", "feedback_type", "score", "created_at", "language"):
        return None
    return wh.df("""
        select strftime(created_at, '%Y-%m-%d') as day, feedback_type, cast(score as varchar) as score, language,
               feedback_text
        from staging.stg_crm__feedback
        where feedback_text is not null and length(trim(feedback_text)) > 0 and cast(created_at as date) <= ?
          and (feedback_type = 'complaint' or (feedback_type = 'nps' and score <= ?)
               or (feedback_type in ('csat', 'review') and score <= 2))
        order by created_at desc, feedback_id limit ?""", [as_of, NPS_DETRACTOR_MAX, limit])


def rewards(wh: Warehouse) -> pd.DataFrame | None:
    """The latest reward run per type: contacted customers, control group, cost."""
    if not wh.has("ml.reward_eligibility", "as_of_date", "reward_type", "is_control", "cost"):
        return None
    frame = wh.df("""
        select reward_type, count(*) filter (where not is_control) as contacted,
               count(*) filter (where is_control) as control, sum(cost) filter (where not is_control) as cost,
               max(as_of_date) as as_of_date
        from ml.reward_eligibility where as_of_date = (select max(as_of_date) from ml.reward_eligibility)
        group by 1 order by contacted desc""")
    return frame if len(frame) else None


def audiences(wh: Warehouse, settings) -> pd.DataFrame | None:
    """Today's size of every audience definition (audiences/*.yml), counted by the exports' own query."""
    from loyalist.audiences.definitions import DefinitionError
    from loyalist.audiences.export import audience_sizes

    try:
        frame = audience_sizes(settings, wh.con)
    except DefinitionError:  # an invalid definition file is reported by `loyalist audience validate`
        return None
    return frame if len(frame) else None


def load_health(wh: Warehouse) -> pd.DataFrame | None:
    """Rows read/loaded/quarantined per entity in the latest batch, and in all batches."""
    if not wh.has("raw._load_manifest", "batch_id", "rows_loaded", "rows_quarantined", "loaded_at"):
        return None
    return wh.df("""
        with latest as (select batch_id from raw._load_manifest order by loaded_at desc limit 1)
        select entity,
               count(*) filter (where batch_id = (select batch_id from latest)) as files_in_batch,
               cast(coalesce(sum(rows_loaded) filter (where batch_id = (select batch_id from latest)), 0) as bigint)
                   as loaded,
               cast(coalesce(sum(rows_quarantined) filter (where batch_id = (select batch_id from latest)), 0)
                   as bigint) as quarantined,
               cast(sum(rows_loaded) as bigint) as loaded_all_batches,
               cast(sum(rows_quarantined) as bigint) as quarantined_all_batches,
               (select batch_id from latest) as batch_id
        from raw._load_manifest group by entity order by entity""")


def quarantine_reasons(wh: Warehouse, limit: int = 8) -> pd.DataFrame | None:
    """The most frequent quarantine reasons over every raw.<entity>__quarantine table."""
    tables = sorted(t for t in wh.columns if t.startswith("raw.") and t.endswith("__quarantine")
                    and "reasons" in wh.columns[t])
    if not tables:
        return None
    union = " union all ".join(
        f"select '{t.split('.')[1].removesuffix('__quarantine')}' as entity, reasons as reason "
        f"from {t}" for t in tables)
    return wh.df(f"select entity, reason, count(*) as rows from ({union}) group by all order by rows desc, 1, 2 "
                 f"limit {int(limit)}")
