"""`loyalist`: generate sample data, run the daily pipeline, score, report, and query the warehouse.

Errors print as one line (``error: ...``); ``--debug`` shows the full traceback. Long work (sample
generation, multi-day runs) shows a progress bar on stderr, so stdout stays clean for scripts.

Each subcommand is one ``_register_<name>(subparsers)`` function listed in ``COMMANDS``: add a command by
writing its function and appending it there.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from loyalist.config import PROJECT_ROOT, get_settings


class CliError(Exception):
    """A user-facing failure: printed as one line."""


def _progress():
    """A rich progress bar on stderr (transient on a terminal, a final line otherwise)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


# --- generate ---------------------------------------------------------------------------------------------

def _cmd_generate(args: argparse.Namespace) -> None:
    from loyalist.generate import GeneratorConfig, chunk_count, generate

    cfg = GeneratorConfig(customers=args.customers, days=args.days, seed=args.seed,
                          end_date=args.end_date, dirty_rate=args.dirty_rate)
    out = Path(args.out) if args.out else get_settings().landing_dir
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"generating {cfg.customers:,} customers", total=chunk_count(cfg))
        counts = generate(cfg, out, workers=args.workers, on_chunk=lambda: progress.advance(task))
    took = time.perf_counter() - started
    print(f"generated {cfg.customers:,} customers, {cfg.start_date} .. {cfg.end_date} (seed {cfg.seed}) "
          f"into {out} in {took:.1f}s")
    for entity, n in counts.items():
        print(f"  {entity:<16} {n:>12,} rows")


def _register_generate(sub) -> None:
    g = sub.add_parser("generate", help="write seeded sample landing data (docs/sample_data.md)")
    g.add_argument("--customers", type=int, default=20_000)
    g.add_argument("--days", type=int, default=365)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--end-date", type=_day, default=date(2025, 12, 31), help="last day with data (YYYY-MM-DD)")
    g.add_argument("--dirty-rate", type=float, default=0.0005, help="share of order rows deliberately broken")
    g.add_argument("--out", help="landing folder (default: $LOYALIST_LANDING_DIR or data/landing)")
    g.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes generating chunks of 50k customers in parallel (output is the same)")
    g.set_defaults(func=_cmd_generate)


# --- run: the daily DAG, for one day or a range of days ---------------------------------------------------

DAG_ID = "loyalist_daily"
TASK_IN_LOG = re.compile(r"task_id=([a-z_]+)")


