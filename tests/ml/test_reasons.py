"""Reasons: contributions by group ablation, only upward ones, rendered as plain words."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ml.features import FEATURE_GROUPS, compute_features
from ml.reasons import MAX_REASONS, NO_REASON, SEPARATOR, describe, group_contributions, top_reasons, typical_values
from tests.ml.builders import feedback, inputs, transactions, weekly_orders

CUTOFF = date(2025, 7, 1)


def _features() -> pd.DataFrame:
    rows = [
        # LATE: bought every 20 days from January 7 to May 7, nothing for the last 55 days
        *weekly_orders("LATE", "2025-01-07", 7, every_days=20),
        # STEADY: weekly all year
        *weekly_orders("STEADY", "2025-01-02", 26),
        # UPSET: weekly, with a complaint still open
        *weekly_orders("UPSET", "2025-01-03", 26),
    ]
    fb = feedback({"customer_id": "UPSET", "type": "complaint", "created": "2025-06-19T00:00:00", "status": "open"})
    return compute_features(inputs(transactions(*rows), fb), CUTOFF, 180)


def test_templates_use_the_customers_own_values():
    f = _features()
    typical = typical_values(f)
    late = f.loc["LATE"]
    assert describe("recency", late, typical) == "no purchase for 55 days (usually every 20)"
    # open longer than the resolution target (dbt var complaint_resolution_sla_hours, 72 h)
    assert describe("complaints", f.loc["UPSET"], typical) == "complaint open 12 days (past the resolution target)"
    assert describe("complaints", f.loc["STEADY"], typical) is None  # nothing to say: never a reason


def test_trend_text():
    row = pd.Series({"orders_30": 1.0, "orders_90": 3.0, "orders_180": 13.0, "orders_30_vs_180_rate": 0.5})
    assert describe("trend", row, {}) == "orders in last 90 days down 70% vs previous 90 (3 vs 10)"
    assert describe("trend", pd.Series({"orders_90": 0.0, "orders_180": 0.0, "orders_30_vs_180_rate": np.nan}),
                    {}) == "no orders in the last 180 days"
    assert describe("trend", pd.Series({"orders_90": 0.0, "orders_180": 16.0}), {}) == \
        "no orders in last 90 days (16 in the previous 90)"
    assert describe("trend", pd.Series({"orders_30": 0.0, "orders_90": 4.0, "orders_180": 7.0}), {}) == \
        "no orders in the last 30 days (7 in the last 180)"


def test_every_group_has_a_template():
    f = _features()
    typical = typical_values(f)
    for group in FEATURE_GROUPS:
        for _, row in f.iterrows():
            text = describe(group, row, typical)
            assert text is None or (isinstance(text, str) and text)


def test_contributions_come_from_the_model_and_only_upward_ones_become_reasons():
    f = _features()

    def predict(frame: pd.DataFrame) -> np.ndarray:  # churn risk grows with silence and open complaints
        return np.clip(0.1 + frame["recency_days"].to_numpy() / 100 + 0.2 * frame["open_complaints"].to_numpy(), 0, 1)

    contrib = group_contributions(predict, f)
    assert list(contrib.columns) == list(FEATURE_GROUPS)
    assert contrib.loc["LATE", "recency"] > 0.3  # 55 days vs the population median
    assert contrib.loc["UPSET", "complaints"] == np.float64(0.2)
    assert (contrib.drop(columns=["recency", "complaints"]).abs() < 1e-12).all().all()

    reasons = top_reasons(contrib, f)
    assert reasons["LATE"] == "no purchase for 55 days (usually every 20)"
    assert reasons["UPSET"] == "complaint open 12 days (past the resolution target)"  # recency below the median
    assert reasons["STEADY"] == NO_REASON


def test_contributions_in_blocks_equal_the_definition_on_the_whole_frame():
    """Blocks and skipped rows (group already typical: contribution 0) change nothing, to the last bit."""
    f = _features()
    typical = typical_values(f)

    def predict(frame: pd.DataFrame) -> np.ndarray:  # row by row, nonlinear in several groups
        x = frame
        return 1 / (1 + np.exp(-(x["recency_days"].to_numpy() / 30 - x["orders_365"].to_numpy() / 10
                                 + 0.7 * x["open_complaints"].to_numpy()
                                 + np.nan_to_num(x["interval_cv"].to_numpy(dtype=float)))))

    definition = {}
    for group, cols in FEATURE_GROUPS.items():
        ablated = f.copy()
        for col in cols:
            ablated[col] = typical[col]
        definition[group] = predict(f) - predict(ablated)
    expected = pd.DataFrame(definition, index=f.index)
    assert (expected["complaints"].drop("UPSET") == 0).all()  # STEADY and LATE: skipped, not predicted
    for block in (1, 2, 1000):
        got = group_contributions(predict, f, typical, block=block)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_customers_who_cannot_have_a_reason_are_not_ablated_and_get_the_same_reasons():
    """only_above: a base probability at most the threshold bounds every contribution (p >= 0)."""
    f = _features()
    typical = typical_values(f)
    predicted_rows = [0]

    def predict(frame: pd.DataFrame) -> np.ndarray:  # STEADY is lowest, LATE and UPSET above it
        predicted_rows[0] += len(frame)
        return np.clip(0.1 + frame["recency_days"].to_numpy() / 100 + 0.2 * frame["open_complaints"].to_numpy(), 0, 1)

    def rows_predicted(*args, **kwargs) -> tuple[pd.DataFrame, int]:
        predicted_rows[0] = 0
        return group_contributions(predict, *args, **kwargs), predicted_rows[0]

    base = predict(f)
    threshold = float(base[f.index.get_loc("STEADY")])  # STEADY's probability: at the threshold, not above
    full, n_full = rows_predicted(f, typical, base=base)
    skipped, n_skipped = rows_predicted(f, typical, base=base, only_above=threshold)
    _, n_steady = rows_predicted(f.loc[["STEADY"]], typical, base=base[[f.index.get_loc("STEADY")]])

    assert n_steady > 0 and n_skipped == n_full - n_steady  # STEADY's ablations, and only those, were skipped
    assert (skipped.loc["STEADY"] == 0).all() and (full.loc["STEADY"] <= threshold).all()
    pd.testing.assert_frame_equal(skipped.drop(index="STEADY"), full.drop(index="STEADY"), check_exact=True)
    pd.testing.assert_series_equal(top_reasons(skipped, f, min_contribution=threshold, typical=typical),
                                   top_reasons(full, f, min_contribution=threshold, typical=typical))


def test_reasons_are_the_texts_of_each_customers_feature_row():
    """top_reasons reads values lazily from the columns: the texts are describe()'s on the row itself."""
    f = _features()
    contrib = pd.DataFrame(0.0, index=f.index, columns=list(FEATURE_GROUPS))
    contrib.loc["LATE", ["recency", "trend"]] = [0.3, 0.2]
    contrib.loc["UPSET", "complaints"] = 0.2
    typical = typical_values(f)
    got = top_reasons(contrib, f, typical=typical)
    assert got["LATE"] == SEPARATOR.join([describe("recency", f.loc["LATE"], typical),
                                          describe("trend", f.loc["LATE"], typical)])
    assert got["UPSET"] == describe("complaints", f.loc["UPSET"], typical) and got["STEADY"] == NO_REASON


