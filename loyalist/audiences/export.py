"""Export one audience as of a date: select, enforce consent and suppression, write, diff, record.

Reads only the published readers' copy (``pipeline.published_path``): the working warehouse may be
held by a running DAG, and the published copy is the one that passed every gate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from loyalist.audiences import formats, privacy
from loyalist.audiences.definitions import (
    AUDIENCES_DIR,
    FIELDS,
    Audience,
    DefinitionError,
    as_of_param,
    check_format,
    load,
)
from loyalist.audiences.normalize import sha256_hex
from loyalist.audiences.query import build_query
from loyalist.config import Settings
from loyalist.warehouse import connect, insert_rows

log = logging.getLogger(__name__)


class ExportError(Exception):
    """The export cannot run (no published warehouse, wrong date, missing model output); one clear line."""


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    audience: str
    format: str
    channel: str
    definition_sha256: str
    as_of_date: str
    row_count: int
    file_path: str
    file_sha256: str
    previous_export_id: str | None
    adds: int
    removes: int
    suppressed: int
    triggered_by: str
    exported_at: str
    adds_path: str
    removes_path: str
    manifest_path: str


def default_out_dir(settings: Settings) -> Path:
    return settings.data_dir / "exports"


def published_warehouse(settings: Settings) -> Path:
    from loyalist.pipeline import published_path

    path = published_path(settings)
    if not path.exists():
        raise ExportError(f"no published warehouse at {path}: run the daily DAG first")
    return path


def check_known_values(con, audience: Audience) -> None:
    """Open-ended text fields (city, category, ...) must name a value the published marts contain.

    Their values cannot be listed in code, and a typo ('Shangai') would otherwise export an empty list
    without a word.
    """
    for cond in audience.conditions:
        f = FIELDS[cond.field]
        if f.kind != "text" or f.values is not None or cond.op not in ("eq", "in") or f.table != "marts.customers":
            continue
        for value in cond.value if isinstance(cond.value, list) else [cond.value]:
            if not con.execute(f"select count(*) from marts.customers c where {f.sql} = ?", [value]).fetchone()[0]:
                raise ExportError(f"audience {audience.name}: no customer has {cond.field} = {value!r} "
                                  "in the published marts (a typo?)")


def select_members(con, audience: Audience, as_of: date | None) -> tuple[pd.DataFrame, date]:
    """Members by the definition, with channel consent and contact required, as of the published marts' date."""
    tables = {r[0] for r in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
    missing = sorted(t for t in audience.tables | {"marts.customers"} if t not in tables)
    if missing:
        raise ExportError(f"audience {audience.name} needs {', '.join(missing)}, which the published warehouse "
                          "does not have yet (has the scoring/rewards step run?)")
    check_known_values(con, audience)
    published = con.execute("select max(as_of_date) from marts.customers").fetchone()[0]
    if as_of is not None and as_of != published:
        raise ExportError(f"the published marts are as of {published}, not {as_of}: export as of {published} "
                          f"or run the daily DAG for {as_of} first")
    sql, params = build_query(audience, published)
    return con.execute(sql, params).df(), published


def apply_suppression(members: pd.DataFrame, suppressed: dict[str, set[str]]) -> pd.DataFrame:
    """Drop every member whose customer id, email or phone is on the suppression list."""
    def hit(kind: str, column: str) -> pd.Series:
        keys = suppressed.get(kind) or set()
        return members[column].map(lambda v: bool(keys) and v is not None and not pd.isna(v)
                                   and sha256_hex(str(v)) in keys).astype(bool)

    if members.empty:
        return members
    drop = hit("customer", "customer_id") | hit("email", "email") | hit("phone", "phone")
    return members[~drop].reset_index(drop=True)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _previous(con, audience: str, fmt: str) -> tuple[str | None, set[str]]:
    row = con.execute("select export_id from audience_exports where audience = ? and format = ? "
                      "order by exported_at desc limit 1", [audience, fmt]).fetchone()
    if not row:
        return None, set()
    ids = {r[0] for r in con.execute("select customer_id from audience_export_members where export_id = ?",
                                     [row[0]]).fetchall()}
    return row[0], ids


def _write_ids(path: Path, ids: list[str]) -> None:
    path.write_text("customer_id\n" + "".join(f"{i}\n" for i in ids), encoding="utf-8")


def export_audience(settings: Settings, name: str, fmt: str, as_of: date | str | None = None,
                    out_dir: Path | None = None, triggered_by: str = "unknown",
                    audiences_dir: Path = AUDIENCES_DIR) -> ExportResult:
    """Export audience ``name`` in ``fmt``; returns the manifest (also written to the audit table)."""
    audience = load(name, audiences_dir)
    check_format(fmt, audience.channel, f"audience {name}")
    wanted = as_of_param(as_of) if as_of is not None else None
    with connect(settings, published_warehouse(settings), read_only=True) as con:
        members, as_of_day = select_members(con, audience, wanted)
    before = len(members)
    members = apply_suppression(members, privacy.suppressed_hashes(settings, audience.channel))
    # Defence in depth: the query already required consent; never write a file if that ever broke.
    if not members.empty and not members["channel_consent"].all():
        raise ExportError(f"internal error: a member without {audience.channel} consent reached the export")

    out = Path(out_dir) if out_dir else default_out_dir(settings) / name
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}__{fmt}__{as_of_day.isoformat()}"
    path = out / f"{stem}.{formats.EXTENSIONS[fmt]}"
    tmp = path.with_name(path.name + ".tmp")
    written = formats.write(members, fmt, tmp, tag=name)
    os.replace(tmp, path)  # a reader never sees half a file
    now = datetime.now(UTC)
    export_id = f"{stem}__{now.strftime('%Y%m%dT%H%M%S%fZ')}"

    with privacy.open_audit(settings) as con:
        previous_id, previous = _previous(con, name, fmt)
        current = set(written)
        adds, removes = sorted(current - previous), sorted(previous - current)
        adds_path, removes_path = out / f"{stem}.adds.csv", out / f"{stem}.removes.csv"
        _write_ids(adds_path, adds)
        _write_ids(removes_path, removes)
        result = ExportResult(
            export_id=export_id, audience=name, format=fmt, channel=audience.channel,
            definition_sha256=audience.definition_sha256, as_of_date=as_of_day.isoformat(),
            row_count=len(written), file_path=str(path), file_sha256=_file_sha256(path),
            previous_export_id=previous_id, adds=len(adds), removes=len(removes), suppressed=before - len(members),
            triggered_by=triggered_by, exported_at=now.isoformat(), adds_path=str(adds_path),
            removes_path=str(removes_path), manifest_path=str(out / f"{stem}.manifest.json"),
        )
        con.execute("begin transaction")
        con.execute("insert into audience_exports values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [result.export_id, name, fmt, audience.channel, audience.definition_sha256, as_of_day,
                     result.row_count, result.file_path, result.file_sha256, previous_id, result.adds,
                     result.removes, result.suppressed, triggered_by, now])
        if written:
            insert_rows(con, "audience_export_members", ["export_id", "customer_id"],
                        [(export_id, cid) for cid in sorted(current)])
        con.execute("commit")
    Path(result.manifest_path).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    log.info("exported %s as %s: %s rows (+%s / -%s) to %s", name, fmt, result.row_count, result.adds,
             result.removes, path)
    return result