def airflow_env() -> dict[str, str]:
    """The embedded defaults of the Makefile: Airflow on SQLite under .loyalist/, unless set already."""
    env = dict(os.environ)
    defaults = {
        "AIRFLOW_HOME": str(PROJECT_ROOT / ".loyalist" / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def _airflow() -> str:
    exe = Path(sys.executable).with_name("airflow")
    return str(exe) if exe.exists() else "airflow"


def _ensure_airflow_db(env: dict[str, str]) -> None:
    home = Path(env["AIRFLOW_HOME"])
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in env or (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([_airflow(), "db", "migrate"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CliError(f"airflow db migrate failed in {home}: {(proc.stderr or proc.stdout).strip()[-300:]}")


def run_days(first: date, last: date) -> list[date]:
    if last < first:
        raise CliError(f"--end {last} is before --start {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _run_one_day(day: date, env: dict[str, str], log_dir: Path, on_task: Callable[[str], None]) -> Path:
    """``airflow dags test`` of the run covering ``day`` (logical date ``day + 1``); raise CliError on failure."""
    logical = day + timedelta(days=1)
    log_path = log_dir / f"{DAG_ID}-{logical}.log"
    last_finished = ""
    with log_path.open("w", encoding="utf-8") as log, subprocess.Popen(
            [_airflow(), "dags", "test", DAG_ID, logical.isoformat()], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            if "DagRun Finished" in line:
                last_finished = line
            match = TASK_IN_LOG.search(line)
            if match:
                on_task(match.group(1))
    if proc.returncode != 0 or "state=success" not in last_finished:
        failed = [ln.strip() for ln in log_path.read_text(encoding="utf-8").splitlines()
                  if "ERROR" in ln or "Error" in ln]
        hint = f": {failed[-1][:300]}" if failed else ""
        raise CliError(f"the run for {day} failed{hint} (full log: {log_path})")
    return log_path


def _cmd_run(args: argparse.Namespace) -> None:
    if args.date and (args.start or args.end):
        raise CliError("give either a date or --start/--end, not both")
    if args.date:
        days = [args.date]
    elif args.start and args.end:
        days = run_days(args.start, args.end)
    else:
        raise CliError("give a date (loyalist run 2025-12-31) or a range (--start 2025-12-01 --end 2025-12-31)")
    env = airflow_env()
    _ensure_airflow_db(env)
    log_dir = Path(env["AIRFLOW_HOME"]) / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _progress() as progress:
        bar = progress.add_task(f"{DAG_ID} {days[0]}", total=len(days))
        for day in days:
            progress.update(bar, description=f"{DAG_ID} {day}")
            _run_one_day(day, env, log_dir,
                         lambda task_id, day=day: progress.update(bar, description=f"{DAG_ID} {day} · {task_id}"))
            progress.advance(bar)
    print(f"ran {DAG_ID} for {len(days)} day(s), {days[0]} .. {days[-1]}, in {time.perf_counter() - started:.0f}s "
          f"(logs: {log_dir})")
    _print_report_path()


def _register_run(sub) -> None:
    r = sub.add_parser("run", help="run the daily DAG (airflow dags test) for a day or a range of days",
                       description="Run the loyalist_daily DAG for each day with data: the run for day D covers "
                                   "[D, D+1) (Airflow logical date D+1). Uses $AIRFLOW_HOME (default "
                                   ".loyalist/airflow), creating its database if missing.")
    r.add_argument("date", nargs="?", type=_day, help="the day whose data to process (YYYY-MM-DD)")
    r.add_argument("--start", type=_day, help="first day of a range")
    r.add_argument("--end", type=_day, help="last day of a range (inclusive)")
    r.set_defaults(func=_cmd_run)


# --- score ------------------------------------------------------------------------------------------------

def _latest_as_of() -> date:
    from loyalist.warehouse import connect

    settings = get_settings()
    if not settings.warehouse_path.exists():
        raise CliError(f"no warehouse at {settings.warehouse_path}: run `loyalist run` first")
    with connect(settings, read_only=True) as con:
        value = con.execute("select max(as_of_date) from marts.customers").fetchone()[0]
    if value is None:
        raise CliError("marts.customers is empty: run `loyalist run` first")
    return value


def _cmd_score(args: argparse.Namespace) -> None:
    from loyalist.pipeline import ScoringUnavailable, retrain_models, score_customers

    settings = get_settings()
    as_of = args.as_of or _latest_as_of()
    if args.retrain:
        summary = retrain_models(settings, as_of)
        print(f"trained {summary['model_version']}: churn {summary['churn']['reason']}")
    try:
        result = score_customers(settings, as_of)
    except ScoringUnavailable as exc:
        raise CliError(f"cannot score as of {as_of}: {exc}") from exc
    print(f"scored {result['churn_scores']:,} customers as of {as_of} with churn model "
          f"{result['churn_model_version']} and CLV model {result['clv_model_version']}")
    for band, n in result["risk_bands"].items():
        print(f"  {band:<8} {n:>10,}")
    print(f"written to {settings.warehouse_path} (ml.churn_scores, ml.clv_predictions); "
          "the next daily run validates and publishes them")


def _register_score(sub) -> None:
    s = sub.add_parser("score", help="score churn and CLV in the pipeline's warehouse (trains if no model yet)")
    s.add_argument("--as-of", type=_day, help="scoring date (default: the warehouse's latest as-of date)")
    s.add_argument("--retrain", action="store_true", help="train, evaluate and maybe promote a model first")
    s.set_defaults(func=_cmd_score)


# --- report -----------------------------------------------------------------------------------------------

def _print_report_path() -> None:
    from loyalist.report import reports_dir

    latest = reports_dir(get_settings()) / "latest.html"
    if latest.exists():
        print(f"Run report: {latest}")


def _cmd_report(args: argparse.Namespace) -> None:
    from loyalist.report import write_report

    settings = get_settings()
    if args.dbt_docs:
        from loyalist.pipeline import dbt_docs

        dbt_docs(settings, args.as_of or _latest_as_of())
    path = write_report(settings, Path(args.database) if args.database else None,
                        Path(args.out) if args.out else None)
    print(f"Run report: {path}")
    print(f"  (same as {path.with_name('latest.html')}; open it in any browser, no network needed)")


def _register_report(sub) -> None:
    r = sub.add_parser("report", help="write the HTML run report (data/reports/run-<date>.html and latest.html)")
    r.add_argument("--database", help="DuckDB file to report on (default: the published copy)")
    r.add_argument("--out", help="folder for the report (default: $LOYALIST_DATA_DIR/reports)")
    r.add_argument("--dbt-docs", action="store_true",
                   help="also (re)build the dbt docs it links to (dbt docs generate --static)")
    r.add_argument("--as-of", type=_day, help="as-of date for --dbt-docs (default: the warehouse's latest)")
    r.set_defaults(func=_cmd_report)


# --- summary, sql, contract -------------------------------------------------------------------------------

def _cmd_summary(args: argparse.Namespace) -> None:
    from loyalist.pipeline import distributions, gx_project_root, published_path, table_counts

    settings = get_settings()
    path = published_path(settings)
    if not path.exists():
        raise CliError(f"no published warehouse at {path}: run `make demo` (or the DAG) first")
    counts = table_counts(settings, path)
    print(f"Published warehouse: {path}")
    print(f"(pipeline working copy: {settings.warehouse_path})\n")
    for schema in ("marts", "staging", "raw"):
        rows = {k: v for k, v in counts.items() if k.startswith(schema + ".")}
        if rows:
            print(f"{schema}:")
            for name, n in rows.items():
                print(f"  {name:<40} {n:>12,}")

    for title, rows in distributions(settings, path).items():
        total = sum(n for _, n in rows) or 1
        print(f"\n{title}:")
        for value, n in rows:
            share = f"  {n / total:6.1%}" if len(rows) > 1 else " customers"
            print(f"  {value:<38} {n:>10,}{share}")

    docs = gx_project_root(settings) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    if docs.exists():
        print(f"\nGX Data Docs (validation results): {docs}")
    from loyalist.report import dbt_docs_dir

    dbt_docs = dbt_docs_dir(settings) / "static_index.html"
    if dbt_docs.exists():
        print(f"dbt docs (models, columns, tests, lineage): {dbt_docs}")
    print("\nQuery it:\n  .venv/bin/loyalist sql \"select * from marts.customers limit 5\"\n"
          f"  or any DuckDB client, read-only: duckdb -readonly {path}")
    print()
    _print_report_path()


def _register_summary(sub) -> None:
    s = sub.add_parser("summary", help="row counts of the published warehouse and how to query it")
    s.set_defaults(func=_cmd_summary)


def _cmd_sql(args: argparse.Namespace) -> None:
    from loyalist.pipeline import published_path
    from loyalist.warehouse import connect

    settings = get_settings()
    path = Path(args.database) if args.database else published_path(settings)
    with connect(settings, path, read_only=True) as con:
        con.sql(args.query).show(max_rows=args.max_rows)


def _register_sql(sub) -> None:
    q = sub.add_parser("sql", help="run a read-only query against the published warehouse")
    q.add_argument("query")
    q.add_argument("--database", help="DuckDB file (default: the published copy)")
    q.add_argument("--max-rows", type=int, default=40)
    q.set_defaults(func=_cmd_sql)


def _cmd_contract(args: argparse.Namespace) -> None:
    from loyalist.contracts import contract_markdown

    text = contract_markdown()
    if args.write:
        path = PROJECT_ROOT / "docs" / "input_contract.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {path}")
    else:
        print(text)


def _register_contract(sub) -> None:
    c = sub.add_parser("contract", help="print the input contract as Markdown")
    c.add_argument("--write", action="store_true", help="write docs/input_contract.md")
    c.set_defaults(func=_cmd_contract)


def _register_audiences(sub) -> None:
    from loyalist.audiences.cli import add_commands  # audience list|validate|export|suppress, forget

    add_commands(sub)


# The subcommands, in the order `loyalist --help` lists them. New commands: add a _register_* function here.
COMMANDS: list[Callable] = [
    _register_generate,
    _register_run,
    _register_score,
    _register_report,
    _register_audiences,
    _register_summary,
    _register_sql,
    _register_contract,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalist", description=__doc__.splitlines()[0].replace("`", ""))
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line for users; the traceback only on request
        if args.debug:
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
