"""A small run log: one JSON line per pipeline step (when, how long, outcome), read by the run report.

Airflow keeps task durations in its metadata database, which tasks cannot read (Airflow 3 task SDK)
and which differs per deployment; the pipeline writes its own log under ``$LOYALIST_DATA_DIR/runs/`` so
the report shows the same run health whether the steps ran under Airflow, the CLI or a test.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from loyalist.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
# The step that starts a daily run: the report reads every step logged since the latest one of these.
FIRST_STEP = "ingest"
MAX_DETAIL_CHARS = 4000


def log_path(settings: Settings) -> Path:
    return settings.data_dir / "runs" / "steps.jsonl"


def _detail(value: Any) -> Any:
    """What is worth keeping of a step's result: lists of strings (validation outcomes) and small dicts."""
    text = json.dumps(value, default=str)
    return value if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "…"


def append(settings: Settings, entry: dict) -> None:
    path = log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:  # one short line per write: appends do not interleave
        fh.write(json.dumps(entry, default=str, ensure_ascii=False) + "\n")


def logged_step(name: str, skipped: tuple[type[Exception], ...] = ()) -> Callable[[F], F]:
    """Decorate a pipeline step ``fn(settings, ...)``: log its start, duration and outcome (then re-raise).

    An exception of a ``skipped`` type is logged as ``skipped`` (the DAG skips the task), any other as ``failed``.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(settings: Settings, *args, **kwargs):
            started = datetime.now(UTC)
            clock = time.perf_counter()
            entry = {"step": name, "started_at": started.isoformat()}
            try:
                result = fn(settings, *args, **kwargs)
            except Exception as exc:
                status = "skipped" if isinstance(exc, skipped) else "failed"
                append(settings, {**entry, "seconds": round(time.perf_counter() - clock, 2), "status": status,
                                  "detail": str(exc)[:MAX_DETAIL_CHARS]})
                raise
            append(settings, {**entry, "seconds": round(time.perf_counter() - clock, 2), "status": "success",
                              "detail": _detail(result)})
            return result

        return run  # type: ignore[return-value]

    return wrap


def latest_run(settings: Settings) -> list[dict]:
    """The steps of the latest run: every entry from the last ``FIRST_STEP`` on (all entries if none)."""
    path = log_path(settings)
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a killed process: skip it
    starts = [i for i, e in enumerate(entries) if e.get("step") == FIRST_STEP]
    return entries[starts[-1]:] if starts else entries
