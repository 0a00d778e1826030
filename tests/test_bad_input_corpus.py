"""The bad-input corpus: each broken file with the outcome it must have.

Outcomes: rows loaded / quarantined (with a reason fragment), or the batch fails with a message
naming the file. Conservation (read = loaded + quarantined) is checked for every loaded case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from loyalist.ingest import IngestError, ingest_landing
from loyalist.warehouse import connect

DAY = date(2025, 3, 31)
HEADER = "order_id,source_customer_id,ordered_at,net_amount"
LONG_TEXT = "很好" * 50_000  # 100k characters of Chinese


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    loaded: int = 0
    quarantined: int = 0
    reason: str = ""
    batch_error: str = ""
    entity: str = "orders"


def _csv(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


CASES = [
    Case("malformed_lines", _csv(HEADER, "A,c,2025-03-31 01:00:00,1", "B,c", "C,c,2025-03-31 02:00:00,2,x,y"),
         loaded=1, quarantined=2, reason="malformed line"),
    Case("wrong_types", _csv(HEADER, "A,c,yesterday,1", "B,c,2025-03-31 01:00:00,ten"),
         quarantined=2, reason="cannot read"),
    Case("nan_amount", _csv(HEADER, "A,c,2025-03-31 01:00:00,NaN"), quarantined=1),
    Case("negative_sale", _csv(HEADER + ",transaction_type", "A,c,2025-03-31 01:00:00,-5,sale"),
         quarantined=1, reason="net_amount: breaks rule"),
    Case("absurd_amount", _csv(HEADER, "A,c,2025-03-31 01:00:00,99999999"),
         quarantined=1, reason="breaks rule abs(net_amount)"),
    Case("duplicate_ids_in_file", _csv(HEADER, "A,c,2025-03-31 01:00:00,1", "A,c,2025-03-31 01:00:00,1"),
         loaded=1, quarantined=1, reason="duplicate key in file"),
    Case("future_timestamp", _csv(HEADER, "A,c,2031-01-01 00:00:00,1"), quarantined=1, reason="in the future"),
    Case("naive_and_aware_timestamps", _csv(HEADER, "A,c,2025-03-31 10:00:00,1", "B,c,2025-03-31T18:00:00+08:00,1"),
         loaded=2),
    Case("empty_file", b"", batch_error="file is empty"),
    Case("header_only", _csv(HEADER), loaded=0),
    Case("missing_required_column", _csv("order_id,ordered_at,net_amount", "A,2025-03-31,1"),
         batch_error="required column(s) missing: source_customer_id"),
    Case("extra_and_reordered_columns", _csv("net_amount,coupon_code," + "ordered_at,source_customer_id",
                                             "5,X1,2025-03-31 01:00:00,c"), loaded=1),
    Case("gbk_chinese_text", _csv("feedback_id,source_system,source_customer_id,feedback_type,text,created_at,"
                                  "updated_at", "F1,web,W1,review,物流太慢了，质量很好,2025-03-31 01:00:00,"
                                  "2025-03-31 01:00:00", encoding="gbk"), loaded=1, entity="feedback"),
    Case("very_long_text", _csv("feedback_id,source_system,source_customer_id,feedback_type,text,created_at,"
                                "updated_at", f"F2,web,W1,review,{LONG_TEXT},2025-03-31 01:00:00,2025-03-31 01:00:00"),
         loaded=1, entity="feedback"),
    Case("sql_and_html_text", _csv(
        "feedback_id,source_system,source_customer_id,feedback_type,text,created_at,updated_at",
        "F3,web,W1,review,\"'); drop table raw.orders; --\",2025-03-31 01:00:00,2025-03-31 01:00:00",
        "F4,web,W1,review,<script>alert('x')</script>,2025-03-31 01:00:00,2025-03-31 01:00:00"),
         loaded=2, entity="feedback"),
    Case("binary_garbage", b"\x00\x01\xff\xfe" * 100, batch_error=""),
]


def _ingest(settings):
    with connect(settings) as con:
        return ingest_landing(con, settings.landing_dir, DAY, date(2025, 4, 1), "corpus",
                              datetime(2025, 4, 1, 1, tzinfo=UTC), ["orders", "feedback"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_has_its_expected_outcome(case: Case, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    path = landing / case.entity / f"dt={DAY}" / f"{case.name}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(case.content)
    monkeypatch.setenv("LOYALIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOYALIST_LANDING_DIR", str(landing))
    from loyalist.config import get_settings

    settings = get_settings()
    if case.batch_error or case.name == "binary_garbage":
        with pytest.raises(IngestError) as err:
            _ingest(settings)
        assert str(path) in str(err.value) and case.batch_error in str(err.value)
        assert "\n" not in str(err.value)
        return
    (result,) = _ingest(settings)
    assert (result.rows_loaded, result.rows_quarantined) == (case.loaded, case.quarantined)
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    with connect(settings) as con:
        reasons = [r[0] for r in con.execute(f"select reasons from raw.{case.entity}__quarantine").fetchall()]
        if case.reason:
            assert reasons and all(case.reason in r for r in reasons), reasons
        if case.name == "gbk_chinese_text":
            assert con.execute("select text from raw.feedback").fetchone()[0] == "物流太慢了，质量很好"
        if case.name == "very_long_text":
            assert con.execute("select length(text) from raw.feedback").fetchone()[0] == len(LONG_TEXT)
        if case.name == "sql_and_html_text":
            texts = {r[0] for r in con.execute("select text from raw.feedback").fetchall()}
            assert "<script>alert('x')</script>" in texts and "'); drop table raw.orders; --" in texts
            assert con.execute("select count(*) from raw.orders").fetchone()[0] == 0  # still there, untouched
