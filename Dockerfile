# The image every Airflow service of docker-compose.yml runs: Airflow 3 + Loyalist, installed from uv.lock
# (the same versions CI tests), plus the Celery provider the compose stack's executor needs.
FROM python:3.11.11-slim-bookworm

# uv pinned to the version the project locks with.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/loyalist/.venv \
    PATH=/opt/loyalist/.venv/bin:$PATH AIRFLOW_HOME=/opt/airflow
WORKDIR /opt/loyalist

# Dependencies first (cached while only the code changes), exactly as locked; no dev tools.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

# CeleryExecutor: the provider is not a project dependency (LocalExecutor needs none). Installed with the
# lock as constraints, so it cannot move any locked version. celery stays on 5.5: provider 3.26.0 imports
# celery.backends.database.retry, which celery 5.6 removed (seen with scripts/e2e_airflow.py --executor celery).
RUN uv export --frozen --no-dev --no-hashes --no-emit-project > /tmp/constraints.txt \
    && uv pip install --python /opt/loyalist/.venv/bin/python -c /tmp/constraints.txt \
       "apache-airflow-providers-celery==3.26.0" "celery[redis]==5.5.3" \
    && rm /tmp/constraints.txt

COPY loyalist loyalist
COPY ml ml
COPY expectations expectations
COPY dbt_project dbt_project
COPY dags dags
RUN uv sync --frozen --no-dev --inexact

COPY docker/entrypoint.sh /usr/local/bin/loyalist-entrypoint
RUN chmod 0755 /usr/local/bin/loyalist-entrypoint && mkdir -p /opt/airflow /data /landing \
    && chmod -R g+rwX /opt/airflow /data /landing /opt/loyalist/dbt_project
ENTRYPOINT ["/usr/local/bin/loyalist-entrypoint"]
