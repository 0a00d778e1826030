"""PostgreSQL as an operational CRM/order source.

Extraction does not load the warehouse directly: it writes what it pulls into the landing zone as
Parquet (``<landing>/<entity>/dt=<start date>/postgres__<schema>.parquet``), and the normal file
ingestion loads it, so casting, quarantine, the load manifest and rerun-replaces-rows all apply
unchanged.

Incremental pulls use an ``updated_at`` watermark per table, kept in
``<landing>/_state/postgres_watermarks.json`` (``{"schema.table": "<max updated_at seen>"}``). Each
Parquet file records the bounds it covered in its metadata, so rerunning an interval reuses the same
lower bound and rewrites the same file (idempotent) instead of shrinking it to what changed since.

``seed_source_database`` turns generated sample landing CSVs into such a source (demos and tests).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from loyalist.contracts import ENTITIES, Entity
from loyalist.ingest import read_header

SOURCE_ENTITIES: tuple[str, ...] = ("customers", "orders", "order_items", "feedback", "consent_events")
WATERMARK_COLUMN = "updated_at"
STATE_FILE = Path("_state") / "postgres_watermarks.json"
CHUNK_ROWS = 50_000
CONNECT_TIMEOUT_S = 10
# Parquet key-value metadata: the bounds a file covers, read back when its interval is rerun.
META_LOWER = b"loyalist.extract.lower"
META_END = b"loyalist.extract.end"

_PG_TYPES = {"VARCHAR": "text", "TIMESTAMPTZ": "timestamptz", "INTEGER": "integer", "DATE": "date",
             "BOOLEAN": "boolean"}
# How the watermark is derived for entities without their own updated_at column (seeding only).
_DERIVED_UPDATED_AT = {"orders": "s.ordered_at", "consent_events": "s.event_at"}


class SourceError(Exception):
    """The source cannot be read (unreachable, missing table or column). Message names host/db and table."""


@dataclass(frozen=True)
class ExtractResult:
    entity: str
    table: str  # schema.table in PostgreSQL
    path: Path
    rows: int
    lower: datetime | None  # None: initial full load (no lower bound)
    end: datetime
    watermark: datetime | None  # stored high watermark after this extraction


# --------------------------------------------------------------------------------------------------
# Connections and messages.
# --------------------------------------------------------------------------------------------------
def describe_dsn(dsn: str) -> str:
    """``host:port/db`` of a DSN, never its password (safe for error messages and logs)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = info.get("host") or os.environ.get("PGHOST", "localhost")
    port = info.get("port") or os.environ.get("PGPORT", "5432")
    db = info.get("dbname") or os.environ.get("PGDATABASE", info.get("user") or "?")
    return f"{host}:{port}/{db}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def connect(dsn: str) -> psycopg.Connection:
    """Open a session in UTC with ISO dates, so timestamps come out as text the ingestion reads as UTC."""
    # Autocommit: transactions are opened explicitly (conn.transaction()) exactly where needed.
    try:
        conn = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {_first_line(exc)}") from exc
    conn.execute("set time zone 'UTC'")
    conn.execute("set datestyle = 'ISO, YMD'")
    return conn


def _as_utc(ts: datetime) -> datetime:
    # Naive interval bounds mean UTC, like every timestamp in the contract.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# --------------------------------------------------------------------------------------------------
# Seeding a source database from generated landing CSVs.
# --------------------------------------------------------------------------------------------------
def _pg_type(contract_type: str) -> str:
    return _PG_TYPES.get(contract_type, contract_type.replace("DECIMAL", "numeric"))


def _create_table_sql(schema: str, entity: Entity) -> sql.Composed:
    cols = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(_pg_type(c.type))) for c in entity.columns]
    if WATERMARK_COLUMN not in entity.column_names:
        cols.append(sql.SQL("{} timestamptz not null").format(sql.Identifier(WATERMARK_COLUMN)))
    # The contract's business key is unique in the source (it is what identifies a row version).
    cols.append(sql.SQL("primary key ({})").format(sql.SQL(", ").join(map(sql.Identifier, entity.key))))
    return sql.SQL("create table {}.{} ({})").format(
        sql.Identifier(schema), sql.Identifier(entity.name), sql.SQL(", ").join(cols))


