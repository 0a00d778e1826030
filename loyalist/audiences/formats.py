"""Export formats: member rows -> the file each destination imports.

``csv`` / ``parquet`` keep plain values for internal use. The platform formats follow each platform's
documented import layout: Google Ads Customer Match (headers ``Email``, ``Phone``; SHA-256 of the
normalised value, phone in E.164 with '+'), Meta custom audience customer list (headers ``email``,
``phone``; SHA-256, phone as digits with country code and no '+'), Mailchimp contact import
(``Email Address``, ``First Name``, ``Last Name``, ``Tags``; plain, Mailchimp sends the mail).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from loyalist.audiences.normalize import (
    hashed,
    normalize_email,
    normalize_email_google,
    phone_digits,
    phone_e164,
)

EXTENSIONS = {"csv": "csv", "parquet": "parquet", "google_ads": "csv", "meta": "csv", "mailchimp": "csv"}
PLAIN_COLUMNS = ["customer_id", "full_name", "email", "phone", "city"]


def split_name(full_name: str | None) -> tuple[str, str]:
    """(first, last): 'Ada Lovelace' -> ('Ada', 'Lovelace'); a Chinese name '王小明' -> ('小明', '王')
    (one-character family name first, the common case; compound surnames stay in the first name)."""
    name = full_name.strip() if isinstance(full_name, str) else ""
    if not name:
        return "", ""
    if " " in name:
        first, _, last = name.partition(" ")
        return first, last.strip()
    if len(name) >= 2 and all("\u4e00" <= ch <= "\u9fff" for ch in name):
        return name[1:], name[0]
    return name, ""


Rows = list[tuple[str, list[str]]]  # (customer_id, the row written for them)


def google_ads_rows(members: pd.DataFrame) -> Rows:
    rows = []
    for cid, email, phone in zip(members["customer_id"], members["email"], members["phone"], strict=True):
        e, p = hashed(normalize_email_google(email)), hashed(phone_e164(phone))
        if e or p:
            rows.append((cid, [e or "", p or ""]))
    return rows


def meta_rows(members: pd.DataFrame) -> Rows:
    rows = []
    for cid, email, phone in zip(members["customer_id"], members["email"], members["phone"], strict=True):
        e, p = hashed(normalize_email(email)), hashed(phone_digits(phone))
        if e or p:
            rows.append((cid, [e or "", p or ""]))
    return rows


def mailchimp_rows(members: pd.DataFrame, tag: str) -> Rows:
    rows = []
    for cid, email, name in zip(members["customer_id"], members["email"], members["full_name"], strict=True):
        e = normalize_email(email)
        if e:
            first, last = split_name(name)
            rows.append((cid, [e, first, last, tag]))
    return rows


def plain_rows(members: pd.DataFrame) -> Rows:
    frame = members[PLAIN_COLUMNS].astype(object)
    frame = frame.where(frame.notna(), "")
    return [(r[0], [str(v) for v in r]) for r in frame.itertuples(index=False, name=None)]


CSV_LAYOUTS: dict[str, tuple[list[str], Callable[[pd.DataFrame, str], Rows]]] = {
    "google_ads": (["Email", "Phone"], lambda m, _tag: google_ads_rows(m)),
    "meta": (["email", "phone"], lambda m, _tag: meta_rows(m)),
    "mailchimp": (["Email Address", "First Name", "Last Name", "Tags"], mailchimp_rows),
    "csv": (PLAIN_COLUMNS, lambda m, _tag: plain_rows(m)),
}


def write(members: pd.DataFrame, fmt: str, path: Path, tag: str) -> list[str]:
    """Write ``members`` in ``fmt`` to ``path``; returns the customer ids that got a row, in file order.

    A member the format cannot address (e.g. no valid email for Mailchimp) gets no row.
    """
    if fmt == "parquet":
        members[PLAIN_COLUMNS].to_parquet(path, index=False)
        return list(members["customer_id"])
    header, build = CSV_LAYOUTS[fmt]
    rows = build(members, tag)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(r for _, r in rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return [cid for cid, _ in rows]
