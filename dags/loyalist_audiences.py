"""loyalist_audiences: after every publish, refresh the masked BI copy and export the automatic audiences.

Scheduled on the asset the daily DAG's ``publish`` task emits (data-aware scheduling), so it runs only
when a new validated readers' copy exists. Exports read that copy, never the working warehouse.
Audiences with ``auto_export: [formats]`` in ``audiences/*.yml`` are exported in each listed format;
every export writes its manifest to the audit file (``loyalist.audiences.privacy``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from loyalist.alerts import notify_failure
from loyalist.assets import PUBLISHED_WAREHOUSE


@dag(
    dag_id="loyalist_audiences",
    description="After each publish: masked BI copy, then every audience marked auto_export",
    schedule=[PUBLISHED_WAREHOUSE],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "crm-marketing",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": notify_failure,
    },
    tags=["loyalist", "audiences", "privacy"],
    doc_md=__doc__,
)
def loyalist_audiences():
    @task
    def publish_bi() -> str:
        from loyalist.audiences.bi import publish_bi
        from loyalist.config import get_settings

        return str(publish_bi(get_settings()))

    @task
    def export_auto_audiences(run_id=None) -> list[dict]:
        from loyalist.audiences.export import export_auto
        from loyalist.config import get_settings

        results = export_auto(get_settings(), triggered_by=f"airflow:loyalist_audiences:{run_id}")
        return [{"audience": r.audience, "format": r.format, "rows": r.row_count, "adds": r.adds,
                 "removes": r.removes, "file": r.file_path} for r in results]

    publish_bi() >> export_auto_audiences()


loyalist_audiences()