def _copy_csv_to_stage(cur: psycopg.Cursor, stage: str, csv_path: Path) -> None:
    """Stream one CSV into the all-text stage table (COPY; columns matched by header name)."""
    header = read_header(csv_path)
    stmt = sql.SQL("copy {} ({}) from stdin with (format csv, header true)").format(
        sql.Identifier(stage), sql.SQL(", ").join(map(sql.Identifier, header)))
    with csv_path.open("rb") as fh, cur.copy(stmt) as copy:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)


def _insert_typed_sql(schema: str, entity: Entity, stage: str) -> sql.Composed:
    """Insert the stage's text rows typed; derive updated_at where the entity has none."""
    names = entity.column_names
    exprs = [sql.SQL("nullif(s.{}, '')::{}").format(sql.Identifier(c.name), sql.SQL(_pg_type(c.type)))
             for c in entity.columns]
    source = sql.SQL("{} s").format(sql.Identifier(stage))
    if WATERMARK_COLUMN not in names:
        names = [*names, WATERMARK_COLUMN]
        if entity.name == "order_items":
            # Items change with their order; an orphan item (no parent) is stamped with the seed time.
            exprs.append(sql.SQL("coalesce(o.ordered_at, now())"))
            source = sql.SQL("{} s left join {}.orders o on o.order_id = s.order_id").format(
                sql.Identifier(stage), sql.Identifier(schema))
        else:
            derived = _DERIVED_UPDATED_AT[entity.name]
            exprs.append(sql.SQL("nullif({}, '')::timestamptz").format(sql.SQL(derived)))
    return sql.SQL("insert into {}.{} ({}) select {} from {}").format(
        sql.Identifier(schema), sql.Identifier(entity.name), sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(exprs), source)


def _seed_entity(conn: psycopg.Connection, schema: str, entity: Entity, landing_dir: Path) -> int:
    stage = f"_seed_{entity.name}"
    with conn.cursor() as cur:
        cur.execute(sql.SQL("drop table if exists {}.{} cascade").format(
            sql.Identifier(schema), sql.Identifier(entity.name)))
        cur.execute(_create_table_sql(schema, entity))
        cur.execute(sql.SQL("create index on {}.{} ({})").format(
            sql.Identifier(schema), sql.Identifier(entity.name), sql.Identifier(WATERMARK_COLUMN)))
        # Text staging first: COPY stays fast and a dirty value fails in one place with a clear message.
        cur.execute(sql.SQL("create temp table {} ({}) on commit drop").format(
            sql.Identifier(stage),
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in entity.column_names)))
        for csv_path in sorted(landing_dir.glob(f"{entity.name}/dt=*/*.csv")):
            _copy_csv_to_stage(cur, stage, csv_path)
        try:
            cur.execute(_insert_typed_sql(schema, entity, stage))
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
            raise SourceError(
                f"cannot seed {schema}.{entity.name} from {landing_dir / entity.name}: {_first_line(exc)} "
                "(the sample contains deliberately broken rows; generate it with dirty_rate=0)") from exc
        return cur.rowcount


def seed_source_database(dsn: str, schema: str, landing_dir: Path,
                         entities: Sequence[str] = SOURCE_ENTITIES) -> dict[str, int]:
    """Create (replace) the source tables in ``schema`` and bulk-load them from landing CSVs.

    Tables have the contract columns with PostgreSQL types, the contract key as primary key, and an
    indexed ``updated_at timestamptz not null`` (derived from the event time, or the parent order's
    time for order_items, where the contract has none). One transaction: all tables or none.
    """
    counts: dict[str, int] = {}
    with connect(dsn) as conn, conn.transaction():
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        # orders before order_items: item watermarks come from their order.
        for name in sorted(entities, key=lambda e: SOURCE_ENTITIES.index(e) if e in SOURCE_ENTITIES else 99):
            counts[name] = _seed_entity(conn, schema, ENTITIES[name], landing_dir)
    return counts


