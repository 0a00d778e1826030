"""Load landing files into DuckDB schema ``raw``: cast to the contract, quarantine what breaks it.

Every file becomes one *load*: its rows go either to ``raw.<entity>`` (typed, with load metadata) or
to ``raw.<entity>__quarantine`` (original text values as JSON plus the reasons). A load replaces
whatever the same file loaded before, inside one transaction, so reruns never duplicate rows, and
``raw._load_manifest`` records rows read / loaded / quarantined per file (conservation is checked
before commit).

Which files a run loads: every file of the partitions inside the data interval (a rerun replaces
them), plus any file of an earlier partition that was never loaded or whose content changed since
(late and re-sent files).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from loyalist.contracts import ENTITIES, Entity
from loyalist.warehouse import insert_rows, repeated_keys_sql

log = logging.getLogger(__name__)

PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
DATA_SUFFIXES = (".csv", ".parquet")
METADATA_COLUMNS = (
    ("_batch_id", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_partition_date", "DATE"),
    ("_row_in_file", "BIGINT"),
    ("_loaded_at", "TIMESTAMPTZ"),
)


class IngestError(Exception):
    """A whole batch cannot be loaded (missing required column, unreadable file). Message names the file."""


@dataclass
class LoadResult:
    entity: str
    source_file: str
    partition_date: date
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    extra_columns: list[str] = field(default_factory=list)
    rows_suppressed: int = 0  # rows of erased people (suppression list), kept out of raw and quarantine

    def as_dict(self) -> dict:
        d = asdict(self)
        d["partition_date"] = self.partition_date.isoformat()
        return d


@dataclass(frozen=True)
class LandingFile:
    entity: str
    path: Path
    partition_date: date


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------------
# Raw tables and manifest.
# --------------------------------------------------------------------------------------------------
def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    for entity in ENTITIES.values():
        cols = [f"{_q(c.name)} {c.type}" for c in entity.columns] + [f"{n} {t}" for n, t in METADATA_COLUMNS]
        con.execute(f"create table if not exists raw.{entity.name} ({', '.join(cols)})")
        for c in entity.columns:  # contract grew since the table was made
            con.execute(f"alter table raw.{entity.name} add column if not exists {_q(c.name)} {c.type}")
        con.execute(
            f"create table if not exists raw.{entity.name}__quarantine ("
            "_batch_id varchar, _source_file varchar, _partition_date date, _row_in_file bigint, "
            "_loaded_at timestamptz, reasons varchar, original_values json)"
        )
    con.execute(
        "create table if not exists raw._load_manifest ("
        "entity varchar, source_file varchar primary key, partition_date date, file_sha256 varchar, "
        "file_size bigint, file_mtime_ns bigint, "
        "batch_id varchar, rows_read bigint, rows_loaded bigint, rows_quarantined bigint, "
        "extra_columns varchar, loaded_at timestamptz, rows_suppressed bigint default 0)"
    )
    con.execute("alter table raw._load_manifest add column if not exists rows_suppressed bigint default 0")


def _loaded_files(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int, int]]:
    rows = con.execute("select source_file, file_sha256, file_size, file_mtime_ns from raw._load_manifest")
    return {r[0]: (r[1], r[2], r[3]) for r in rows.fetchall()}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Which files to load.
# --------------------------------------------------------------------------------------------------
def landing_files(landing_dir: Path, entity: str, before: date) -> list[LandingFile]:
    """All data files of ``entity`` in partitions dated before ``before``, oldest first."""
    folder = landing_dir / entity
    if not folder.is_dir():
        return []
    files = []
    for part in sorted(folder.iterdir()):
        m = PARTITION_RE.match(part.name)
        if not (m and part.is_dir()):
            continue
        day = date.fromisoformat(m.group(1))
        if day >= before:
            continue
        files += [LandingFile(entity, f, day) for f in sorted(part.iterdir()) if f.suffix in DATA_SUFFIXES]
    return files


def files_to_load(con: duckdb.DuckDBPyConnection, landing_dir: Path, entity: str,
                  start: date, end: date) -> list[LandingFile]:
    """Files in [start, end) always; earlier files only if new or changed (late / re-sent data)."""
    loaded = _loaded_files(con)
    chosen = []
    for f in landing_files(landing_dir, entity, before=end):
        known = loaded.get(str(f.path))
        if f.partition_date >= start or known is None:
            chosen.append(f)
            continue
        sha, size, mtime_ns = known
        stat = f.path.stat()
        # Same size and mtime: unchanged (cheap); otherwise compare content.
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns) and file_sha256(f.path) != sha:
            chosen.append(f)
    return chosen


# --------------------------------------------------------------------------------------------------
# Loading: all due files of one entity in one set-based pass, one transaction.
# --------------------------------------------------------------------------------------------------
# Encodings tried in order. GB18030 is a superset of GBK/GB2312: Chinese exports from Excel and
# older POS systems arrive in it.
FALLBACK_ENCODINGS = ("gb18030",)


def inspect_file(path: Path) -> tuple[str, bool]:
    """The file's SHA-256 and whether it is valid UTF-8, from one read (landing files can be gigabytes)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return digest.hexdigest(), utf8


