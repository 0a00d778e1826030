"""Calibration points written with every churn evaluation (the run report draws them)."""

from __future__ import annotations

import numpy as np

from ml.churn import calibration_by_decile, metrics


def test_calibration_points_are_mean_prediction_and_observed_rate_per_tenth():
    p = np.linspace(0.0, 0.99, 100)
    y = (np.arange(100) % 10 < np.arange(100) // 10).astype(int)  # tenth k has k positives of 10
    points = calibration_by_decile(y, p)
    assert len(points) == 10
    assert [round(o, 2) for _, o in points] == [k / 10 for k in range(10)]
    assert all(abs(pred - (0.045 + k * 0.1)) < 1e-9 for k, (pred, _) in enumerate(points))


def test_metrics_carry_ten_calibration_points():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    m = metrics(y, p, p)
    assert sorted(k for k in m if k.startswith("calibration_predicted_")) == [
        f"calibration_predicted_{i:02d}" for i in range(1, 11)]
    assert m["calibration_observed_10"] > m["calibration_observed_01"]