# --------------------------------------------------------------------------------------------------
# Watermark state.
# --------------------------------------------------------------------------------------------------
def state_path(landing_dir: Path) -> Path:
    return landing_dir / STATE_FILE


def read_watermarks(landing_dir: Path) -> dict[str, datetime]:
    path = state_path(landing_dir)
    if not path.exists():
        return {}
    return {k: datetime.fromisoformat(v) for k, v in json.loads(path.read_text()).items()}


def _save_watermark(landing_dir: Path, table: str, seen: datetime | None) -> datetime | None:
    """Advance the table's watermark to ``seen`` (never backwards); write the state atomically."""
    marks = read_watermarks(landing_dir)
    old = marks.get(table)
    if seen is None or (old is not None and old >= seen):
        return old
    marks[table] = seen
    path = state_path(landing_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({k: v.isoformat() for k, v in sorted(marks.items())}, indent=2) + "\n")
    os.replace(tmp, path)
    return seen


# --------------------------------------------------------------------------------------------------
# Extraction.
# --------------------------------------------------------------------------------------------------
def landing_path(landing_dir: Path, entity: str, schema: str, start: datetime) -> Path:
    return landing_dir / entity / f"dt={_as_utc(start).date().isoformat()}" / f"postgres__{schema}.parquet"


def _recorded_lower(path: Path) -> tuple[bool, datetime | None]:
    """(True, lower) if an earlier run of this interval wrote ``path``; lower None = full load."""
    if not path.exists():
        return False, None
    meta = pq.read_schema(path).metadata or {}
    if META_LOWER not in meta:
        return False, None
    raw = meta[META_LOWER].decode()
    return True, (datetime.fromisoformat(raw) if raw else None)


def lower_bound(watermark: datetime | None, start: datetime, recorded: tuple[bool, datetime | None]
                ) -> datetime | None:
    """Where the pull starts: a rerun reuses its first lower bound; else the watermark when it lags
    behind ``start`` (catch up), else ``start``; no watermark yet: None (initial full load)."""
    was_run, lower = recorded
    if was_run:
        return lower
    if watermark is None:
        return None
    return watermark if watermark < start else start


def _source_columns(conn: psycopg.Connection, dsn: str, schema: str, table: str) -> set[str]:
    rows = conn.execute("select column_name from information_schema.columns "
                        "where table_schema = %s and table_name = %s", (schema, table)).fetchall()
    if not rows:
        raise SourceError(f"table {schema}.{table} not found in PostgreSQL at {describe_dsn(dsn)} "
                          "(or not visible to this user)")
    return {r[0] for r in rows}


def _select_sql(schema: str, entity: Entity, available: set[str], lower: datetime | None) -> sql.Composed:
    """Contract columns as text (the ingestion casts and quarantines), then the raw watermark value.

    Text keeps odd source values (wrong types, 'infinity') from failing the extraction: they reach
    quarantine with their original value instead. Optional columns the table lacks come out empty.
    """
    def col(name: str) -> sql.Composed:  # qualified: the text output columns reuse the source names
        return sql.SQL("t.{}").format(sql.Identifier(name))

    cols = [sql.SQL("{}::text as {}").format(col(c), sql.Identifier(c)) if c in available
            else sql.SQL("null::text as {}").format(sql.Identifier(c)) for c in entity.column_names]
    cols.append(sql.SQL("{} as _watermark").format(col(WATERMARK_COLUMN)))
    where = sql.SQL("{} < %(end)s").format(col(WATERMARK_COLUMN))
    if lower is not None:
        where = sql.SQL("{} >= %(lower)s and ").format(col(WATERMARK_COLUMN)) + where
    # Stable order makes a rerun over unchanged data write the same file.
    order = sql.SQL(", ").join([col(WATERMARK_COLUMN), *map(col, entity.key)])
    return sql.SQL("select {} from {}.{} t where {} order by {}").format(
        sql.SQL(", ").join(cols), sql.Identifier(schema), sql.Identifier(entity.name), where, order)


