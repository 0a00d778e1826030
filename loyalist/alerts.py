"""Failure notifications: always a log line; a JSON POST to a webhook when one is configured.

Set LOYALIST_ALERT_WEBHOOK_URL (Slack/Teams/any HTTP endpoint) to receive
``{"dag_id", "task_id", "run_id", "try_number", "error", "log_url"}``. A notification never raises:
a broken alert channel must not hide the original failure.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def failure_payload(context: dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    return {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error": str(context.get("exception") or "")[:2000],
        "log_url": getattr(ti, "log_url", None),
    }


def send_webhook(url: str, payload: dict[str, Any], timeout_s: float = 10) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (URL is operator config)
        response.read()


def notify_failure(context: dict[str, Any]) -> None:
    """Airflow ``on_failure_callback``."""
    payload = failure_payload(context)
    log.error("loyalist task failed: %s.%s run %s: %s", payload["dag_id"], payload["task_id"], payload["run_id"],
              payload["error"])
    url = os.environ.get("LOYALIST_ALERT_WEBHOOK_URL")
    if not url:
        return
    try:
        send_webhook(url, payload)
    except Exception as exc:  # noqa: BLE001 - see module docstring
        log.error("failure webhook %s could not be reached: %s", url, exc)
