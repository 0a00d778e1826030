"""Raw tables for the dbt targets other than DuckDB (PostgreSQL, Spark).

Ingestion always writes the DuckDB warehouse (`raw.*`: one loader, quarantine and manifest for every
target). When dbt builds on another engine, every table dbt reads (the sources declared in
`dbt_project/models/**/_*__sources.yml`: the raw tables, one per contract entity, and the ML outputs
such as ``ml.feedback_classified``) is mirrored there first:

- PostgreSQL: each table is exported to CSV by DuckDB and streamed in with ``COPY ... FROM STDIN``
  (DuckDB's postgres extension would be downloaded at run time, which we do not allow), replacing the
  table in one transaction, so dbt never reads a half-copied source.
- Spark: each table is exported to a Parquet folder under ``<data dir>/spark/<schema>/<table>``; dbt's
  ``on-run-start`` hook (macro ``register_raw_sources``) registers the folders as tables of the Spark
  databases ``raw`` and ``ml`` in the session dbt itself runs, so no second JVM is started.

A raw table missing from DuckDB is an error (ingest first). An ML output that does not exist yet (its
Python step has not run) is mirrored as an empty table of its declared columns, which the staging
models read the same way as DuckDB's missing table: no rows.

Seeds are dbt's job on every target.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from loyalist.config import DBT_PROJECT_DIR, Settings
from loyalist.warehouse import connect

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
# DuckDB type -> PostgreSQL type of the raw columns (the input contract uses only these).
_PG_TYPES = {
    "VARCHAR": "text",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP": "timestamp",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "BOOLEAN": "boolean",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "JSON": "jsonb",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


class TargetLoadError(Exception):
    """The raw tables could not be copied to the dbt target; the message says which and why."""


@dataclass(frozen=True)
class CopiedTable:
    table: str
    rows: int


@dataclass(frozen=True)
class SourceTable:
    """A table the dbt project declares as a source, with its declared (name, data_type) columns."""

    schema: str
    table: str
    columns: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def required(self) -> bool:
        # raw tables come from ingestion; the others are outputs of Python steps that may not have run yet
        return self.schema == RAW_SCHEMA


def dbt_sources(project_dir: Path = DBT_PROJECT_DIR) -> list[SourceTable]:
    """Every source table of the dbt project (its `sources:` YAML), in declaration order."""
    found = []
    for path in sorted((project_dir / "models").rglob("*.yml")):
        for source in (yaml.safe_load(path.read_text()) or {}).get("sources") or []:
            schema = source.get("schema", source["name"])
            for table in source.get("tables") or []:
                columns = tuple((c["name"], c.get("data_type") or "varchar") for c in table.get("columns") or [])
                found.append(SourceTable(schema, table.get("identifier", table["name"]), columns))
    return found


def raw_tables() -> list[str]:
    """The raw tables dbt reads (its `raw` sources): one per contract entity."""
    return [s.table for s in dbt_sources() if s.schema == RAW_SCHEMA]


def postgres_conninfo(dbname: str | None = None) -> str:
    """libpq connection string of the Postgres dbt target (the same LOYALIST_PG_* as profiles.yml)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=os.environ.get("LOYALIST_PG_HOST", "127.0.0.1"),
        port=os.environ.get("LOYALIST_PG_PORT", "5432"),
        user=os.environ.get("LOYALIST_PG_USER", "postgres"),
        password=os.environ.get("LOYALIST_PG_PASSWORD", "") or None,
        dbname=dbname or os.environ.get("LOYALIST_PG_DBNAME", "postgres"),
        connect_timeout=10,
    )


def spark_dir(settings: Settings) -> Path:
    """Spark's files for the local session target: warehouse, metastore, raw Parquet."""
    return settings.data_dir / "spark"


def spark_source_dir(settings: Settings, schema: str = RAW_SCHEMA) -> Path:
    """Parquet folders of one source schema; macros/spark.sql registers <this>/<table>."""
    return spark_dir(settings) / "sources" / schema


def _pg_type(duckdb_type: str) -> str:
    match = _DECIMAL.match(duckdb_type)
    if match:
        return f"numeric({match.group(1)},{match.group(2)})"
    try:
        return _PG_TYPES[duckdb_type]
    except KeyError:
        raise TargetLoadError(f"no PostgreSQL type for DuckDB type {duckdb_type}") from None


