"""Airflow assets shared by the Loyalist DAGs (defined once; imported by producer and consumers).

The only module of the package that imports Airflow: it names the data the DAGs hand to each other,
and lives here (not in dags/) so that every process that parses the DAGs can import it.
"""

from __future__ import annotations

from airflow.sdk import Asset

# The validated readers' copy that `loyalist_daily.publish` swaps in (loyalist.pipeline.published_path).
# Consumers (e.g. loyalist_audiences) run when a publish succeeded.
PUBLISHED_WAREHOUSE = Asset(name="loyalist_published_warehouse", uri="loyalist://published/warehouse")