def _check_columns(dsn: str, schema: str, entity: Entity, available: set[str]) -> None:
    needed = [WATERMARK_COLUMN, *entity.required_columns]
    missing = [c for c in needed if c not in available]
    if missing:
        raise SourceError(f"table {schema}.{entity.name} in PostgreSQL at {describe_dsn(dsn)} lacks "
                          f"column(s) {', '.join(missing)}")


def _batches(cur: psycopg.Cursor, schema: pa.Schema) -> Iterator[tuple[pa.RecordBatch, datetime]]:
    """Arrow batches of text columns from a server-side cursor, with each chunk's max watermark."""
    while rows := cur.fetchmany(CHUNK_ROWS):
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(col, pa.string()) for col in columns[:-1]]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema), max(columns[-1])


def _write_parquet(cur: psycopg.Cursor, path: Path, entity: Entity, lower: datetime | None,
                   end: datetime) -> tuple[int, datetime | None]:
    """Stream the cursor into ``path`` (via a temp file + rename, so a failure leaves the old file)."""
    meta = {META_LOWER: (lower.isoformat() if lower else "").encode(), META_END: end.isoformat().encode()}
    schema = pa.schema([(c, pa.string()) for c in entity.column_names], metadata=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # suffix .tmp: never picked up by ingestion
    rows, seen = 0, None
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch, batch_max in _batches(cur, schema):
                writer.write_batch(batch)
                rows += batch.num_rows
                seen = batch_max if seen is None else max(seen, batch_max)
        os.replace(tmp, path)  # written even when empty: an empty pull still replaces the interval's rows
    finally:
        tmp.unlink(missing_ok=True)
    return rows, seen


def _extract_entity(conn: psycopg.Connection, dsn: str, schema: str, entity: Entity, landing_dir: Path,
                    start: datetime, end: datetime) -> ExtractResult:
    table = f"{schema}.{entity.name}"
    path = landing_path(landing_dir, entity.name, schema, start)
    lower = lower_bound(read_watermarks(landing_dir).get(table), start, _recorded_lower(path))
    try:
        available = _source_columns(conn, dsn, schema, entity.name)
        _check_columns(dsn, schema, entity, available)
        # Named cursor = server-side: rows arrive in chunks, a big table never sits in memory whole.
        with conn.transaction(), conn.cursor(name=f"extract_{entity.name}") as cur:
            cur.itersize = CHUNK_ROWS
            cur.execute(_select_sql(schema, entity, available, lower), {"lower": lower, "end": end})
            rows, seen = _write_parquet(cur, path, entity, lower, end)
    except psycopg.Error as exc:
        raise SourceError(f"cannot extract {table} from PostgreSQL at {describe_dsn(dsn)}: "
                          f"{_first_line(exc)}") from exc
    watermark = _save_watermark(landing_dir, table, seen)
    return ExtractResult(entity.name, table, path, rows, lower, end, watermark)


def extract_to_landing(dsn: str, schema: str, landing_dir: Path, start: datetime, end: datetime,
                       entities: Iterable[str] = SOURCE_ENTITIES) -> list[ExtractResult]:
    """Pull rows changed in the interval (``updated_at`` in [lower, end)) into one Parquet file per
    entity at ``<landing>/<entity>/dt=<start date>/postgres__<schema>.parquet``; see ``lower_bound``.

    A rerun of the interval overwrites the file (ingestion then replaces its rows). The watermark of
    each table advances after its file is written.
    """
    start, end = _as_utc(start), _as_utc(end)
    if end <= start:
        raise ValueError(f"empty interval: start {start.isoformat()} >= end {end.isoformat()}")
    names = list(entities)
    unknown = [n for n in names if n not in ENTITIES]
    if unknown:
        raise ValueError(f"unknown entities: {', '.join(unknown)} (known: {', '.join(ENTITIES)})")
    with connect(dsn) as conn:
        conn.read_only = True  # an extractor never writes to the operational database
        return [_extract_entity(conn, dsn, schema, ENTITIES[n], landing_dir, start, end) for n in names]
