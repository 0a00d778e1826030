"""loyalist_retrain: weekly training of the churn and CLV models.

Trains on point-in-time features at past cutoffs, evaluates on the latest fully labelled window
side by side with the baselines and the promoted model (results in ``ml.model_evaluations``), and
promotes the candidate only if it is better. The daily DAG scores with whatever is promoted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from loyalist.alerts import notify_failure


@dag(
    dag_id="loyalist_retrain",
    description="Weekly: train churn + CLV models, evaluate vs baselines and the promoted model, promote if better",
    schedule=CronDataIntervalTimetable("0 3 * * 1", timezone="UTC"),  # Mondays, after the daily run
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-science",
        # DuckDB has one writer: if the daily run still holds the warehouse, try again later.
        "retries": 3,
        "retry_delay": timedelta(minutes=10),
        "on_failure_callback": notify_failure,
    },
    tags=["loyalist", "ml", "weekly"],
    doc_md=__doc__,
)
def loyalist_retrain():
    @task
    def train_evaluate_promote(data_interval_end=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.pipeline import retrain_models

        # Train as of the last complete day before the run.
        return retrain_models(get_settings(), (data_interval_end - timedelta(days=1)).date())

    train_evaluate_promote()


loyalist_retrain()
