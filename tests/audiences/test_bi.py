"""The BI copy holds no raw PII: names masked, emails and phones hashed, unknown personal columns dropped."""

from __future__ import annotations

import hashlib

import duckdb

from loyalist.audiences.bi import publish_bi

from .builders import build_published, customer


def test_bi_copy_has_no_raw_pii(settings):
    people = [customer(i, full_name=f"欧阳{i}", email_normalized=f"person{i}@example.com") for i in range(5)]
    published = build_published(settings, people)
    with duckdb.connect(str(published)) as con:  # a column added later that nobody classified yet
        con.execute("alter table marts.customers add column backup_email varchar default 'x@y.com'")
        con.execute("create schema raw; create table raw.customers as select 'raw@example.com' as email")
    path = publish_bi(settings)

    with duckdb.connect(str(path), read_only=True) as con:
        schemas = {r[0] for r in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
        assert schemas == {"bi"}
        columns = [r[0] for r in con.execute("select column_name from information_schema.columns "
                                             "where table_name = 'marts__customers'").fetchall()]
        assert {"full_name_masked", "email_sha256", "phone_sha256", "consent_email"} <= set(columns)
        assert not {"full_name", "email_normalized", "phone_e164", "birth_date", "backup_email"} & set(columns)
        text = " ".join(str(v) for row in con.execute("select * from bi.marts__customers").fetchall() for v in row)
        row = con.execute("select full_name_masked, email_sha256 from bi.marts__customers "
                          "where customer_id = ?", [people[1]["customer_id"]]).fetchone()
    for p in people:
        assert p["email_normalized"] not in text and p["phone_e164"] not in text and p["full_name"] not in text
    assert row == ("欧**", hashlib.sha256(b"person1@example.com").hexdigest())
