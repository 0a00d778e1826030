"""Feedback marts through the real steps: ingest -> classify_feedback -> dbt build, on the tiny sample
plus a hand-made complaint that is resolved, reopened and resolved again.

A dbt build of its own (about a minute alone); the rules themselves are also dbt unit tests, which
tests/test_fourc_and_recommendations.py runs (`dbt_unit_tests`).
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime

import pytest

from loyalist.pipeline import classify_feedback, dbt_build, ingest_interval
from loyalist.warehouse import connect

HEADER = ("feedback_id,source_system,source_customer_id,feedback_type,order_id,score,text,language,channel,status,"
          "created_at,first_response_at,resolved_at,updated_at")
AS_OF = date(2025, 3, 31)


def _add_reopened_complaint(landing) -> tuple[str, str]:
    """X1: made 03-20 10:00, answered after 30 h, resolved 03-22, reopened 03-24, resolved 03-27."""
    with open(next((landing / "orders").rglob("orders.csv")), encoding="utf-8") as f:
        order = next(csv.DictReader(f))
    who = f"{order['source_system']},{order['source_customer_id']},complaint,{order['order_id']},"
    text = "快递太慢了，包裹还压坏了"
    versions = {
        "2025-03-20": f"X1,{who},{text},zh,web,open,2025-03-20 10:00:00Z,2025-03-21 16:00:00Z,,2025-03-20 10:00:00Z",
        "2025-03-22": f"X1,{who},{text},zh,web,resolved,2025-03-20 10:00:00Z,2025-03-21 16:00:00Z,"
                      "2025-03-22 10:00:00Z,2025-03-22 10:00:00Z",
        "2025-03-24": f"X1,{who},{text},zh,web,open,2025-03-20 10:00:00Z,2025-03-21 16:00:00Z,,2025-03-24 10:00:00Z",
        "2025-03-27": f"X1,{who},{text},zh,web,resolved,2025-03-20 10:00:00Z,2025-03-21 16:00:00Z,"
                      "2025-03-27 10:00:00Z,2025-03-27 10:00:00Z",
    }
    for day, row in versions.items():
        part = landing / "feedback" / f"dt={day}"
        part.mkdir(parents=True, exist_ok=True)
        (part / "feedback-extra.csv").write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
    return order["source_system"], order["source_customer_id"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_landing_master):
    import os
    import shutil

    from loyalist.config import get_settings

    root = tmp_path_factory.mktemp("feedback_marts")
    landing = root / "landing"
    shutil.copytree(tiny_landing_master, landing)
    _add_reopened_complaint(landing)
    env = {"LOYALIST_DATA_DIR": str(root / "data"), "LOYALIST_LANDING_DIR": str(landing),
           "LOYALIST_DUCKDB_MEMORY_LIMIT": "1GB"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = get_settings()
        start = datetime(2025, 3, 31, tzinfo=UTC)
        ingest_interval(settings, start, datetime(2025, 4, 1, tzinfo=UTC), "b1")
        first = classify_feedback(settings)
        again = classify_feedback(settings)
        dbt_build(settings, AS_OF)
        yield settings, first, again
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_classification_is_incremental_and_covers_every_text(built):
    settings, first, again = built
    assert first["feedback_versions"] > 100 and again["feedback_versions"] == 0
    with connect(settings, read_only=True) as con:
        unclassified = con.execute("""select count(*) from staging.stg_crm__feedback f
            where f.feedback_text is not null and not exists (select 1 from ml.feedback_classified c
                where c.feedback_id = f.feedback_id and c.updated_at = f.updated_at)""").fetchone()[0]
        assert unclassified == 0
        # topic counts reconcile with the classified latest versions
        items = con.execute("select sum(feedback_items) from marts.feedback_topics_monthly").fetchone()[0]
        assert items == con.execute("""select count(*) from staging.stg_crm__feedback f
            join ml.feedback_classified c using (feedback_id, updated_at)""").fetchone()[0]


def test_nps_and_csat_reconcile_with_the_answers(built):
    settings, _, _ = built
    with connect(settings, read_only=True) as con:
        mart = con.execute("""select sum(nps_responses), sum(promoters), sum(detractors), sum(csat_responses),
                                     sum(csat_satisfied) from marts.satisfaction_monthly""").fetchone()
        raw = con.execute("""select count(*) filter (where feedback_type = 'nps'),
                                    count(*) filter (where feedback_type = 'nps' and score >= 9),
                                    count(*) filter (where feedback_type = 'nps' and score <= 6),
                                    count(*) filter (where feedback_type = 'csat'),
                                    count(*) filter (where feedback_type = 'csat' and score >= 4)
                             from staging.stg_crm__feedback where score is not null""").fetchone()
        assert mart == raw and raw[0] > 0 and raw[3] > 0
        stores = con.execute("select count(distinct store_id) from marts.satisfaction_monthly "
                             "where store_id <> 'none'").fetchone()[0]
        assert stores > 1


def test_reopened_complaint_times_and_category(built):
    settings, _, _ = built
    with connect(settings, read_only=True) as con:
        row = con.execute("""select status, times_reopened, hours_to_first_response, hours_to_resolution,
                                    first_response_sla_breached, resolution_sla_breached, categories
                             from marts.complaints where feedback_id = 'X1'""").fetchone()
        assert row[:6] == ("resolved", 1, 30, 168, True, True)
        assert "delivery" in row[6].split(",")
        counts = con.execute("""select sum(complaints), sum(reopened) from marts.complaint_handling_monthly
                                where category = 'delivery' and channel = 'web'
                                  and feedback_month = date '2025-03-01'""").fetchone()
        assert counts[0] >= 1 and counts[1] >= 1
        assert con.execute("select count(*) from marts.complaints").fetchone()[0] == con.execute(
            "select count(*) from staging.stg_crm__feedback where feedback_type = 'complaint'").fetchone()[0]