# Landing zones hold thousands of small files (one per source system and day). Read one after another
# from a cold page cache, each waits for the disk: 1M sample, the orders' 7,320 files, 8.3 s on one
# thread, 2.8 s on four (2.6 s when cached). The reads also leave the files cached for DuckDB's scan.
INSPECT_THREADS = 4


def inspect_files(paths: list[Path]) -> dict[str, tuple[str, bool]]:
    """``inspect_file`` of every path (keyed by its text), on up to INSPECT_THREADS threads: reading and
    hashing release the GIL."""
    with ThreadPoolExecutor(max(1, min(INSPECT_THREADS, len(paths)))) as pool:
        return dict(zip(map(str, paths), pool.map(inspect_file, paths), strict=True))


def readable_copy(path: Path, workdir: Path, is_utf8: bool) -> tuple[Path, str]:
    """A UTF-8 version of a CSV landing file and the encoding it was in (the file itself if UTF-8)."""
    if path.suffix != ".csv" or is_utf8:
        return path, "utf-8"
    for encoding in FALLBACK_ENCODINGS:
        try:
            text = path.read_bytes().decode(encoding)
        except UnicodeDecodeError:
            continue
        copy = workdir / f"{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.csv"
        copy.write_text(text, encoding="utf-8")
        log.warning("%s: not UTF-8, read as %s", path, encoding)
        return copy, encoding
    raise IngestError(f"{path}: text encoding not recognised (tried UTF-8, {', '.join(FALLBACK_ENCODINGS)})")


