"""Point-in-time features and labels on tiny hand-made inputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.data import among
from ml.features import (
    FEATURES,
    EmptyPopulationError,
    churn_labels,
    compute_features,
    future_activity,
    labelled_frame,
    population,
)
from tests.ml.builders import feedback, inputs, t, transactions, weekly_orders

CUTOFF = date(2025, 7, 1)  # features use rows before 2025-07-01 00:00 UTC
POP = 365  # population: customers with a completed sale in the 365 days before the cutoff


def _history() -> pd.DataFrame:
    rows = [
        *weekly_orders("A", "2025-01-06", 20),  # weekly from January to late May
        {"customer_id": "A", "at": "2025-06-20T10:00:00", "net_amount": 250.0, "discount": 50.0,
         "channel": "app", "points_earned": 250},
        {"customer_id": "A", "at": "2025-06-22T10:00:00", "net_amount": -100.0, "order_id": "R1"},
        {"customer_id": "B", "at": "2025-03-01T08:00:00", "net_amount": 80.0},
        {"customer_id": "B", "at": "2025-03-02T08:00:00", "net_amount": 60.0, "status": "cancelled"},
        {"customer_id": "OLD", "at": "2024-01-01T00:00:00", "net_amount": 50.0},  # lapsed: > 365 days
    ]
    return transactions(*rows)


def _feedback() -> pd.DataFrame:
    return feedback(
        {"customer_id": "A", "type": "nps", "score": 9, "created": "2025-02-01T00:00:00"},
        {"customer_id": "A", "type": "nps", "score": 3, "created": "2025-06-01T00:00:00"},
        {"customer_id": "A", "type": "csat", "score": 2, "created": "2025-06-10T00:00:00"},
        {"customer_id": "A", "type": "csat", "score": 4, "created": "2025-05-10T00:00:00"},
    )


def test_population_is_customers_with_a_sale_in_the_window_before_the_cutoff():
    assert list(population(inputs(_history()), CUTOFF, 365)) == ["A", "B"]
    assert list(population(inputs(_history()), CUTOFF, 90)) == ["A"]  # B last bought 122 days before


def test_a_row_after_the_cutoff_cannot_change_features_at_the_cutoff():
    base = inputs(_history(), _feedback())
    before = compute_features(base, CUTOFF, POP)
    future_tx = transactions(
        {"customer_id": "A", "at": "2025-07-01T00:00:00", "net_amount": 999.0, "order_id": "F1"},  # at the cutoff
        {"customer_id": "A", "at": "2025-08-15T12:00:00", "net_amount": -50.0, "order_id": "F2"},
        {"customer_id": "B", "at": "2025-07-02T00:00:00", "net_amount": 10.0, "discount": 5.0, "order_id": "F3"},
        {"customer_id": "NEW", "at": "2025-07-03T00:00:00", "net_amount": 10.0, "order_id": "F4"},
    )
    future_fb = feedback(
        {"customer_id": "A", "type": "complaint", "created": "2025-07-01T00:00:00"},
        {"customer_id": "B", "type": "nps", "score": 0, "created": "2025-07-05T00:00:00"},
    )
    future_profiles = pd.DataFrame([{"customer_id": "B", "t_created": t("2025-07-10T00:00:00"),
                                     "t_updated": t("2025-07-10T00:00:00"), "t_birth": t("1990-01-01T00:00:00"),
                                     "gender": "F", "city_tier": 1.0, "income_band": "high"}])
    future_accounts = pd.DataFrame([{"customer_id": "A", "t_first_seen": t("2025-09-01T00:00:00")}])
    with_future = replace(
        base,
        transactions=pd.concat([base.transactions, future_tx], ignore_index=True),
        feedback=pd.concat([base.feedback, future_fb], ignore_index=True),
        profiles=future_profiles,
        accounts=future_accounts,
    )
    after = compute_features(with_future, CUTOFF, POP)
    pd.testing.assert_frame_equal(after, before)


def test_recency_frequency_monetary_refunds_discounts_and_points():
    f = compute_features(inputs(_history(), _feedback()), CUTOFF, POP)
    a, b = f.loc["A"], f.loc["B"]
    assert a["recency_days"] == pytest.approx(t("2025-07-01T00:00:00") - t("2025-06-20T10:00:00"))
    assert a["orders_365"] == 21 and a["orders_30"] == 1
    assert a["spend_30"] == pytest.approx(250.0 - 100.0)  # net of the refund
    assert a["spend_365"] == pytest.approx(20 * 100.0 + 250.0 - 100.0)
    assert a["refunds_365"] == 1 and a["refund_share_365"] == pytest.approx(1 / 21)
    assert a["discount_share_365"] == pytest.approx(1 / 21)
    assert a["discount_rate_365"] == pytest.approx(50.0 / (20 * 100.0 + 300.0))
    assert a["channels_365"] == 2 and a["points_balance"] == 250
    assert a["interval_mean_days"] == pytest.approx((t("2025-06-20") - t("2025-01-06")) / 20)
    assert b["orders_365"] == 1 and b["cancelled_365"] == 1
    assert np.isnan(b["interval_mean_days"]) and np.isnan(b["recency_vs_interval"])


def test_frequency_trend_last_90_days_vs_previous_90():
    # six orders 91..180 days before the cutoff, two in the last 90
    rows = [{"customer_id": "T", "at": f"2025-0{m}-{d:02d}T12:00:00", "net_amount": 10.0}
            for m, d in [(1, 10), (1, 25), (2, 5), (2, 20), (3, 10), (3, 25), (5, 1), (6, 15)]]
    f = compute_features(inputs(transactions(*rows)), CUTOFF, POP).loc["T"]
    assert (f["orders_90"], f["orders_180"]) == (2, 8)
    assert f["orders_90_vs_prev_90"] == pytest.approx(2 / 6)
    assert f["orders_90_change"] == -4
    assert f["orders_30_vs_180_rate"] == pytest.approx((1 / 30) / (8 / 180))


def test_complaint_is_open_at_the_cutoff_by_timestamps_not_by_its_current_status():
    tx = transactions({"customer_id": "C", "at": "2025-06-01T00:00:00", "net_amount": 10.0})
    fb = feedback(
        # resolved after the cutoff: open at the cutoff although its status now says resolved
        {"customer_id": "C", "type": "complaint", "created": "2025-06-19T00:00:00", "status": "resolved",
         "resolved": "2025-07-03T00:00:00", "updated": "2025-07-03T00:00:00"},
        # resolved before the cutoff: closed
        {"customer_id": "C", "type": "complaint", "created": "2025-06-10T00:00:00", "status": "resolved",
         "resolved": "2025-06-12T00:00:00", "updated": "2025-06-12T00:00:00"},
        # 'resolved' without resolved_at, last updated after the cutoff: cannot be known closed -> open
        {"customer_id": "C", "type": "complaint", "created": "2025-06-25T00:00:00", "status": "resolved",
         "updated": "2025-07-02T00:00:00"},
        # created after the cutoff: does not exist yet
        {"customer_id": "C", "type": "complaint", "created": "2025-07-01T00:00:00", "status": "open"},
    )
    f = compute_features(inputs(tx, fb), CUTOFF, POP).loc["C"]
    assert f["open_complaints"] == 2
    assert f["open_complaint_days"] == pytest.approx(12.0)  # the oldest open one, since June 19
    assert f["complaints_90"] == 3


def test_feedback_scores():
    f = compute_features(inputs(_history(), _feedback()), CUTOFF, POP).loc["A"]
    assert f["nps_latest"] == 3
    assert f["csat_mean_365"] == pytest.approx(3.0)
    assert f["low_scores_90"] == 1


def test_missing_sources_give_nan_features_not_errors():
    f = compute_features(inputs(_history()), CUTOFF, POP)  # no feedback, items, profiles or accounts
    for col in ("nps_latest", "complaints_90", "open_complaints", "categories_365", "age_years", "city_tier"):
        assert f[col].isna().all(), col
    assert f["gender"].isna().all()
    assert f["orders_365"].notna().all() and list(f.columns) == FEATURES


def test_empty_population_is_a_clear_error():
    old_only = transactions({"customer_id": "OLD", "at": "2023-01-01T00:00:00", "net_amount": 10.0})
    with pytest.raises(EmptyPopulationError, match="no customer has a completed sale in the 365 days before"):
        compute_features(inputs(old_only), CUTOFF, POP)


def test_labels_use_only_completed_sales_in_the_window():
    tx = transactions(
        {"customer_id": "A", "at": "2025-06-01T00:00:00", "net_amount": 10.0},
        {"customer_id": "B", "at": "2025-06-01T00:00:00", "net_amount": 10.0},
        {"customer_id": "C", "at": "2025-06-01T00:00:00", "net_amount": 10.0},
        {"customer_id": "D", "at": "2025-06-01T00:00:00", "net_amount": 10.0},
        {"customer_id": "A", "at": "2025-09-28T23:59:59", "net_amount": 10.0},  # last second of the window
        {"customer_id": "B", "at": "2025-09-29T00:00:00", "net_amount": 10.0},  # first second after it
        {"customer_id": "C", "at": "2025-07-10T00:00:00", "net_amount": 10.0, "status": "cancelled"},
        {"customer_id": "D", "at": "2025-07-10T00:00:00", "net_amount": -10.0},  # a refund is no purchase
    )
    ids = pd.Index(["A", "B", "C", "D"])
    labels = churn_labels(inputs(tx), CUTOFF, 90, ids)
    assert labels.to_dict() == {"A": 0, "B": 1, "C": 1, "D": 1}
    activity = future_activity(inputs(tx), CUTOFF, 90, ids)
    assert activity.loc["A", "orders"] == 1 and activity.loc["D", "spend"] == -10.0


def test_feedback_topic_detractor_and_late_complaint_features_are_point_in_time():
    tx = transactions({"customer_id": "C", "at": "2025-06-01T00:00:00", "net_amount": 10.0})
    fb = feedback(
        {"customer_id": "C", "type": "nps", "score": 5, "created": "2025-05-01T00:00:00"},
        # answered 30 h after it was made (first-response target 24 h), resolved in 2 days: late
        {"customer_id": "C", "type": "complaint", "created": "2025-05-10T00:00:00", "status": "resolved",
         "responded": "2025-05-11T06:00:00", "resolved": "2025-05-12T00:00:00",
         "text": "退款太慢了，客服也不理人", "language": "zh"},
        # answered in 2 h, still open at the cutoff (resolved later): open and, after 10 days, late
        {"customer_id": "C", "type": "complaint", "created": "2025-06-21T00:00:00", "status": "resolved",
         "responded": "2025-06-21T02:00:00", "resolved": "2025-07-05T00:00:00",
         "text": "The parcel arrived damaged", "language": "en"},
        # positive text: no negative topic
        {"customer_id": "C", "type": "review", "score": 5, "created": "2025-06-01T00:00:00",
         "text": "Great value, fast delivery", "language": "en"},
        # after the cutoff: must not count
        {"customer_id": "C", "type": "complaint", "created": "2025-07-02T00:00:00", "status": "open",
         "text": "价格太贵了", "language": "zh"},
    )
    f = compute_features(inputs(tx, fb), CUTOFF, POP).loc["C"]
    assert f["nps_detractor"] == 1 and f["csat_latest"] != f["csat_latest"]  # no CSAT answer: NaN
    assert f["late_complaints_365"] == 2
    assert (f["negative_convenience_365"], f["negative_communication_365"], f["negative_cost_365"]) == (2, 1, 0)
    assert f["latest_negative_topic"] == "delivery" and f["latest_negative_unresolved"] == 1


def test_training_sample_keeps_a_stable_subset_with_their_exact_features():
    from ml.data import customer_sample

    rows = [order for i in range(60) for order in weekly_orders(f"c{i:02d}", "2025-01-06", 8 + i % 5, 3 + i % 4)]
    data = inputs(transactions(*rows), feedback({"customer_id": "c01", "type": "nps", "created": "2025-02-01",
                                                 "score": 3}))
    sample = customer_sample(data, 20)
    kept = set(sample.transactions["customer_id"])
    assert 8 <= len(kept) <= 35 and kept < set(data.transactions["customer_id"])
    assert set(customer_sample(data, 20).transactions["customer_id"]) == kept  # stable
    assert customer_sample(data, 1000) is data
    full = labelled_frame(data, [date(2025, 3, 1)], 30).set_index("customer_id")
    part = labelled_frame(sample, [date(2025, 3, 1)], 30).set_index("customer_id")
    pd.testing.assert_frame_equal(part, full.loc[part.index])


@pytest.mark.parametrize("dtype", ["str", object])
def test_among_is_pandas_isin_for_text_ids_with_missing_values(dtype):
    """ml.data.among (Arrow's is_in) answers as pandas' isin: missing values and unknown ids are not among."""
    values = pd.Series(["c1", None, "c3", "c2", "c9", "c1"], dtype=dtype)
    ids = pd.Index(["c1", "c2", "c7"], name="customer_id")
    np.testing.assert_array_equal(among(values, ids), values.isin(ids).to_numpy())
    np.testing.assert_array_equal(among(values, ids), [True, False, False, True, False, True])
    for nothing in (pd.Series([], dtype=dtype), pd.Series([None, None], dtype=dtype)):  # e.g. a block's feedback
        np.testing.assert_array_equal(among(nothing, ids), nothing.isin(ids).to_numpy())


def test_repeated_feedback_texts_each_count():
    """Texts are classified once per distinct (text, language); every row still counts on its own."""
    tx = transactions({"customer_id": "D", "at": "2025-06-01T00:00:00", "net_amount": 10.0},
                      {"customer_id": "E", "at": "2025-06-01T00:00:00", "net_amount": 10.0})
    damaged = {"type": "complaint", "status": "open", "text": "The parcel arrived damaged", "language": "en"}
    fb = feedback(
        {**damaged, "customer_id": "D", "created": "2025-05-01T00:00:00"},
        {**damaged, "customer_id": "D", "created": "2025-05-02T00:00:00"},
        {**damaged, "customer_id": "D", "created": "2025-05-03T00:00:00", "language": None},  # detected
        {**damaged, "customer_id": "E", "created": "2025-05-04T00:00:00"},
        {**damaged, "customer_id": "E", "created": "2025-05-05T00:00:00", "text": "价格太贵了", "language": "zh"},
    )
    f = compute_features(inputs(tx, fb), CUTOFF, POP)
    assert f.loc["D", "negative_convenience_365"] == 3 and f.loc["D", "negative_cost_365"] == 0
    assert f.loc["E", "negative_convenience_365"] == 1 and f.loc["E", "negative_cost_365"] == 1
    assert (f.loc["D", "latest_negative_topic"], f.loc["E", "latest_negative_topic"]) == ("delivery", "price")
