"""Right to erasure: ``loyalist forget --email/--phone/--customer-id``.

1. Resolve the person in the working warehouse: every customer id the key points to, every source
   account of those customers (identity audit), their order ids, and every email/phone they used.
2. In one transaction, delete their rows from every base table: by ``customer_id``, by account
   (``source_system`` + ``source_customer_id`` or ``account_key``), by ``order_id``, and quarantine
   rows whose original values carry any of their identifiers. Staging and intermediate are views over
   raw, so they follow. Then search every column of every table and view for any identifier and
   roll back if a trace is left.
3. Add their hashed keys to the suppression list (future loads and exports skip them), drop them from
   export member lists, and write an erasure record (hashes only) to the audit file.
4. Apply the same deletion to a copy of the published warehouse and swap it in atomically, so
   readers never see them again and never see a half-erased file.

Deleting (not anonymising) is the choice: aggregates (funnel counts, segment sizes) are recomputed
by the next daily run, and nothing downstream needs an anonymous stand-in row.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import duckdb

from loyalist.audiences import privacy
from loyalist.audiences.normalize import normalize_email, phone_e164, sha256_hex
from loyalist.config import Settings
from loyalist.warehouse import connect

log = logging.getLogger(__name__)
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


class ForgetError(Exception):
    """Erasure cannot run or could not be verified; one clear line."""


@dataclass
class Person:
    customer_ids: set[str] = field(default_factory=set)
    accounts: set[tuple[str, str]] = field(default_factory=set)  # (source_system, source_customer_id)
    order_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)  # as stored anywhere (raw spelling) and normalised
    phones: set[str] = field(default_factory=set)  # as stored anywhere and E.164

    def tokens(self) -> tuple[set[str], set[str]]:
        """(exact values, substrings) that betray the person wherever they appear."""
        exact = {sid for _, sid in self.accounts} | self.order_ids | {f"{s}:{i}" for s, i in self.accounts}
        digits = {"".join(ch for ch in p if ch.isdigit()) for p in self.phones}
        contains = self.customer_ids | {e for e in self.emails if e} | {d[-11:] for d in digits if len(d) >= 8}
        return exact, contains


@dataclass
class ForgetReport:
    request_id: str
    key_kind: str
    customers_found: int
    rows_removed: dict[str, int]
    published_rows_removed: dict[str, int]
    suppression_keys: int

    def summary(self) -> str:
        total = sum(self.rows_removed.values())
        return (f"forgot {self.customers_found} customer(s): {total} row(s) removed from "
                f"{len(self.rows_removed)} table(s) of the warehouse, "
                f"{sum(self.published_rows_removed.values())} from the published copy; "
                f"{self.suppression_keys} key(s) suppressed (request {self.request_id})")


def _tables(con, kind: str = "BASE TABLE") -> list[tuple[str, str, list[str]]]:
    rows = con.execute("""
        select t.table_schema, t.table_name, list(c.column_name order by c.ordinal_position)
        from information_schema.tables t
        join information_schema.columns c using (table_catalog, table_schema, table_name)
        where t.table_type = ? and t.table_schema not in ('information_schema', 'pg_catalog')
        group by all order by 1, 2""", [kind]).fetchall()
    return [(s, t, cols) for s, t, cols in rows]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def resolve(con, key_kind: str, value: str) -> Person:
    """Everything that identifies the person behind one key, from marts and raw."""
    p = Person()
    tables = {f"{s}.{t}" for s, t, _ in _tables(con)}
    if key_kind == "customer_id":
        p.customer_ids.add(value)
    elif "marts.customers" in tables:
        column = "email_normalized" if key_kind == "email" else "phone_e164"
        p.customer_ids |= {r[0] for r in con.execute(
            f"select customer_id from marts.customers where {column} = ?", [value]).fetchall()}
    if "raw.customers" in tables and key_kind in ("email", "phone"):
        cond = ("lower(trim(email)) = ?" if key_kind == "email"
                else f"{privacy._phone_sql('phone')} = ?")
        p.accounts |= set(con.execute(f"select source_system, source_customer_id from raw.customers where {cond}",
                                      [value]).fetchall())
    if "marts.customer_identity_audit" in tables:
        # accounts -> customers, then customers -> all their accounts
        for s, i in list(p.accounts):
            p.customer_ids |= {r[0] for r in con.execute(
                "select customer_id from marts.customer_identity_audit where account_key = ?", [f"{s}:{i}"]).fetchall()}
        if p.customer_ids:
            p.accounts |= {tuple(r) for r in con.execute(
                "select source_system, source_customer_id from marts.customer_identity_audit "
                "where customer_id in (select unnest(?))", [sorted(p.customer_ids)]).fetchall()}
    keys = sorted(f"{s}:{i}" for s, i in p.accounts)
    if "raw.customers" in tables and keys:
        for email, phone in con.execute("select email, phone from raw.customers where source_system || ':' || "
                                        "source_customer_id in (select unnest(?))", [keys]).fetchall():
            if email:
                p.emails |= {email, email.strip(), normalize_email(email) or email}
            if phone:
                p.phones |= {phone, phone_e164(phone) or phone}
    if "marts.customers" in tables and p.customer_ids:
        for email, phone in con.execute("select email_normalized, phone_e164 from marts.customers "
                                        "where customer_id in (select unnest(?))", [sorted(p.customer_ids)]).fetchall():
            p.emails |= {email} if email else set()
            p.phones |= {phone} if phone else set()
    if "raw.orders" in tables and keys:
        p.order_ids |= {r[0] for r in con.execute(
            "select order_id from raw.orders where source_system || ':' || source_customer_id in (select unnest(?))",
            [keys]).fetchall()}
    if "marts.transactions" in tables and p.customer_ids:
        p.order_ids |= {r[0] for r in con.execute("select order_id from marts.transactions where customer_id in "
                                                  "(select unnest(?))", [sorted(p.customer_ids)]).fetchall()}
    if key_kind == "email":
        p.emails.add(value)
    elif key_kind == "phone":
        p.phones.add(value)
    p.emails.discard(None)
    p.phones.discard(None)
    return p


def resolve_key_only(key_kind: str, value: str) -> Person:
    p = Person()
    {"email": p.emails, "phone": p.phones, "customer_id": p.customer_ids}[key_kind].add(value)
    return p


def _delete_conditions(columns: list[str], table: str) -> list[tuple[str, list]]:
    conds: list[tuple[str, list]] = []
    if "customer_id" in columns:
        conds.append(("customer_id in (select unnest(?))", ["customer_ids"]))
    if {"source_system", "source_customer_id"} <= set(columns):
        conds.append(("source_system || ':' || source_customer_id in (select unnest(?))", ["account_keys"]))
    for col in columns:  # account_key, and the two ends of an identity edge (account_key_a, account_key_b)
        if col == "account_key" or col.startswith("account_key_"):
            conds.append((f"{_q(col)} in (select unnest(?))", ["account_keys"]))
    for col in ("order_id", "original_order_id"):
        if col in columns:
            conds.append((f"{col} in (select unnest(?))", ["order_ids"]))
    if table.endswith("__quarantine") and "original_values" in columns:
        # Quarantined rows keep the original text: match the account, the order, and any identifier inside.
        conds.append(("json_extract_string(original_values, '$.source_system') || ':' || "
                      "json_extract_string(original_values, '$.source_customer_id') in (select unnest(?))",
                      ["account_keys"]))
        conds.append(("json_extract_string(original_values, '$.order_id') in (select unnest(?))", ["order_ids"]))
        conds.append(("list_bool_or([contains(cast(original_values as varchar), t) for t in ?])", ["substrings"]))
    return conds


def erase(con, person: Person) -> dict[str, int]:
    """Delete the person's rows from every base table; returns rows removed per table."""
    _, contains = person.tokens()
    values = {"customer_ids": sorted(person.customer_ids),
              "account_keys": sorted(f"{s}:{i}" for s, i in person.accounts),
              "order_ids": sorted(person.order_ids), "substrings": sorted(contains) or ["\x00never\x00"]}
    removed = {}
    for schema, table, columns in _tables(con):
        conds = _delete_conditions(columns, table)
        if not conds:
            continue
        where = " or ".join(f"coalesce({sql}, false)" for sql, _ in conds)
        params = [values[name] for _, names in conds for name in names]
        n = con.execute(f"delete from {_q(schema)}.{_q(table)} where {where}", params).fetchone()[0]
        if n:
            removed[f"{schema}.{table}"] = n
    return removed


