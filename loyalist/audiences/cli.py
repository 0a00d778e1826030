"""`loyalist audience ...` and `loyalist forget`: argparse wiring and output; the work is in this package.

``loyalist/cli.py`` only calls ``add_commands``; errors propagate to its one-line handler.
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import date
from pathlib import Path

from loyalist.audiences.constants import CHANNELS, FORMATS
from loyalist.config import get_settings


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli:unknown"


def _cmd_list(args: argparse.Namespace) -> None:
    from loyalist.audiences.definitions import load_all

    audiences = load_all(Path(args.dir)) if args.dir else load_all()
    for a in audiences.values():
        auto = ", ".join(a.auto_export_formats) or "-"
        print(f"{a.name:<32} channel={a.channel:<6} auto_export={auto:<20} owner={a.owner}")
        print(f"  {a.description}")


def _cmd_validate(args: argparse.Namespace) -> None:
    from loyalist.audiences.definitions import load_all
    from loyalist.audiences.query import build_query

    audiences = load_all(Path(args.dir)) if args.dir else load_all()
    for a in audiences.values():
        build_query(a, date.today())
    print(f"{len(audiences)} audience definition(s) valid: {', '.join(audiences)}")


def _cmd_export(args: argparse.Namespace) -> None:
    from loyalist.audiences.export import export_audience

    kwargs = {"audiences_dir": Path(args.dir)} if args.dir else {}
    r = export_audience(get_settings(), args.name, args.format, args.as_of, Path(args.out) if args.out else None,
                        triggered_by=_who(), **kwargs)
    print(f"exported {r.audience} ({r.format}, as of {r.as_of_date}): {r.row_count} rows, +{r.adds} / -{r.removes} "
          f"since the previous export, {r.suppressed} suppressed")
    print(f"  file      {r.file_path}\n  sha256    {r.file_sha256}\n  manifest  {r.manifest_path}")


def _cmd_suppress(args: argparse.Namespace) -> None:
    from loyalist.audiences.privacy import add_suppressions

    kind, value = ("email", args.email) if args.email else ("phone", args.phone) if args.phone else \
        ("customer", args.customer_id)
    if not add_suppressions(get_settings(), [(kind, value)], reason=args.reason, channel=args.channel):
        raise ValueError(f"cannot read {value!r} as {'an' if kind == 'email' else 'a'} {kind}")
    print(f"suppressed {kind} for channel {args.channel} ({args.reason}): no export to it from now on")


def _cmd_forget(args: argparse.Namespace) -> None:
    from loyalist.audiences.forget import forget

    report = forget(get_settings(), email=args.email, phone=args.phone, customer_id=args.customer_id,
                    triggered_by=_who())
    print(report.summary())
    if args.json:
        print(json.dumps(report.__dict__, indent=2, default=str))


def add_commands(sub) -> None:
    a = sub.add_parser("audience", help="marketing audiences: list, validate, export (docs/audiences.md)")
    asub = a.add_subparsers(dest="audience_command", required=True)
    ls = asub.add_parser("list", help="list the audience definitions")
    ls.add_argument("--dir", help="definitions folder (default: audiences/)")
    ls.set_defaults(func=_cmd_list)
    v = asub.add_parser("validate", help="validate every audience definition")
    v.add_argument("--dir", help="definitions folder (default: audiences/)")
    v.set_defaults(func=_cmd_validate)
    e = asub.add_parser("export", help="export one audience from the published warehouse")
    e.add_argument("name")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--as-of", help="YYYY-MM-DD (default: the published marts' date; another date is refused)")
    e.add_argument("--out", help="output folder (default: $LOYALIST_DATA_DIR/exports/<name>)")
    e.add_argument("--dir", help="definitions folder (default: audiences/)")
    e.set_defaults(func=_cmd_export)
    u = asub.add_parser("suppress", help="keep one address out of a channel's exports (e.g. a platform unsubscribe)")
    ukey = u.add_mutually_exclusive_group(required=True)
    ukey.add_argument("--email")
    ukey.add_argument("--phone")
    ukey.add_argument("--customer-id")
    u.add_argument("--channel", required=True, choices=[*CHANNELS, "all"])
    u.add_argument("--reason", default="unsubscribed")
    u.set_defaults(func=_cmd_suppress)

    f = sub.add_parser("forget", help="erase one person everywhere and keep them out (right to erasure)")
    key = f.add_mutually_exclusive_group(required=True)
    key.add_argument("--email")
    key.add_argument("--phone")
    key.add_argument("--customer-id")
    f.add_argument("--json", action="store_true", help="also print the rows removed per table")
    f.set_defaults(func=_cmd_forget)
