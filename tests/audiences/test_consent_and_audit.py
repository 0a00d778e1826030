"""Consent is absolute (property test through the real exporter on real DuckDB files); diffs and manifests."""

from __future__ import annotations

import csv
import hashlib
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from loyalist.audiences import privacy
from loyalist.audiences.definitions import CHANNELS, FORMAT_CHANNEL
from loyalist.audiences.export import export_audience
from loyalist.config import get_settings

from .builders import build_published, customer, write_definition


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


person = st.fixed_dictionaries({
    "consent_email": st.booleans(), "consent_sms": st.booleans(), "consent_ads": st.booleans(),
    "has_email": st.booleans(), "has_phone": st.booleans(),
    # None, erased (every channel), or unsubscribed from one channel (e.g. reported back by Mailchimp)
    "suppressed": st.sampled_from([None, "erased", "email", "sms", "ads"]),
    "suppressed_by": st.sampled_from(["customer", "email", "phone"]),
})
FORMATS_BY_CHANNEL = {ch: ["csv", "parquet"] + [f for f, c in FORMAT_CHANNEL.items() if c == ch] for ch in CHANNELS}


def _exported_identifiers(path: Path, fmt: str) -> set[str]:
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        return set(frame["customer_id"]) | set(frame["email"].dropna()) | set(frame["phone"].dropna())
    with path.open(encoding="utf-8") as fh:
        return {v for row in csv.DictReader(fh) for v in row.values() if v}


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(person, min_size=1, max_size=12), channel=st.sampled_from(CHANNELS), data=st.data())
def test_no_export_ever_contains_someone_without_consent_or_suppressed(people, channel, data, monkeypatch):
    fmt = data.draw(st.sampled_from(FORMATS_BY_CHANNEL[channel]), label="format")
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setenv("LOYALIST_DATA_DIR", str(Path(tmp) / "data"))
        settings = get_settings()
        rows, suppressions = [], []
        for i, p in enumerate(people):
            row = customer(i, consent_email=p["consent_email"], consent_sms=p["consent_sms"],
                           consent_ads=p["consent_ads"],
                           email_normalized=f"p{i}@example.com" if p["has_email"] else None,
                           phone_e164=f"+86138{i:08d}" if p["has_phone"] else None)
            rows.append(row)
            if p["suppressed"]:
                key = {"customer": row["customer_id"], "email": row["email_normalized"],
                       "phone": row["phone_e164"]}[p["suppressed_by"]]
                if key:
                    scope = "all" if p["suppressed"] == "erased" else p["suppressed"]
                    suppressions.append((p["suppressed_by"], key, scope))
        build_published(settings, rows)
        for kind, key, scope in suppressions:
            privacy.add_suppressions(settings, [(kind, key)], reason="erased" if scope == "all" else "unsubscribed",
                                     channel=scope)
        defs = Path(tmp) / "defs"
        write_definition(defs, yaml.safe_dump({"name": "everyone", "description": "d", "owner": "o",
                                               "channel": channel, "filters": {"orders_count": {"gte": 0}}}))
        result = export_audience(settings, "everyone", fmt, out_dir=Path(tmp) / "out", triggered_by="test",
                                 audiences_dir=defs)
        exported = _exported_identifiers(Path(result.file_path), fmt)

        blocked = {(kind, key) for kind, key, scope in suppressions if scope in ("all", channel)}
        for i, (p, row) in enumerate(zip(people, rows, strict=True)):
            cid, email, phone = row["customer_id"], row["email_normalized"], row["phone_e164"]
            traces = {cid, email, phone, sha(email or "-"), sha(phone or "-"), sha((phone or "-").lstrip("+"))}
            is_blocked = any((kind, {"customer": cid, "email": email, "phone": phone}[kind]) in blocked
                             for kind in ("customer", "email", "phone"))
            reachable = {"email": email is not None, "sms": phone is not None,
                         "ads": email is not None or phone is not None}[channel]
            if fmt == "mailchimp":
                reachable = email is not None
            allowed = row[f"consent_{channel}"] and not is_blocked and reachable
            if not allowed:
                assert not (traces & exported), (i, p, channel, fmt)
            else:  # and nobody who may be reached is lost on the way
                assert traces & exported, (i, p, channel, fmt)


def test_diffs_manifest_and_audit_rows(settings, tmp_path):
    defs = tmp_path / "defs"
    write_definition(defs, yaml.safe_dump({"name": "sms_active", "description": "d", "owner": "o", "channel": "sms",
                                           "filters": {"lifecycle_stage": "active"}}))
    build_published(settings, [customer(1), customer(2), customer(3, lifecycle_stage="churned")])
    first = export_audience(settings, "sms_active", "csv", out_dir=tmp_path / "out", triggered_by="cli:alice",
                            audiences_dir=defs)
    assert (first.row_count, first.adds, first.removes, first.previous_export_id) == (2, 2, 0, None)

    # Next day: customer 2 opted out of SMS, customer 3 came back.
    build_published(settings, [customer(1), customer(2, consent_sms=False), customer(3)])
    second = export_audience(settings, "sms_active", "csv", out_dir=tmp_path / "out", triggered_by="airflow:x",
                             audiences_dir=defs)
    assert (second.row_count, second.adds, second.removes) == (2, 1, 1)
    assert second.previous_export_id == first.export_id
    assert Path(second.adds_path).read_text(encoding="utf-8").split() == ["customer_id", f"C{3:016x}"]
    assert Path(second.removes_path).read_text(encoding="utf-8").split() == ["customer_id", f"C{2:016x}"]
    assert second.file_sha256 == hashlib.sha256(Path(second.file_path).read_bytes()).hexdigest()
    assert Path(second.manifest_path).exists()
    # The same data again: the same bytes, nothing added or removed.
    third = export_audience(settings, "sms_active", "csv", out_dir=tmp_path / "out", triggered_by="airflow:x",
                            audiences_dir=defs)
    assert (third.file_sha256, third.adds, third.removes) == (second.file_sha256, 0, 0)

    with duckdb.connect(str(privacy.audit_path(settings)), read_only=True) as con:
        rows = con.execute("select audience, format, definition_sha256, as_of_date::varchar, row_count, "
                           "file_sha256, triggered_by from audience_exports order by exported_at").fetchall()[:2]
        members = con.execute("select count(*) from audience_export_members where export_id = ?",
                              [second.export_id]).fetchone()[0]
    assert [r[6] for r in rows] == ["cli:alice", "airflow:x"]
    assert rows[1][:5] == ("sms_active", "csv", first.definition_sha256, "2025-03-31", 2)
    assert rows[1][5] == second.file_sha256 and members == 2
