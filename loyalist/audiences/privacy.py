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
from loyalist.warehouse import insert_rows

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


# --------------------------------------------------------------------------------------------------
# Honouring the suppression list at ingestion: rows of erased people never reach raw or quarantine.
# --------------------------------------------------------------------------------------------------
# SQL twin of dbt's macro normalize_phone (CN mobiles -> E.164), so a suppressed phone matches however
# a source writes it. Keep the two in step: tests/audiences/test_suppression_at_ingest.py suppresses a phone
# that the source writes differently.
PHONE_E164_SQL = """case
    when length({d}) = 11 and {d} like '1%' and trim({p}) not like '+%' then '+86' || {d}
    when length({d}) = 13 and {d} like '861%' then '+' || {d}
    when length({d}) = 15 and {d} like '00861%' and trim({p}) not like '+%' then '+' || substr({d}, 3)
end"""


def _phone_sql(column: str) -> str:
    return PHONE_E164_SQL.format(d=f"regexp_replace({column}, '[^0-9]', '', 'g')", p=column)


class Suppression:
    """The erased-people part of the suppression list, applied to one load's typed rows (temp table ``_typed``)."""

    def __init__(self, settings: Settings, hashes: dict[str, set[str]]):
        self.settings = settings
        self.hashes = hashes

    @classmethod
    def load(cls, settings: Settings) -> Suppression:
        return cls(settings, suppressed_hashes(settings, None))

    def __bool__(self) -> bool:
        return any(self.hashes.values())

    def drop_from_typed(self, con, entity_name: str, columns: list[str]) -> dict[str, int]:
        """Delete suppressed rows from ``_typed``; return rows dropped per source file."""
        if not self:
            return {}
        con.execute("create or replace temp table _suppressed (key_kind varchar, key_sha256 varchar)")
        insert_rows(con, "_suppressed", ["key_kind", "key_sha256"],
                    [(k, h) for k, hs in self.hashes.items() for h in hs])
        conds = []
        if {"source_system", "source_customer_id"} <= set(columns):
            conds.append("sha256(source_system || ':' || source_customer_id) in "
                         "(select key_sha256 from _suppressed where key_kind = 'account')")
        if "email" in columns:
            conds.append("sha256(lower(trim(email))) in (select key_sha256 from _suppressed where key_kind = 'email')")
        if "phone" in columns:
            conds.append(f"sha256({_phone_sql('phone')}) in "
                         "(select key_sha256 from _suppressed where key_kind = 'phone')")
        if entity_name == "order_items":
            conds.append("sha256(order_id) in (select key_sha256 from _suppressed where key_kind = 'order')")
        if not conds:
            return {}
        where = " or ".join(f"coalesce({c}, false)" for c in conds)
        con.execute(f"create or replace temp table _dropped as select * from _typed where {where}")
        if entity_name == "orders":  # their order lines may arrive in later files: suppress those too
            new_orders = {r[0] for r in con.execute("select sha256(order_id) from _dropped "
                                                    "where order_id is not null").fetchall()}
            if new_orders - self.hashes.get("order", set()):
                add_suppressions(self.settings, [("order", h) for h in new_orders], reason="erased", hashed=True)
                self.hashes.setdefault("order", set()).update(new_orders)
        counts = dict(con.execute("select _source_file, count(*) from _dropped group by all").fetchall())
        con.execute(f"delete from _typed where {where}")
        return counts