def test_at_most_three_reasons_largest_first():
    f = _features()
    contrib = pd.DataFrame(0.0, index=f.index, columns=list(FEATURE_GROUPS))
    contrib.loc["LATE", ["recency", "trend", "frequency", "monetary", "tenure"]] = [0.05, 0.30, 0.2, 0.1, 0.02]
    contrib.loc["LATE", "breadth"] = -0.5  # pushes churn down: never a reason
    parts = top_reasons(contrib, f)["LATE"].split(SEPARATOR)
    assert len(parts) == MAX_REASONS
    assert parts[0].startswith("orders in last 90 days down") and parts[1].startswith("only 7 orders")
    assert parts[2] == "spent ¥200 in the last 90 days (typical customer ¥1,300)"


def test_feedback_topic_reason_names_the_topic_and_whether_it_is_unresolved():
    rows = [*weekly_orders("A", "2025-01-03", 26), *weekly_orders("B", "2025-01-03", 26)]
    fb = feedback(
        {"customer_id": "A", "type": "complaint", "created": "2025-06-19T00:00:00", "status": "open",
         "text": "快递太慢了，等了十天才到", "language": "zh"},
        {"customer_id": "A", "type": "review", "created": "2025-05-01T00:00:00", "score": 2,
         "text": "Too expensive for what it is", "language": "en"},
        {"customer_id": "B", "type": "complaint", "created": "2025-03-01T00:00:00", "status": "resolved",
         "resolved": "2025-03-02T00:00:00", "text": "The app keeps crashing", "language": "en"},
    )
    f = compute_features(inputs(transactions(*rows), fb), CUTOFF, 180)
    typical = typical_values(f)
    assert describe("feedback_topics", f.loc["A"], typical) == (
        "complained about delivery, unresolved (2 negative comments in the last 365 days)")
    assert describe("feedback_topics", f.loc["B"], typical) == "complained about the app/website"