def find_traces(con, person: Person, kinds: tuple[str, ...] = ("BASE TABLE",)) -> list[str]:
    """Every table.column still holding one of the person's identifiers.

    Base tables only by default: every view of the project selects from them, so a clean set of tables
    means clean views, at a fraction of the cost. (dbt's staging and intermediate models are tables too,
    so they are searched and erased like the marts.)
    """
    exact, contains = person.tokens()
    exact_l, contains_l = sorted(exact) or ["\x00"], sorted(contains) or ["\x00"]
    hits = []
    for kind in kinds:
        for schema, table, columns in _tables(con, kind):
            checks = [f"coalesce(cast({_q(c)} as varchar) in (select unnest($exact)) or "
                      f"list_bool_or([contains(cast({_q(c)} as varchar), t) for t in $contains]), false) as {_q(c)}"
                      for c in columns]
            row = con.execute(f"select {', '.join(f'bool_or({_q(c)})' for c in columns)} from "
                              f"(select {', '.join(checks)} from {_q(schema)}.{_q(table)})",
                              {"exact": exact_l, "contains": contains_l}).fetchone()
            hits += [f"{schema}.{table}.{c}" for c, hit in zip(columns, row, strict=True) if hit]
    return hits


def _open_working(settings: Settings, wait_s: float):
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return connect(settings)
        except duckdb.IOException as exc:
            if time.monotonic() > deadline:
                raise ForgetError(f"the warehouse {settings.warehouse_path} is in use (a pipeline task is running): "
                                  "try again when it has finished") from exc
            time.sleep(2)


