"""Platform normalisation and hashing against known vectors.

Expected hashes are computed here from the documented normal forms with hashlib, independently of
the code under test (which must produce the same normal form first).
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from loyalist.audiences import formats
from loyalist.audiences.normalize import (
    normalize_email,
    normalize_email_google,
    phone_digits,
    phone_e164,
    sha256_hex,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_sha256_known_vector():
    # Well-known digest of "test@example.com", written out so the helper itself is pinned.
    assert sha256_hex("test@example.com") == "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    assert sha256_hex("test@example.com") == sha("test@example.com")


@pytest.mark.parametrize(("raw", "normal"), [
    ("  Test@Example.COM ", "test@example.com"),
    ("ALICE.W@qq.com", "alice.w@qq.com"),
    ("no-at-sign.example.com", None),
    ("a@b@c.com", None),
    ("", None),
    (None, None),
])
def test_email_normal_form(raw, normal):
    assert normalize_email(raw) == normal


def test_google_drops_dots_in_gmail_local_part_only():
    assert normalize_email_google(" Jane.Doe@Gmail.com") == "janedoe@gmail.com"
    assert normalize_email_google("jane.doe@googlemail.com") == "janedoe@googlemail.com"
    assert normalize_email_google("jane.doe@163.com") == "jane.doe@163.com"


@pytest.mark.parametrize("raw", ["+86 138 0013 8000", "13800138000", "0086-138-0013-8000", "+8613800138000",
                                 "138-0013-8000", "86 13800138000"])
def test_phone_forms_of_one_mobile(raw):
    assert phone_e164(raw) == "+8613800138000"  # Google: E.164 with '+'
    assert phone_digits(raw) == "8613800138000"  # Meta: digits with country code, no '+'


def test_foreign_and_invalid_phones():
    assert phone_e164("+1 650-253-0000") == "+16502530000"
    assert phone_digits("+44 20 7183 8750") == "442071838750"
    assert phone_e164("12345") is None and phone_e164("not a phone") is None and phone_e164(None) is None


def _members():
    return pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "full_name": ["王小明", "Ada Lovelace", None],
        "email": [" Test@Example.com", None, "jane.doe@gmail.com"],
        "phone": ["+86 138 0013 8000", "+8613900139000", None],
        "city": ["Shanghai", "Beijing", None],
    })


def test_google_ads_file(tmp_path):
    path = tmp_path / "g.csv"
    ids = formats.write(_members(), "google_ads", path, tag="t")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Email,Phone" and ids == ["C1", "C2", "C3"]
    assert lines[1] == f"{sha('test@example.com')},{sha('+8613800138000')}"
    assert lines[2] == f",{sha('+8613900139000')}"
    assert lines[3] == f"{sha('janedoe@gmail.com')},"


def test_meta_file(tmp_path):
    path = tmp_path / "m.csv"
    formats.write(_members(), "meta", path, tag="t")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "email,phone"
    assert lines[1] == f"{sha('test@example.com')},{sha('8613800138000')}"
    assert lines[2] == f",{sha('8613900139000')}"
    assert lines[3] == f"{sha('jane.doe@gmail.com')},"  # Meta does not drop Gmail dots


def test_mailchimp_file_has_plain_emails_and_split_names(tmp_path):
    path = tmp_path / "mc.csv"
    ids = formats.write(_members(), "mailchimp", path, tag="birthday")
    assert ids == ["C1", "C3"]  # C2 has no email: Mailchimp cannot reach them
    assert path.read_text(encoding="utf-8").splitlines() == [
        "Email Address,First Name,Last Name,Tags",
        "test@example.com,小明,王,birthday",
        "jane.doe@gmail.com,,,birthday",
    ]
