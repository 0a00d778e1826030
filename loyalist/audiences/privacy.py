"""The privacy and audit file: suppression list, export manifests and members, erasure records.

It is a separate small DuckDB file (``<data dir>/privacy/audit.duckdb``), not a schema of the
warehouse, because:

* the warehouse may be locked for minutes by a running DAG (DuckDB has one writer and no readers
  beside it), and an export or an erasure must still be recorded;
* exports read the published copy, which is replaced wholesale at every publish: an audit table
  inside it would be overwritten;
* the suppression list must outlive any rebuild of the warehouse (``dbt --full-refresh``, a reload
  from the landing zone): it is what keeps an erased person out of future loads.

Connections are short (open, write, close) and retried for a few seconds when another process holds
the file. It stores no raw PII: suppression keys and erasure requests are SHA-256 hashes of the
normalised identifier.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import duckdb

from loyalist.audiences.normalize import normalize_email, phone_e164, sha256_hex
from loyalist.config import Settings

KEY_KINDS = ("customer", "account", "email", "phone", "order")
ALL_CHANNELS = "all"

SCHEMA = """
create table if not exists suppression_list (
    key_kind varchar not null,      -- customer | account | email | phone | order
    key_sha256 varchar not null,    -- sha256 of the normalised identifier
    reason varchar not null,        -- erased | unsubscribed | ...
    channel varchar not null,       -- 'all' or one marketing channel
    request_id varchar,
    added_at timestamptz not null default now(),
    primary key (key_kind, key_sha256, channel)
);
create table if not exists audience_exports (
    export_id varchar primary key,
    audience varchar not null,
    format varchar not null,
    channel varchar not null,
    definition_sha256 varchar not null,
    as_of_date date not null,
    row_count bigint not null,
    file_path varchar not null,
    file_sha256 varchar not null,
    previous_export_id varchar,
    adds bigint not null,
    removes bigint not null,
    suppressed bigint not null,
    triggered_by varchar not null,
    exported_at timestamptz not null
);
create table if not exists audience_export_members (
    export_id varchar not null,
    customer_id varchar not null,
    primary key (export_id, customer_id)
);
create table if not exists erasure_requests (
    request_id varchar primary key,
    requested_at timestamptz not null,
    key_kind varchar not null,
    key_sha256 varchar not null,
    customers_found bigint not null,
    rows_removed bigint not null,
    tables_touched varchar not null,
    triggered_by varchar not null
);
"""


def audit_path(settings: Settings) -> Path:
    return settings.data_dir / "privacy" / "audit.duckdb"


@contextmanager
def open_audit(settings: Settings, read_only: bool = False, wait_s: float = 30.0):
    """A short connection to the audit file, retried while another process holds it."""
    path = audit_path(settings)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        if not read_only:
            con.execute(SCHEMA)
        yield con
    finally:
        con.close()


def key_hash(kind: str, value: str) -> str | None:
    """Hash of the identifier in its normal form (None when it cannot be normalised)."""
    if kind == "email":
        value = normalize_email(value)
    elif kind == "phone":
        value = phone_e164(value)
    elif kind not in KEY_KINDS:
        raise ValueError(f"unknown key kind {kind!r}")
    return sha256_hex(value) if value else None


def add_suppressions(settings: Settings, entries: Iterable[tuple[str, str]], reason: str,
                     channel: str = ALL_CHANNELS, request_id: str | None = None, hashed: bool = False) -> int:
    """Add (kind, value) keys to the suppression list; ``hashed`` = values are already key hashes."""
    rows = []
    for kind, value in entries:
        h = value if hashed else key_hash(kind, value)
        if h:
            rows.append((kind, h, reason, channel, request_id))
    if not rows:
        return 0
    with open_audit(settings) as con:
        con.executemany("insert or ignore into suppression_list (key_kind, key_sha256, reason, channel, request_id) "
                        "values (?, ?, ?, ?, ?)", rows)
    return len(rows)


def suppressed_hashes(settings: Settings, channel: str | None = None) -> dict[str, set[str]]:
    """kind -> hashes suppressed for ``channel`` (entries for 'all' always count); empty if no file yet."""
    out: dict[str, set[str]] = {k: set() for k in KEY_KINDS}
    if not audit_path(settings).exists():
        return out
    with open_audit(settings, read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        if "suppression_list" not in tables:
            return out
        rows = con.execute("select key_kind, key_sha256 from suppression_list where channel = ? or channel = ?",
                           [ALL_CHANNELS, channel or ALL_CHANNELS]).fetchall()
    for kind, h in rows:
        out.setdefault(kind, set()).add(h)
    return out
