"""`loyalist` command line: generate sample data, inspect the warehouse, print the input contract.

Errors print as one line (``error: ...``); ``--debug`` shows the full traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import date
from pathlib import Path

from loyalist.config import PROJECT_ROOT, get_settings


def _cmd_generate(args: argparse.Namespace) -> None:
    from loyalist.generate import GeneratorConfig, generate

    cfg = GeneratorConfig(customers=args.customers, days=args.days, seed=args.seed,
                          end_date=date.fromisoformat(args.end_date), dirty_rate=args.dirty_rate)
    out = Path(args.out) if args.out else get_settings().landing_dir
    started = time.perf_counter()
    counts = generate(cfg, out, workers=args.workers)
    took = time.perf_counter() - started
    print(f"generated {cfg.customers:,} customers, {cfg.start_date} .. {cfg.end_date} (seed {cfg.seed}) "
          f"into {out} in {took:.1f}s")
    for entity, n in counts.items():
        print(f"  {entity:<16} {n:>12,} rows")


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


def _cmd_summary(args: argparse.Namespace) -> None:
    from loyalist.pipeline import published_path, table_counts

    settings = get_settings()
    path = published_path(settings)
    if not path.exists():
        raise FileNotFoundError(f"no published warehouse at {path}: run `make demo` (or the DAG) first")
    counts = table_counts(settings, path)
    print(f"Published warehouse: {path}")
    print(f"(pipeline working copy: {settings.warehouse_path})\n")
    for schema in ("marts", "staging", "raw"):
        rows = {k: v for k, v in counts.items() if k.startswith(schema + ".")}
        if rows:
            print(f"{schema}:")
            for name, n in rows.items():
                print(f"  {name:<40} {n:>12,}")
    from loyalist.pipeline import distributions, gx_project_root

    for title, rows in distributions(settings, path).items():
        total = sum(n for _, n in rows) or 1
        print(f"\n{title}:")
        for value, n in rows:
            share = f"  {n / total:6.1%}" if len(rows) > 1 else " customers"
            print(f"  {value:<38} {n:>10,}{share}")

    docs = gx_project_root(settings) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    if docs.exists():
        print(f"\nGX Data Docs (validation results): {docs}")
    print("\nQuery it:\n  .venv/bin/loyalist sql \"select * from marts.customers limit 5\"\n"
          f"  or any DuckDB client, read-only: duckdb -readonly {path}")


def _cmd_sql(args: argparse.Namespace) -> None:
    from loyalist.pipeline import published_path
    from loyalist.warehouse import connect

    settings = get_settings()
    path = Path(args.database) if args.database else published_path(settings)
    with connect(settings, path, read_only=True) as con:
        con.sql(args.query).show(max_rows=args.max_rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalist", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write seeded sample landing data (docs/sample_data.md)")
    g.add_argument("--customers", type=int, default=20_000)
    g.add_argument("--days", type=int, default=365)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--end-date", default="2025-12-31", help="last day with data (YYYY-MM-DD)")
    g.add_argument("--dirty-rate", type=float, default=0.0005, help="share of order rows deliberately broken")
    g.add_argument("--out", help="landing folder (default: $LOYALIST_LANDING_DIR or data/landing)")
    g.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes generating chunks of 50k customers in parallel (output is the same)")
    g.set_defaults(func=_cmd_generate)

    c = sub.add_parser("contract", help="print the input contract as Markdown")
    c.add_argument("--write", action="store_true", help="write docs/input_contract.md")
    c.set_defaults(func=_cmd_contract)

    s = sub.add_parser("summary", help="row counts of the published warehouse and how to query it")
    s.set_defaults(func=_cmd_summary)

    q = sub.add_parser("sql", help="run a read-only query against the published warehouse")
    q.add_argument("query")
    q.add_argument("--database", help="DuckDB file (default: the published copy)")
    q.add_argument("--max-rows", type=int, default=40)
    q.set_defaults(func=_cmd_sql)

    from loyalist.audiences.cli import add_commands  # audience list|validate|export, forget

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except Exception as exc:  # one clear line for users; the traceback only on request
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
