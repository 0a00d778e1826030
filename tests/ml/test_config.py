"""Churn definition, cutoff plan (no label overlap), risk bands, promotion rules."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from ml.config import (
    DEFAULT_CHURN_AFTER_DAYS,
    NotEnoughHistoryError,
    churn_after_days,
    min_history_days,
    plan_cutoffs,
    required_history_days,
    risk_band,
    scoring_threads,
)
from ml.pipeline import churn_decision, clv_decision


def test_churn_window_is_the_dbt_var(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: x\nvars:\n  as_of_date: '2100-01-01'\n  churn_after_days: 120\n")
    assert churn_after_days(tmp_path) == 120


def test_churn_window_falls_back_to_90_days_and_says_so(tmp_path, caplog):
    (tmp_path / "dbt_project.yml").write_text("name: x\nvars:\n  as_of_date: '2100-01-01'\n")
    with caplog.at_level(logging.WARNING, logger="ml.config"):
        assert churn_after_days(tmp_path) == DEFAULT_CHURN_AFTER_DAYS == 90
    assert "churn_after_days not set" in caplog.text


def test_the_real_project_defines_a_positive_churn_window():
    assert churn_after_days() > 0


@pytest.mark.parametrize("churn_days", [90, 180])
def test_training_label_windows_never_overlap_evaluation_or_scoring(churn_days):
    as_of = date(2025, 12, 31)
    plan = plan_cutoffs(as_of, churn_days, data_start=date(2024, 1, 1))
    eval_start, eval_end = plan.label_window(plan.evaluation_cutoff)
    assert eval_end == as_of  # the evaluation labels end on the scoring date ...
    assert plan.scoring_cutoff == as_of + timedelta(days=1)  # ... and scoring features include the whole day
    assert len(plan.training_cutoffs) >= 2
    for cutoff in plan.training_cutoffs:
        start, end = plan.label_window(cutoff)
        assert end <= eval_start  # training labels end before the evaluation window starts
        # its population (a sale in the last N days) is fully inside the data
        assert cutoff >= date(2024, 1, 1) + timedelta(days=min_history_days(churn_days)) >= date(2024, 1, 1) + \
            timedelta(days=churn_days)
    assert list(plan.training_cutoffs) == sorted(plan.training_cutoffs)


def test_too_short_a_history_is_a_clear_error():
    as_of = date(2025, 12, 31)
    with pytest.raises(NotEnoughHistoryError, match="needs 540 days of history"):
        plan_cutoffs(as_of, 180, data_start=date(2025, 1, 1))
    just_enough = as_of - timedelta(days=required_history_days(180))
    assert len(plan_cutoffs(as_of, 180, data_start=just_enough).training_cutoffs) == 1
    with pytest.raises(NotEnoughHistoryError):
        plan_cutoffs(as_of, 180, data_start=just_enough + timedelta(days=1))


def test_risk_bands():
    assert [risk_band(p) for p in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == ["low", "low", "medium", "medium", "high",
                                                                        "high"]


def test_churn_promotion_needs_to_beat_recency_and_the_promoted_model():
    assert churn_decision("v2", 0.80, 0.75, None, None, True).promoted
    assert not churn_decision("v2", 0.74, 0.75, None, None, True).promoted
    assert churn_decision("v2", 0.80, 0.75, "v1", 0.79, True).promoted
    assert not churn_decision("v2", 0.80, 0.75, "v1", 0.80, True).promoted  # a tie keeps the promoted one
    assert not churn_decision("v2", 0.80, 0.75, "v1", None, False).promoted  # not comparable: keep it
    assert churn_decision("v1", 0.80, 0.75, "v1", None, True).promoted  # rerun of the same model


def test_clv_promotion_needs_a_lower_error_than_baseline_and_promoted_model():
    assert clv_decision("v2", 100.0, 120.0, None, None, True).promoted
    assert not clv_decision("v2", 130.0, 120.0, None, None, True).promoted
    assert not clv_decision("v2", 100.0, 120.0, "v1", 95.0, True).promoted
    assert clv_decision("v2", 100.0, 120.0, "v1", 105.0, True).promoted


def test_scoring_threads_share_the_cores_among_the_partitions(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert [scoring_threads(p) for p in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    assert scoring_threads() == 4