def read_header(path: Path) -> list[str]:
    """Column names of a landing file, without reading its body."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty (no header row)")
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        return [c.strip().lstrip("\ufeff") for c in next(csv.reader(fh), [])]


def _check_headers(entity: Entity, headers: dict[str, list[str]]) -> dict[str, list[str]]:
    """Fail the batch on a missing required column; return the extra columns per file."""
    extras = {}
    for path, header in headers.items():
        missing = [c for c in entity.required_columns if c not in header]
        if missing:
            raise IngestError(f"{path}: required column(s) missing: {', '.join(missing)} "
                              f"(found: {', '.join(header) or 'nothing'}); see docs/input_contract.md")
        extra = [c for c in header if c not in entity.column_names]
        if extra:
            log.warning("%s: ignoring columns not in the contract: %s", path, ", ".join(extra))
        extras[path] = extra
    return extras


def _scan_sql(paths: list[str], header: tuple[str, ...]) -> str:
    if paths[0].endswith(".parquet"):
        return f"select * from read_parquet({paths!r}, filename = '_source_file', hive_partitioning = false)"
    rejects = "store_rejects = true, rejects_table = '_rejects', rejects_scan = '_reject_scans'"
    if len(set(header)) == len(header) and all(header):
        # The dialect read_header assumes (comma, double quotes) and the header it read, stated up front:
        # DuckDB's sniffer would otherwise sample every file of the scan, which costs more than parsing
        # them when a history holds hundreds of small daily files.
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
        return (f"select * from read_csv({paths!r}, columns = {columns}, header = true, auto_detect = false, "
                f"delim = ',', quote = '\"', escape = '\"', filename = '_source_file', hive_partitioning = false, "
                f"{rejects})")
    # Duplicate or blank column names: let DuckDB name them (a later step reads contract columns only).
    return (f"select * from read_csv({paths!r}, all_varchar = true, header = true, filename = '_source_file', "
            f"hive_partitioning = false, {rejects})")


def _stage_text_rows(con: duckdb.DuckDBPyConnection, entity: Entity, files: list[LandingFile],
                     headers: dict[str, list[str]], readable: dict[LandingFile, Path]) -> None:
    """Create temp tables ``_landing`` (_source_file, contract columns as text), ``_row_offsets``
    (each file's first ``rowid`` in ``_landing``, minus one) and ``_all_rejects`` (malformed CSV lines).

    Files are scanned in groups of identical header and format (one scan in the usual case), so a
    file whose columns moved or changed (schema drift) is still read by name, never by position.
    A row's number within its file is ``rowid - _offset``: with ``preserve_insertion_order`` (DuckDB's
    default, set here in case a session turned it off) inserts keep the scan's order even when several
    threads parse it, so rowids follow file order, then line order. Numbering with
    ``row_number() over ()`` instead made the scan fastest on one thread, which left the second core idle.
    """
    groups: dict[tuple, list[str]] = {}
    for f in files:
        groups.setdefault((f.path.suffix, tuple(headers[str(f.path)])), []).append(str(readable[f]))
    # Rows of transcoded copies belong to the original file.
    copies = {str(path): str(f.path) for f, path in readable.items() if path != f.path}

    def original(column: str) -> str:
        if not copies:
            return column
        whens = " ".join(f"when {_lit(copy)} then {_lit(orig)}" for copy, orig in copies.items())
        return f"case {column} {whens} else {column} end"

    con.execute("set preserve_insertion_order = true")
    con.execute("create or replace temp table _all_rejects (file_path varchar, line ubigint, "
                "error_type varchar, csv_line varchar, error_message varchar)")
    con.execute("create or replace temp table _landing (_source_file varchar, "
                + ", ".join(f"{_q(c)} varchar" for c in entity.column_names) + ")")
    for (suffix, header), paths in groups.items():
        con.execute("drop table if exists _rejects; drop table if exists _reject_scans")
        texts = ", ".join(f"cast({_q(c)} as varchar)" if c in header else "null" for c in entity.column_names)
        try:
            con.execute(f"insert into _landing select {original('_source_file')}, {texts} "
                        f"from ({_scan_sql(paths, header)})")
        except duckdb.Error as exc:
            raise IngestError(f"{entity.name}: cannot read {paths[0] if len(paths) == 1 else f'{len(paths)} files'}"
                              f": {str(exc).splitlines()[0]}") from exc
        if suffix == ".csv":
            # One line can raise several errors: keep one quarantine row per line, all reasons in it.
            con.execute(f"insert into _all_rejects select {original('s.file_path')}, r.line, "
                        "string_agg(distinct cast(r.error_type as varchar), ', '), any_value(r.csv_line), "
                        "string_agg(distinct r.error_message, '; ') "
                        "from _rejects r join _reject_scans s using (scan_id, file_id) group by all")
    con.execute("create or replace temp table _row_offsets as "
                "select _source_file, min(rowid) - 1 as _offset from _landing group by all")


def _typed_select(entity: Entity, max_event_time: datetime) -> str:
    """SQL turning the text table ``_landing`` into typed columns plus a ``_reasons`` string.

    Reasons come in two groups: reading a value (missing, not castable) is judged on the text, rules
    (checks, future times) on the typed values after defaults are applied. Duplicate keys within a
    file are marked afterwards (``_mark_duplicate_keys``). Each value is trimmed and cast once: the
    text and the typed value travel side by side (``_t_<column>``) until the reasons are written.
    """
    trimmed = [f"nullif(trim({_q(c.name)}), '') as {_q('_t_' + c.name)}" for c in entity.columns]
    cast_exprs, read_reasons, rule_reasons = [], [], []
    for c in entity.columns:
        text = _q("_t_" + c.name)
        cast_exprs.append(f"try_cast({text} as {c.type}) as {_q(c.name)}")
        read_reasons.append(
            f"case when {text} is not null and {_q(c.name)} is null "
            f"then '{c.name}: cannot read \"' || left({text}, 40) || '\" as {c.type}' end")
        if c.required:
            read_reasons.append(f"case when {text} is null then 'missing {c.name}' end")
    defaulted = [f"coalesce({_q(c.name)}, {c.default}) as {_q(c.name)}" if c.default else _q(c.name)
                 for c in entity.columns]
    for c in entity.columns:
        if c.check:
            rule = c.check.replace("'", "''")
            rule_reasons.append(f"case when {_q(c.name)} is not null and not coalesce({c.check}, false) "
                                f"then '{c.name}: breaks rule {rule}' end")
    if entity.event_time:
        limit = max_event_time.isoformat()
        rule_reasons.append(f"case when {_q(entity.event_time)} > timestamptz '{limit}' "
                            f"then '{entity.event_time}: in the future (after {limit})' end")
    return f"""
        with texts as (
            select l.rowid as _scan_row, l._source_file, l.rowid - o._offset as _row_in_file,
                   {", ".join(trimmed)}
            from _landing l join _row_offsets o using (_source_file)
        ),
        cast_rows as (
            select _scan_row, _source_file, _row_in_file, {", ".join(_q("_t_" + c.name) for c in entity.columns)},
                   {", ".join(cast_exprs)}
            from texts
        ),
        read_checked as (
            select _scan_row, _source_file, _row_in_file, {", ".join(_q(c.name) for c in entity.columns)},
                   concat_ws('; ', {", ".join(read_reasons)}) as _read_reasons
            from cast_rows
        ),
        defaulted as (
            select _scan_row, _source_file, _row_in_file, _read_reasons, {", ".join(defaulted)}
            from read_checked
        )
        select * exclude (_read_reasons),
               concat_ws('; ', nullif(_read_reasons, ''), {", ".join(rule_reasons) or "null"}) as _reasons
        from defaulted
    """


def _mark_duplicate_keys(con: duckdb.DuckDBPyConnection, entity: Entity) -> None:
    """Add 'duplicate key in file' to every row of ``_typed`` after the first with the same key in its file.

    Keys compare as typed values, NULL equal to NULL (``repeated_keys_sql``).
    """
    keys = ["_source_file", *(_q(k) for k in entity.key)]
    con.execute("create or replace temp table _duplicate_keys as "
                + repeated_keys_sql("_typed", keys, "min(_row_in_file) as _first_row"))
    if not con.execute("select count(*) from _duplicate_keys").fetchone()[0]:
        return
    same_key = " and ".join(f"t.{_q(k)} is not distinct from d.{_q(k)}" for k in entity.key)
    con.execute(f"""update _typed t set _reasons = concat_ws('; ', nullif(t._reasons, ''), 'duplicate key in file')
                    from _duplicate_keys d
                    where t._source_file = d._source_file and {same_key} and t._row_in_file > d._first_row""")


MANIFEST_COLUMNS = ["entity", "source_file", "partition_date", "file_sha256", "file_size", "file_mtime_ns",
                    "batch_id", "rows_read", "rows_loaded", "rows_quarantined", "extra_columns", "rows_suppressed"]


def load_files(con: duckdb.DuckDBPyConnection, entity_name: str, files: list[LandingFile], batch_id: str,
               max_event_time: datetime, suppression=None) -> list[LoadResult]:
    """Load landing files of one entity, replacing earlier loads of the same files, in one transaction."""
    if not files:
        return []
    entity = ENTITIES[entity_name]
    with tempfile.TemporaryDirectory(prefix="loyalist-ingest-") as workdir:
        inspected = inspect_files([f.path for f in files])
        readable = {f: readable_copy(f.path, Path(workdir), inspected[str(f.path)][1])[0] for f in files}
        headers = {str(f.path): read_header(readable[f]) for f in files}
        extras = _check_headers(entity, headers)
        _stage_text_rows(con, entity, files, headers, readable)
    con.execute(f"create or replace temp table _typed as {_typed_select(entity, max_event_time)}")
    _mark_duplicate_keys(con, entity)
    # Erased people (loyalist.audiences.privacy.Suppression) are dropped before anything is stored.
    suppressed = suppression.drop_from_typed(con, entity.name, entity.column_names) if suppression else {}
    con.execute("create or replace temp table _files (_source_file varchar, _partition_date date)")
    insert_rows(con, "_files", ["_source_file", "_partition_date"], [[str(f.path), f.partition_date] for f in files])

    cols = ", ".join(_q(c) for c in entity.column_names)
    originals = ", ".join(f"{_q(c)} := l.{_q(c)}" for c in entity.column_names)  # the text as it arrived
    meta = f"{_lit(batch_id)}, t._source_file, f._partition_date, t._row_in_file, now()"
    con.execute("begin transaction")
    try:
        for table in (entity.name, f"{entity.name}__quarantine"):
            con.execute(f"delete from raw.{table} where _source_file in (select _source_file from _files)")
        con.execute(f"""insert into raw.{entity.name} ({cols}, _batch_id, _source_file, _partition_date,
                        _row_in_file, _loaded_at)
                        select {cols}, {meta} from _typed t join _files f using (_source_file)
                        where t._reasons = ''""")
        con.execute(f"""insert into raw.{entity.name}__quarantine
                        select {meta}, t._reasons, to_json(struct_pack({originals}))
                        from _typed t join _files f using (_source_file) join _landing l on l.rowid = t._scan_row
                        where t._reasons <> ''""")
        con.execute(f"""insert into raw.{entity.name}__quarantine
                        select {_lit(batch_id)}, r.file_path, f._partition_date, r.line, now(),
                               'malformed line: ' || r.error_type || ': ' || r.error_message,
                               to_json({{'csv_line': r.csv_line}})
                        from _all_rejects r join _files f on f._source_file = r.file_path""")
        counts = con.execute(f"""
            with read_rows as (
                select _source_file, count(*) as n from _landing group by all
                union all
                select file_path, count(*) from _all_rejects group by all
            ),
            loaded as (select _source_file, count(*) as n from raw.{entity.name}
                       where _source_file in (select _source_file from _files) group by all),
            quarantined as (select _source_file, count(*) as n from raw.{entity.name}__quarantine
                            where _source_file in (select _source_file from _files) group by all)
            select f._source_file, f._partition_date,
                   coalesce((select sum(n) from read_rows r where r._source_file = f._source_file), 0),
                   coalesce((select n from loaded l where l._source_file = f._source_file), 0),
                   coalesce((select n from quarantined q where q._source_file = f._source_file), 0)
            from _files f order by f._partition_date, f._source_file""").fetchall()
        results, manifest = [], []
        for source_file, day, read, loaded, quarantined in counts:
            dropped = suppressed.get(source_file, 0)
            if loaded + quarantined + dropped != read:  # never commit a load that lost or invented rows
                raise IngestError(f"{source_file}: conservation broken: read {read}, loaded {loaded}, "
                                  f"quarantined {quarantined}, suppressed {dropped}")
            stat = Path(source_file).stat()
            manifest.append([entity.name, source_file, day, inspected[source_file][0], stat.st_size,
                             stat.st_mtime_ns, batch_id, read, loaded, quarantined,
                             ",".join(extras[source_file]), dropped])
            results.append(LoadResult(entity.name, source_file, day, read, loaded, quarantined,
                                      extras[source_file], dropped))
        con.execute("delete from raw._load_manifest where source_file in (select _source_file from _files)")
        insert_rows(con, "raw._load_manifest", MANIFEST_COLUMNS, manifest, loaded_at="now()")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return results


# A first load of a long history is split into transactions of at most this much landing data, so the
# temp tables of one load (text, typed) stay within DuckDB's memory limit instead of spilling; a file is
# never split, so each file still loads (or reloads) whole and atomically.
LOAD_GROUP_BYTES = 384 * 2**20


def load_groups(files: list[LandingFile], max_bytes: int | None = None) -> list[list[LandingFile]]:
    """Consecutive groups of ``files`` (oldest first) of at most ``max_bytes`` (default LOAD_GROUP_BYTES)
    each; a single file larger than that is a group of its own."""
    max_bytes = LOAD_GROUP_BYTES if max_bytes is None else max_bytes
    groups: list[list[LandingFile]] = []
    size = 0
    for f in files:
        n = f.path.stat().st_size
        if not groups or (size + n > max_bytes and groups[-1]):
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += n
    return groups


def ingest_landing(con: duckdb.DuckDBPyConnection, landing_dir: Path, start: date, end: date,
                   batch_id: str, max_event_time: datetime,
                   entities: list[str] | None = None, suppression=None) -> list[LoadResult]:
    """Load every file due for the interval [start, end) for each entity; return one result per file.

    ``suppression`` (a ``loyalist.audiences.privacy.Suppression``) keeps erased people out.
    """
    ensure_raw_schema(con)
    results = []
    for name in entities or list(ENTITIES):
        loaded = []
        for group in load_groups(files_to_load(con, landing_dir, name, start, end)):
            loaded += load_files(con, name, group, batch_id, max_event_time, suppression)
        if loaded:
            log.info("%s: %s file(s), read %s, loaded %s, quarantined %s", name, len(loaded),
                     sum(r.rows_read for r in loaded), sum(r.rows_loaded for r in loaded),
                     sum(r.rows_quarantined for r in loaded))
        results += loaded
    return results
