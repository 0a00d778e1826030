"""loyalist_daily: one day of customer data from landing files to validated, published marts.

ingest -> check_freshness -> validate_raw -> classify_feedback -> dbt_build -> prepare_scoring
-> score_features[partition] -> score[partition] -> collect_scores -> reward_candidates[partition] -> rewards
-> validate_outputs -> publish -> report
(write-audit-publish: readers only ever see a copy that passed every gate). Each task is idempotent: a rerun
of the same data interval replaces what the previous attempt wrote. The work lives in
``loyalist.pipeline``; this file only orchestrates (no I/O or heavy imports at parse time).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from loyalist.alerts import notify_failure
from loyalist.assets import PUBLISHED_WAREHOUSE

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "on_failure_callback": notify_failure,
}


def _fail_without_retry(exc: Exception):
    """Bad or missing data stays bad on retry: fail the task at once (the alert still fires)."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(str(exc))


@dag(
    dag_id="loyalist_daily",
    description="Landing files -> raw (with quarantine) -> freshness + GX gates -> dbt build -> published warehouse",
    # Interval timetable: the run for day D starts after D ends and covers exactly [D, D+1).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1),
    catchup=False,  # history is loaded by the first run (all earlier landing partitions), not by 365 runs
    max_active_runs=1,  # DuckDB has a single writer
    default_args=DEFAULT_ARGS,
    tags=["loyalist", "daily", "crm"],
    doc_md=__doc__,
)
def loyalist_daily():
    @task
    def ingest(data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.pipeline import ingest_interval

        return ingest_interval(get_settings(), data_interval_start, data_interval_end, batch_id=run_id)

    @task
    def check_freshness(data_interval_end=None) -> list[str]:
        from loyalist.config import get_settings
        from loyalist.freshness import FreshnessError
        from loyalist.pipeline import check_sources_fresh

        try:
            return check_sources_fresh(get_settings(), data_interval_end)
        except FreshnessError as exc:
            raise _fail_without_retry(exc) from exc

    @task
    def validate_raw(batch: dict, data_interval_end=None) -> list[str]:
        from loyalist.config import get_settings
        from loyalist.pipeline import DataQualityError, validate_raw_batch

        try:
            return validate_raw_batch(get_settings(), batch["batch_id"], data_interval_end)
        except DataQualityError as exc:
            raise _fail_without_retry(exc) from exc

    @task
    def classify_feedback() -> dict:
        from loyalist.config import get_settings
        from loyalist.pipeline import classify_feedback

        return classify_feedback(get_settings())

    @task
    def dbt_build(data_interval_start=None) -> str:
        from loyalist.config import get_settings
        from loyalist.pipeline import as_of_date, dbt_build

        as_of = as_of_date(data_interval_start)
        dbt_build(get_settings(), as_of)
        return as_of.isoformat()

    # Scoring and rewards run on hash partitions of customers (LOYALIST_SCORE_PARTITIONS, mapped tasks).
    # DuckDB has one writer, so mapped tasks only read the warehouse and write Parquet; one task before
    # them (prepare_scoring) and one after (collect_*) write. See loyalist/partitioned.py.
    @task
    def partitions() -> list[int]:
        from loyalist.config import get_settings

        return list(range(get_settings().score_partitions))

    @task
    def prepare_scoring(data_interval_start=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from loyalist.config import get_settings
        from loyalist.partitioned import prepare_scoring
        from loyalist.pipeline import ScoringUnavailable, as_of_date

        try:
            return prepare_scoring(get_settings(), as_of_date(data_interval_start))
        except ScoringUnavailable as exc:
            # Too little history, or no model good enough to promote yet: the marts are still worth
            # publishing, so skip scoring (with the reason in the log) rather than fail the day.
            raise AirflowSkipException(str(exc)) from exc

    @task
    def score_features(partition: int, parts: list[int], data_interval_start=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.partitioned import feature_partition
        from loyalist.pipeline import as_of_date

        return feature_partition(get_settings(), as_of_date(data_interval_start), partition, len(parts))

    # After every partition's features: the reasons compare a customer with the whole population.
    @task
    def score(partition: int, parts: list[int], data_interval_start=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.partitioned import score_partition
        from loyalist.pipeline import as_of_date

        return score_partition(get_settings(), as_of_date(data_interval_start), partition, len(parts))

    @task
    def collect_scores(parts: list[int], data_interval_start=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.partitioned import collect_scores
        from loyalist.pipeline import as_of_date

        return collect_scores(get_settings(), as_of_date(data_interval_start), len(parts))

    # Runs after skipped scoring (rules that need no scores still apply), never after a failure.
    @task(trigger_rule="none_failed")
    def reward_candidates(partition: int, parts: list[int], data_interval_start=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.partitioned import reward_partition
        from loyalist.pipeline import as_of_date

        return reward_partition(get_settings(), as_of_date(data_interval_start), partition, len(parts))

    # The reward budget is global: allocated here over every partition's candidates.
    @task(trigger_rule="none_failed")
    def rewards(parts: list[int], data_interval_start=None) -> dict:
        from loyalist.config import get_settings
        from loyalist.partitioned import collect_rewards
        from loyalist.pipeline import as_of_date

        return collect_rewards(get_settings(), as_of_date(data_interval_start), len(parts))

    @task(trigger_rule="none_failed")
    def validate_outputs(data_interval_start=None) -> list[str]:
        from loyalist.config import get_settings
        from loyalist.pipeline import DataQualityError, as_of_date, validate_outputs

        try:
            return validate_outputs(get_settings(), as_of_date(data_interval_start))
        except DataQualityError as exc:
            raise _fail_without_retry(exc) from exc

    @task(trigger_rule="none_failed", outlets=[PUBLISHED_WAREHOUSE])  # schedules loyalist_audiences
    def publish() -> str:
        from loyalist.config import get_settings
        from loyalist.pipeline import publish

        return str(publish(get_settings()))

    # Default trigger rule (all_success): a report only describes a copy that was published by this run.
    @task
    def report(data_interval_start=None) -> str:
        from loyalist.config import get_settings
        from loyalist.pipeline import as_of_date, write_run_report

        return str(write_run_report(get_settings(), as_of_date(data_interval_start)))

    batch = ingest()
    gates = batch >> check_freshness() >> validate_raw(batch)
    parts = partitions()
    featured = score_features.partial(parts=parts).expand(partition=parts)
    scored = score.partial(parts=parts).expand(partition=parts)
    candidates = reward_candidates.partial(parts=parts).expand(partition=parts)
    gates >> classify_feedback() >> dbt_build() >> prepare_scoring() >> featured >> scored
    scored >> collect_scores(parts) >> candidates
    candidates >> rewards(parts) >> validate_outputs() >> publish() >> report()


loyalist_daily()