def _erase_and_verify(con, person: Person, where: str) -> dict[str, int]:
    con.execute("begin transaction")
    try:
        removed = erase(con, person)
        traces = find_traces(con, person)
        if traces:
            raise ForgetError(f"{where}: traces left after erasure in {', '.join(traces[:10])}; nothing was changed")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return removed


def _erase_published(settings: Settings, person: Person) -> dict[str, int]:
    from loyalist.pipeline import published_path

    target = published_path(settings)
    if not target.exists():
        return {}
    tmp = target.with_suffix(".forget.tmp")
    shutil.copyfile(target, tmp)
    try:
        with connect(settings, tmp) as con:
            removed = _erase_and_verify(con, person, "published copy")
        os.replace(tmp, target)  # readers keep their snapshot; new connections never see the person
    finally:
        tmp.unlink(missing_ok=True)
    return removed


def forget(settings: Settings, *, email: str | None = None, phone: str | None = None,
           customer_id: str | None = None, triggered_by: str = "unknown", wait_s: float = 120) -> ForgetReport:
    """Erase one person everywhere, suppress them for the future, and record it (see module doc)."""
    given = [(k, v) for k, v in (("email", email), ("phone", phone), ("customer_id", customer_id)) if v]
    if len(given) != 1:
        raise ForgetError("give exactly one of --email, --phone, --customer-id")
    kind, raw_value = given[0]
    value = {"email": normalize_email, "phone": phone_e164}.get(kind, str.strip)(raw_value)
    if not value:
        raise ForgetError(f"cannot read {raw_value!r} as {'an' if kind == 'email' else 'a'} {kind}")

    from loyalist.pipeline import published_path

    person = Person()
    removed: dict[str, int] = {}
    if settings.warehouse_path.exists():
        with _open_working(settings, wait_s) as con:
            person = resolve(con, kind, value)
            removed = _erase_and_verify(con, person, "warehouse")
    elif published_path(settings).exists():  # no working copy here (e.g. a readers-only host)
        with connect(settings, published_path(settings), read_only=True) as con:
            person = resolve(con, kind, value)
    else:  # nothing loaded yet: still keep them out of the first load
        person = resolve_key_only(kind, value)
    published = _erase_published(settings, person)
    # A BI copy (masked) is re-derived from the published copy when it exists.
    from loyalist.audiences import bi

    if bi.bi_path(settings).exists():
        bi.publish_bi(settings)

    request_id = uuid.uuid4().hex
    keys = ([("customer", c) for c in person.customer_ids] + [("account", f"{s}:{i}") for s, i in person.accounts]
            + [("email", e) for e in {normalize_email(e) for e in person.emails} if e]
            + [("phone", p) for p in {phone_e164(p) for p in person.phones} if p]
            + [("order", o) for o in person.order_ids])
    added = privacy.add_suppressions(settings, keys, reason="erased", request_id=request_id)
    with privacy.open_audit(settings) as con:
        con.execute("delete from audience_export_members where customer_id in (select unnest(?))",
                    [sorted(person.customer_ids) or [""]])
        con.execute("insert into erasure_requests values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [request_id, datetime.now(UTC), kind, sha256_hex(value), len(person.customer_ids),
                     sum(removed.values()), json.dumps(sorted(removed)), triggered_by])
    report = ForgetReport(request_id, kind, len(person.customer_ids), removed, published, added)
    log.info("%s", report.summary())
    return report


def report_dict(report: ForgetReport) -> dict:
    return asdict(report)


__all__ = ["ForgetError", "ForgetReport", "Person", "find_traces", "forget", "resolve"]
