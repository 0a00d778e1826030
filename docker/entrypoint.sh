#!/bin/sh
# Every Airflow container starts here: write the simple auth manager's password file from the secret in
# .env (AIRFLOW_ADMIN_PASSWORD), so no password is baked into the image, then run the given command.
set -eu
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ] && [ -n "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}" ]; then
  python -c 'import json, os; json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]},
    open(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"], "w"))'
fi
exec "$@"
