"""loyalist_audience_export: export one audience on demand, chosen in the Airflow UI's trigger form.

Manual only (``schedule=None``). The form offers every audience file in ``audiences/`` and every
format; the as-of date defaults to the published marts' date (an export of another date is refused
with the reason: the marts are one snapshot). Consent, suppression, diff and audit rules are the same
as for the CLI (``loyalist audience export``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from loyalist.alerts import notify_failure
from loyalist.audiences.constants import FORMATS, audience_names

AUDIENCES = audience_names() or ["none"]


@dag(
    dag_id="loyalist_audience_export",
    description="Manual: export one audience in one format (pick them in the trigger form)",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "crm-marketing", "retries": 1, "on_failure_callback": notify_failure},
    params={
        "audience": Param(AUDIENCES[0], type="string", enum=AUDIENCES, title="Audience",
                          description="A definition file in audiences/"),
        "format": Param("csv", type="string", enum=list(FORMATS), title="Format",
                        description="csv/parquet (internal), google_ads, meta (hashed), mailchimp"),
        "as_of": Param("", type="string", title="As-of date",
                       description="YYYY-MM-DD; empty = the date of the published marts"),
    },
    tags=["loyalist", "audiences", "manual"],
    doc_md=__doc__,
)
def loyalist_audience_export():
    @task
    def export(params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from loyalist.audiences.definitions import DefinitionError
        from loyalist.audiences.export import ExportError, export_audience
        from loyalist.config import get_settings

        try:
            result = export_audience(get_settings(), params["audience"], params["format"],
                                     params["as_of"] or None,
                                     triggered_by=f"airflow:loyalist_audience_export:{run_id}")
        except (DefinitionError, ExportError) as exc:  # a wrong choice stays wrong on retry
            raise AirflowFailException(str(exc)) from exc
        return {"rows": result.row_count, "adds": result.adds, "removes": result.removes,
                "file": result.file_path, "manifest": result.manifest_path}

    export()


loyalist_audience_export()