def _columns(con, source: SourceTable) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position", [source.schema, source.table]).fetchall()


def _export_query(con, source: SourceTable) -> str:
    """The query DuckDB exports for a source: the table, or (an optional one not written yet) no rows
    of its declared columns; a missing raw table is an error."""
    if _columns(con, source):
        return f"select * from {source.schema}.{source.table}"
    if source.required:
        raise TargetLoadError(f"{source.name} is missing from the DuckDB warehouse: ingest first")
    if not source.columns:
        raise TargetLoadError(f"{source.name} is missing from the DuckDB warehouse and declares no columns")
    columns = ", ".join(f'cast(null as {dtype}) as "{name}"' for name, dtype in source.columns)
    return f"select {columns} where false"


def ensure_postgres_database(dbname: str) -> bool:
    """Create the target database if it does not exist (connecting to `postgres`); True if created."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_conninfo("postgres"), autocommit=True) as pg:
        if pg.execute("select 1 from pg_database where datname = %s", [dbname]).fetchone():
            return False
        pg.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        return True


def copy_raw_to_postgres(settings: Settings) -> list[CopiedTable]:
    """Replace the Postgres target's raw tables by the DuckDB warehouse's, in one transaction."""
    import psycopg
    from psycopg import sql

    tmp_dir = settings.data_dir / "tmp" / "postgres_copy"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    try:
        with connect(settings, read_only=True) as con, psycopg.connect(postgres_conninfo()) as pg:
            for source in dbt_sources():
                query = _export_query(con, source)
                columns = con.execute(f"describe {query}").fetchall()
                csv_path = tmp_dir / f"{source.schema}.{source.table}.csv"
                # Timestamps are written with their offset (the session is UTC); NULL is an empty
                # unquoted field and an empty string a quoted one, which Postgres' CSV reads back the same.
                con.execute(f"copy ({query}) to '{csv_path}' (format csv, header true)")
                pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(source.schema)))
                target = sql.Identifier(source.schema, source.table)
                pg.execute(sql.SQL("drop table if exists {} cascade").format(target))
                column_list = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c[0]), sql.SQL(_pg_type(c[1])))
                                                 for c in columns)
                pg.execute(sql.SQL("create table {} ({})").format(target, column_list))
                with pg.cursor().copy(sql.SQL("copy {} from stdin (format csv, header true)").format(target)) as cp, \
                        open(csv_path, "rb") as fh:
                    while block := fh.read(1 << 20):
                        cp.write(block)
                rows = pg.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()[0]
                pg.execute(sql.SQL("analyze {}").format(target))
                copied.append(CopiedTable(source.name, rows))
    except psycopg.OperationalError as exc:
        raise TargetLoadError(f"cannot reach the Postgres dbt target: {str(exc).strip().splitlines()[0]}") from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return copied


def export_raw_for_spark(settings: Settings) -> list[CopiedTable]:
    """Write each source table as a Parquet folder that dbt's on-run-start registers in Spark's databases."""
    copied = []
    with connect(settings, read_only=True) as con:
        for source in dbt_sources():
            query = _export_query(con, source)
            root = spark_source_dir(settings, source.schema)
            root.mkdir(parents=True, exist_ok=True)
            # Write beside, then swap, so a failed export never leaves a half-written folder behind.
            final, staging = root / source.table, root / f".{source.table}.new"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            con.execute(f"copy ({query}) to '{staging / 'part-0.parquet'}' (format parquet)")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
            rows = con.execute(f"select count(*) from ({query})").fetchone()[0]
            copied.append(CopiedTable(source.name, rows))
    return copied


def load_raw_for_target(settings: Settings) -> list[CopiedTable]:
    """Make the raw tables available to the configured dbt target (nothing to do for DuckDB)."""
    started = time.perf_counter()
    if settings.dbt_target == "duckdb":
        return []
    if settings.dbt_target == "postgres":
        copied = copy_raw_to_postgres(settings)
    elif settings.dbt_target == "spark":
        copied = export_raw_for_spark(settings)
    else:
        raise TargetLoadError(f"unknown dbt target {settings.dbt_target!r}: use duckdb, postgres or spark")
    log.info("source tables for dbt target %s: %s in %.1f s", settings.dbt_target,
             ", ".join(f"{c.table}={c.rows}" for c in copied), time.perf_counter() - started)
    return copied
