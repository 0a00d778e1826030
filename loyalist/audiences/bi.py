"""BI without raw PII: a separate readers' file holding only schema ``bi`` with masked/hashed columns.

DuckDB has no users or GRANTs: anyone who can open a file can read every table in it. So the
restriction is physical: the published copy (raw, staging, intermediate, marts, ml: restricted, for the
pipeline, exports and privacy work) and a BI copy ``<published dir>/loyalist_bi.duckdb`` that is built
from it and never contains raw PII. BI tools get only the BI file.

In the BI copy every mart and model-output table appears as ``bi.<schema>__<table>`` with:

* ``full_name`` -> ``full_name_masked`` (first character + '**'),
* ``email_normalized`` / ``phone_e164`` -> ``email_sha256`` / ``phone_sha256`` (join keys for campaign
  results, not readable),
* ``birth_date`` dropped (``birth_month``, ``age`` and ``age_band`` stay),
* any other column whose name looks personal (``PII_NAME_RE``) and is not in ``MASKS`` is dropped,
  so a new PII column in a mart fails safe (hidden) until someone decides how to mask it.

On PostgreSQL (the production target) the same is done with schemas and GRANTs; see docs/audiences.md.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import duckdb

from loyalist.config import Settings

log = logging.getLogger(__name__)

BI_SCHEMAS = ("marts", "ml")  # what BI may see, masked; raw/staging/intermediate never leave the restricted copy
MASKS = {
    "full_name": ("full_name_masked", "case when {c} is null then null else left({c}, 1) || '**' end"),
    "email_normalized": ("email_sha256", "sha256({c})"),
    "phone_e164": ("phone_sha256", "sha256({c})"),
    "birth_date": (None, None),
}
PII_NAME_RE = re.compile(r"(email|phone|mobile|full_name|first_name|last_name|address|birth_date|passport|id_card)")


def bi_path(settings: Settings) -> Path:
    from loyalist.pipeline import published_path

    return published_path(settings).with_name("loyalist_bi.duckdb")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def masked_select(schema: str, table: str, columns: list[str]) -> str:
    exprs = []
    for c in columns:
        if c in MASKS:
            alias, template = MASKS[c]
            if alias:
                exprs.append(f"{template.format(c=_q(c))} as {_q(alias)}")
        elif c.startswith("consent_") or not PII_NAME_RE.search(c):
            exprs.append(_q(c))
    return f"select {', '.join(exprs)} from src.{_q(schema)}.{_q(table)}"


def publish_bi(settings: Settings) -> Path:
    """Rebuild the BI copy from the published copy and swap it in atomically."""
    from loyalist.pipeline import published_path

    source = published_path(settings)
    if not source.exists():
        raise FileNotFoundError(f"no published warehouse at {source}: run the daily DAG first")
    target = bi_path(settings)
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute("attach ? as src (read_only)", [str(source)])
        con.execute("create schema bi")
        tables = con.execute(
            "select table_schema, table_name, list(column_name order by ordinal_position) "
            "from information_schema.columns where table_catalog = 'src' and table_schema in (select unnest(?)) "
            "group by all order by 1, 2", [list(BI_SCHEMAS)]).fetchall()
        for schema, table, columns in tables:
            con.execute(f"create table bi.{_q(f'{schema}__{table}')} as {masked_select(schema, table, columns)}")
        con.execute("detach src")
    os.replace(tmp, target)
    log.info("published BI copy %s (%s tables)", target, len(tables))
    return target
