"""`make e2e-airflow`: run loyalist_daily on a real Airflow 3 deployment on this machine, then tear it down.

What it starts (each in its own process group, all stopped in ``finally`` - also on failure and CTRL-C):

* metadata DB: a dedicated database ``loyalist_airflow_e2e`` on the local PostgreSQL (dropped and
  recreated each run, dropped again after a successful run), migrated with ``airflow db migrate``;
* ``airflow api-server`` on a free port, ``airflow scheduler``, ``airflow dag-processor``, and with the
  CeleryExecutor also ``airflow celery worker`` (broker: the local Redis, a database index of its own).

Then it generates a small sample into a temp data dir, unpauses ``loyalist_daily`` and triggers it for the
day before the sample's last day through the REST API (``POST /api/v2/dags/{dag_id}/dagRuns`` with a JWT
from the simple auth manager's ``POST /auth/token``), then runs the last day with ``airflow backfill
create``. It polls each run until it ends (on failure it prints the failed tasks' logs), and checks that
the published warehouse copy holds the marts, the scores and the rewards up to the last day.

The scheduler runs with ``use_job_schedule = False``: unpausing a DAG with ``catchup=False`` would
otherwise make the scheduler create a run for the latest (today's) interval, for which the sample has no
data. Manually triggered runs still run - that is what this script exercises.

Executor (``--executor``): ``auto`` (default) takes the CeleryExecutor when ``apache-airflow-providers-celery``
is installed and the local Redis answers, else the LocalExecutor, and says which and why. The provider is
not in the project's lock file (the compose image installs it), so a plain ``make install`` gets the
LocalExecutor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DAG_ID = "loyalist_daily"


def log(msg: str) -> None:
    print(f"[e2e-airflow {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Failure(RuntimeError):
    """The end-to-end check failed; the message says where."""


# ------------------------------------------------------------------------------------------ metadata DB


def recreate_database(admin_dsn: str, name: str, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as con:
        # A previous run killed mid-way may still hold connections: the drop would block on them.
        con.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s "
                    "and pid <> pg_backend_pid()", [name])
        con.execute(f'drop database if exists "{name}"')
        if not drop_only:
            con.execute(f'create database "{name}"')


# ------------------------------------------------------------------------------------------ processes


class Processes:
    """Airflow components, each in its own session (process group) so that its children stop too."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs, self.env, self.procs = logs, env, {}

    def start(self, name: str, *args: str) -> None:
        out = (self.logs / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen([str(VENV_BIN / "airflow"), *args], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        log(f"started airflow {' '.join(args)} (pid {self.procs[name].pid}, log {out.name})")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise Failure(f"airflow {name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM: SIGKILL")
            # The group may hold children (task runners, gunicorn/uvicorn workers) after the leader is gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log(f"stopped {len(self.procs)} airflow processes")


# ------------------------------------------------------------------------------------------ REST API


class Api:
    def __init__(self, base: str):
        self.base, self.token = base, None

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True, raw: bool = False):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read().decode()
        return data if raw else json.loads(data)

    def login(self, user: str, password: str) -> None:
        self.token = self.call("POST", "/auth/token", {"username": user, "password": password},
                               auth=False)["access_token"]


def wait_for(what: str, probe, timeout: float, procs: Processes, every: float = 2.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            result = probe()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
            last = exc
        time.sleep(every)
    raise Failure(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


def render_log(raw: str) -> str:
    """The API's structured task log (JSON events) as plain lines: time level event [error detail]."""
    lines = []
    for e in json.loads(raw).get("content", []):
        if not isinstance(e, dict) or str(e.get("event", "")).startswith("::"):
            continue
        line = f"{e.get('timestamp', '')} {e.get('level', '')} {e.get('event', '')}"
        if e.get("error_detail"):
            line += f"\n    {json.dumps(e['error_detail'])[:3000]}"
        lines.append(line)
    return "\n".join(lines)


def failed_task_logs(api: Api, run_id: str, airflow_home: Path) -> str:
    tis = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    out = ["task states: " + ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}" for t in tis)]
    for ti in tis:
        if ti["state"] not in ("failed", "up_for_retry"):
            continue
        query = f"?full_content=true&map_index={ti['map_index']}"
        try:
            raw = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
                                  f"/logs/{max(1, ti['try_number'])}{query}", raw=True)
            content = render_log(raw)
        except (urllib.error.HTTPError, ValueError) as exc:
            files = sorted(airflow_home.glob(f"logs/dag_id={DAG_ID}/**/task_id={ti['task_id']}/**/*.log"))
            content = files[-1].read_text(errors="replace") if files else f"(no log: {exc})"
        out.append(f"----- log of failed task {_label(ti)} (try {ti['try_number']}) -----\n"
                   + "\n".join(content.splitlines()[-80:]))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ the check


def _label(ti: dict) -> str:
    return ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"


def choose_executor(wanted: str, redis_url: str) -> tuple[str, str]:
    """("local" | "celery", why) for --executor local|celery|auto."""
    if wanted == "local":
        return "local", "asked for"
    import importlib.util

    missing = None
    if importlib.util.find_spec("airflow.providers.celery") is None:
        missing = "apache-airflow-providers-celery is not installed (not in uv.lock)"
    else:
        try:
            import redis

            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except Exception as exc:  # noqa: BLE001 - any failure means: no usable broker
            missing = f"no Redis at {redis_url} ({exc})"
    if missing is None:
        return "celery", f"provider installed, Redis at {redis_url} answers"
    if wanted == "celery":
        raise Failure(f"CeleryExecutor asked for, but {missing}")
    return "local", f"CeleryExecutor not possible: {missing}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_warehouse(data_dir: Path, landing: Path) -> tuple[dict[str, int], str]:
    """(row counts of the published copy, its last order day) after checking the marts and ML tables."""
    env = {**os.environ, "LOYALIST_DATA_DIR": str(data_dir), "LOYALIST_LANDING_DIR": str(landing)}
    code = ("import json; from loyalist.config import get_settings; from loyalist.pipeline import table_counts, "
            "published_path; from loyalist.warehouse import connect; s = get_settings(); c = table_counts(s); "
            "con = connect(s, published_path(s), read_only=True); "
            "last = con.execute('select max(ordered_at)::date from marts.transactions').fetchone()[0]; "
            "print(json.dumps({'counts': c, 'last_day': str(last)}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise Failure(f"cannot read the published warehouse: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    counts = out["counts"]
    for table in ("marts.customers", "marts.transactions", "marts.customer_segments", "ml.churn_scores",
                  "ml.clv_predictions", "ml.reward_eligibility"):
        if counts.get(table, 0) <= 0:
            raise Failure(f"published warehouse: {table} is empty or missing ({counts})")
    return counts, out["last_day"]


def wait_for_run(api: Api, procs: Processes, run_id: str, timeout: float, airflow_home: Path) -> list[dict]:
    """Poll a DAG run until it ends; its task instances on success, Failure with the failed logs otherwise."""
    started, state, seen = time.monotonic(), None, None
    while time.monotonic() - started < timeout:
        procs.check_alive()
        state = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        tis = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
        progress = " ".join(sorted(f"{_label(t)}={t['state']}" for t in tis if t["state"]))
        if progress != seen:
            log(f"{run_id} {state}: {progress}")
            seen = progress
        if state in ("success", "failed"):
            break
        time.sleep(5)
    took = time.monotonic() - started
    if state != "success":
        raise Failure(f"DAG run {run_id} ended {state!r} after {took:.0f}s\n"
                      + failed_task_logs(api, run_id, airflow_home))
    log(f"DAG run {run_id} succeeded in {took:.0f}s")
    return tis


def run(args: argparse.Namespace, work: Path) -> None:
    data_dir, airflow_home, logs = work / "data", work / "airflow", work / "logs"
    for d in (data_dir, airflow_home, logs):
        d.mkdir(parents=True)
    end = date.fromisoformat(args.end_date)
    landing = data_dir / "landing"
    log(f"generating {args.customers} customers x {args.days} days ending {end} into {landing}")
    subprocess.run([str(VENV_BIN / "loyalist"), "generate", "--customers", str(args.customers), "--days",
                    str(args.days), "--seed", "7", "--end-date", end.isoformat(), "--out", str(landing)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**os.environ, "LOYALIST_DATA_DIR": str(data_dir)})

    port = free_port()
    user, password = "e2e", secrets.token_urlsafe(16)
    passwords = airflow_home / "passwords.json"
    passwords.write_text(json.dumps({user: password}))
    executor, why = choose_executor(args.executor, args.redis_url)
    log(f"executor: {executor} ({why})")
    metadata_url = f"postgresql+psycopg://{args.pg_user}@{args.pg_host}:{args.pg_port}/{args.database}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        # psycopg 3 (in the lock file) serves both engines; Airflow would derive asyncpg (not installed) otherwise.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if executor == "celery" else "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__WORKERS": "1",
        # Scheduler and API server sign and check the task runners' tokens: one shared secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "LOYALIST_DATA_DIR": str(data_dir),
        "LOYALIST_LANDING_DIR": str(landing),
        "LOYALIST_DUCKDB_MEMORY_LIMIT": "1GB",
        "LOYALIST_SCORE_PARTITIONS": str(args.partitions),
    }
    if executor == "celery":
        import redis

        # The broker database is this script's own: drop task messages a killed earlier run left behind.
        redis.Redis.from_url(args.redis_url).flushdb()
        env["AIRFLOW__CELERY__BROKER_URL"] = args.redis_url
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = (f"db+postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/"
                                                  f"{args.database}")
    admin_dsn = f"host={args.pg_host} port={args.pg_port} user={args.pg_user} dbname=postgres"
    log(f"metadata DB: recreating database {args.database} on {args.pg_host}:{args.pg_port}")
    recreate_database(admin_dsn, args.database)
    migrate = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True,
                             timeout=600)
    if migrate.returncode != 0:
        raise Failure("airflow db migrate failed:\n" + (migrate.stdout + migrate.stderr)[-4000:])
    log("airflow db migrate: done")

    procs = Processes(logs, env)
    succeeded = False
    try:
        procs.start("api-server", "api-server", "--port", str(port))
        procs.start("scheduler", "scheduler")
        procs.start("dag-processor", "dag-processor")
        if executor == "celery":
            procs.start("celery-worker", "celery", "worker", "--concurrency", "2")
        api = Api(f"http://127.0.0.1:{port}")
        wait_for("the API server", lambda: api.call("GET", "/api/v2/monitor/health", auth=False), 180, procs)
        api.login(user, password)
        log("API server up, JWT obtained from POST /auth/token")
        dag = wait_for(f"{DAG_ID} to be parsed by the dag-processor",
                       lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}"), 240, procs)
        log(f"{DAG_ID} is registered (paused: {dag['is_paused']})")
        api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        # 1. A manual run for the day before the sample's last day, triggered through the REST API. Its logical
        #    date is the interval start, as for the timetable's own runs (a backfill of that date would skip it).
        first_day = end - timedelta(days=1)
        run_id = f"e2e__{first_day.isoformat()}__{secrets.token_hex(3)}"
        start_ts, end_ts = f"{first_day.isoformat()}T00:00:00Z", f"{end.isoformat()}T00:00:00Z"
        created = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {
            "dag_run_id": run_id, "logical_date": start_ts, "data_interval_start": start_ts,
            "data_interval_end": end_ts})
        log(f"triggered {run_id}: data interval [{created['data_interval_start']}, {created['data_interval_end']})")
        tis = wait_for_run(api, procs, run_id, args.timeout, airflow_home)
        if args.partitions > 1:
            mapped = sorted(_label(t) for t in tis if t["map_index"] >= 0)
            expected = sorted(f"{task}[{i}]" for task in ("reward_candidates", "score", "score_features")
                              for i in range(args.partitions))
            if mapped != expected:
                raise Failure(f"expected the mapped tasks {expected}, got {mapped}")
        # 2. The last day through a backfill (the way docs/deployment.md tells operators to re-run days).
        backfill = subprocess.run([str(VENV_BIN / "airflow"), "backfill", "create", "--dag-id", DAG_ID,
                                   "--from-date", end.isoformat(), "--to-date", end.isoformat(),
                                   "--max-active-runs", "1"], env=env, capture_output=True, text=True, timeout=300)
        if backfill.returncode != 0:
            raise Failure("airflow backfill create failed:\n" + (backfill.stdout + backfill.stderr)[-3000:])
        runs = wait_for("the backfill's run", lambda: [r for r in api.call(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"] if r["run_type"] == "backfill"], 120, procs)
        if len(runs) != 1 or not runs[0]["data_interval_start"].startswith(end.isoformat()):
            raise Failure(f"expected one backfill run for the interval starting {end}: {runs}")
        log(f"backfill created {runs[0]['dag_run_id']}: data interval [{runs[0]['data_interval_start']}, "
            f"{runs[0]['data_interval_end']})")
        wait_for_run(api, procs, runs[0]["dag_run_id"], args.timeout, airflow_home)
        counts, last_day = check_warehouse(data_dir, landing)
        if last_day != end.isoformat():
            raise Failure(f"the published copy's last order day is {last_day}, not the backfilled day {end}")
        log(f"published warehouse (last order day {last_day}): " + ", ".join(
            f"{k}={v}" for k, v in sorted(counts.items()) if k.startswith(("marts.", "ml."))))
        succeeded = True
    except Exception:
        for name in procs.procs:
            print(f"----- last lines of {name} -----\n{procs.tail(name, 25)}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        if succeeded and not args.keep:
            recreate_database(admin_dsn, args.database, drop_only=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--end-date", default="2025-03-31")
    parser.add_argument("--partitions", type=int, default=2, help="LOYALIST_SCORE_PARTITIONS for the run")
    parser.add_argument("--executor", choices=("auto", "local", "celery"), default="auto")
    parser.add_argument("--redis-url", default=os.environ.get("LOYALIST_E2E_REDIS_URL", "redis://127.0.0.1:6379/11"),
                        help="Celery broker (a database index of its own, so other users of the Redis are not touched)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the DAG run")
    parser.add_argument("--database", default="loyalist_airflow_e2e")
    parser.add_argument("--pg-host", default=os.environ.get("LOYALIST_E2E_PG_HOST", "127.0.0.1"))
    parser.add_argument("--pg-port", default=os.environ.get("LOYALIST_E2E_PG_PORT", "5432"))
    parser.add_argument("--pg-user", default=os.environ.get("LOYALIST_E2E_PG_USER", "postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and the metadata DB")
    args = parser.parse_args(argv)
    # SIGTERM (e.g. CI cancelling the job) unwinds like CTRL-C, through the finally blocks above.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="loyalist-e2e-airflow-"))
    ok = False
    try:
        run(args, work)
        ok = True
        log("OK")
        return 0
    except Failure as exc:
        log(f"FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted: everything started was stopped")
        return 130
    finally:
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} for inspection")


if __name__ == "__main__":
    sys.exit(main())