def export_auto(settings: Settings, triggered_by: str, as_of: date | str | None = None,
                audiences_dir: Path = AUDIENCES_DIR) -> list[ExportResult]:
    """Export every audience marked ``auto_export`` in each of its formats."""
    from loyalist.audiences.definitions import load_all

    results = []
    for audience in load_all(audiences_dir).values():
        for fmt in audience.auto_export_formats:
            results.append(export_audience(settings, audience.name, fmt, as_of, triggered_by=triggered_by,
                                           audiences_dir=audiences_dir))
    return results


def audience_sizes(settings: Settings, con, audiences_dir: Path = AUDIENCES_DIR) -> pd.DataFrame:
    """How many people each audience would export today: the export's own query (consent and contact
    required) minus the suppression list, on the open warehouse ``con``. An audience that cannot be
    selected here (a table not built yet, an unknown value) gets no count and the reason."""
    from loyalist.audiences.definitions import load_all

    rows = []
    for audience in load_all(audiences_dir).values():
        try:
            members, _ = select_members(con, audience, None)
            members = apply_suppression(members, privacy.suppressed_hashes(settings, audience.channel))
            rows.append((audience.name, audience.channel, len(members), ""))
        except ExportError as exc:
            rows.append((audience.name, audience.channel, None, str(exc)))
    return pd.DataFrame(rows, columns=["audience", "channel", "members", "not_available"])


__all__ = ["DefinitionError", "ExportError", "ExportResult", "audience_sizes", "export_audience", "export_auto"]
