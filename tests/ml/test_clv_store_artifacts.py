"""CLV maths, idempotent warehouse writes, and the artifact trust check."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from ml import artifacts, clv, store
from ml.data import Inputs
from ml.features import future_activity, population

CUTOFF = date(2025, 7, 1)


def _poisson_buyers(n: int = 400, seed: int = 3) -> Inputs:
    """Customers buying as Poisson processes (rates 2..60 a year) for a year, nobody leaving."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 7, 1, tzinfo=UTC).timestamp() / 86400
    end = start + 2 * 365  # a year before and a year after the cutoff
    rows = []
    for i in range(n):
        rate = rng.uniform(2, 60) / 365
        times = start + np.cumsum(rng.exponential(1 / rate, size=int(rate * 800) + 5))
        for k, time in enumerate(times[times < end]):
            rows.append((f"C{i}", f"C{i}-{k}", time, rng.uniform(50, 150)))
    tx = pd.DataFrame(rows, columns=["customer_id", "order_id", "t", "net_amount"])
    tx = tx.assign(transaction_type="sale", status="completed", channel="web", gross_amount=tx["net_amount"],
                   discount_amount=0.0, points_earned=0.0, points_redeemed=0.0)
    return Inputs(transactions=tx)


def test_bgnbd_predicts_the_next_quarter_of_steady_buyers():
    data = _poisson_buyers()
    ids = population(data, CUTOFF, 365)
    params = clv.fit(data, CUTOFF)
    predicted = clv.predict(params, data, CUTOFF, ids, 90)
    actual = future_activity(data, CUTOFF, 90, ids)
    assert predicted["expected_orders"].sum() == pytest.approx(actual["orders"].sum(), rel=0.15)
    assert np.corrcoef(predicted["expected_orders"], actual["orders"])[0, 1] > 0.7  # Poisson noise caps it
    assert predicted["expected_spend"].sum() == pytest.approx(actual["spend"].sum(), rel=0.15)
    # next order day: the first whole day by which one order is expected
    s = clv.summaries(data, CUTOFF, ids)
    d = predicted["days_to_next_order"].to_numpy()
    ok = np.isfinite(d)
    assert ok.mean() > 0.9
    assert (clv.expected_orders(params, s[ok], d[ok]) >= 1 - 1e-9).all()
    earlier = np.maximum(d[ok] - 1, 1e-9)
    assert (clv.expected_orders(params, s[ok], earlier)[d[ok] > 1] < 1).all()


def test_error_metrics():
    predicted = pd.DataFrame({"expected_orders": [1.0, 3.0], "expected_spend": [100.0, 50.0]}, index=["a", "b"])
    actual = pd.DataFrame({"orders": [2.0, 3.0], "spend": [80.0, 50.0]}, index=["a", "b"])
    m = clv.error_metrics(predicted, actual)
    assert m["spend_mae"] == 10.0 and m["spend_rmse"] == pytest.approx(np.sqrt(200))
    assert m["spend_total_bias"] == pytest.approx(20 / 130)
    assert m["orders_total_bias"] == pytest.approx(-1 / 5)


def _scores(as_of: date, n: int, p: float) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "as_of_date": as_of, "churn_probability": p,
                         "risk_band": "low", "top_reasons": "x", "model_version": "v"})


def test_scores_replace_their_date_only_and_a_failed_write_keeps_the_old_rows():
    con = duckdb.connect()
    d1, d2 = date(2025, 1, 1), date(2025, 1, 2)
    store.replace_slice(con, "churn_scores", _scores(d1, 3, 0.1), "as_of_date = ?", [d1])
    store.replace_slice(con, "churn_scores", _scores(d2, 2, 0.2), "as_of_date = ?", [d2])
    store.replace_slice(con, "churn_scores", _scores(d1, 4, 0.3), "as_of_date = ?", [d1])  # rerun of d1
    counts = dict(con.execute("select as_of_date, count(*) from ml.churn_scores group by 1").fetchall())
    assert counts == {d1: 4, d2: 2}
    broken = pd.concat([_scores(d1, 2, 0.9), _scores(d1, 1, 0.9)])  # duplicate key: the write is refused
    with pytest.raises(store.KeyViolationError, match="repeat the key"):
        store.replace_slice(con, "churn_scores", broken, "as_of_date = ?", [d1])
    stray = pd.concat([_scores(d1, 2, 0.9), _scores(d2, 1, 0.9)])  # a d2 row would survive beside d2's own
    with pytest.raises(store.KeyViolationError, match="outside the slice"):
        store.replace_slice(con, "churn_scores", stray, "as_of_date = ?", [d1])
    assert con.execute("select count(*), max(churn_probability) from ml.churn_scores where as_of_date = ?",
                       [d1]).fetchone() == (4, 0.3)
    assert con.execute("select count(*) from ml.churn_scores where as_of_date = ?", [d2]).fetchone() == (2,)
    unscored = _scores(d1, 2, 0.9).assign(churn_probability=None)  # the insert fails after the delete
    with pytest.raises(duckdb.ConstraintException):
        store.replace_slice(con, "churn_scores", unscored, "as_of_date = ?", [d1])
    assert con.execute("select count(*), max(churn_probability) from ml.churn_scores where as_of_date = ?",
                       [d1]).fetchone() == (4, 0.3)


def test_a_table_made_with_a_primary_key_is_rebuilt_without_it_and_keeps_its_rows():
    # what ensure_tables made before the keys were checked by the writes instead
    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute(f"create table ml.churn_scores ({store.TABLES['churn_scores']}, primary key (customer_id, as_of_date))")
    d1 = date(2025, 1, 1)
    con.register("old_rows", _scores(d1, 3, 0.1))
    con.execute("insert into ml.churn_scores select * from old_rows")
    store.replace_slice(con, "churn_scores", _scores(date(2025, 1, 2), 2, 0.2), "as_of_date = ?", [date(2025, 1, 2)])
    assert con.execute("select count(*) from duckdb_constraints() where table_name = 'churn_scores' "
                       "and constraint_type = 'PRIMARY KEY'").fetchone() == (0,)
    assert con.execute("select as_of_date, count(*), max(churn_probability) from ml.churn_scores "
                       "group by 1 order by 1").fetchall() == [(d1, 3, 0.1), (date(2025, 1, 2), 2, 0.2)]
    columns = con.execute("pragma table_info('ml.churn_scores')").fetchall()
    assert [c[1] for c in columns] == store.column_names("churn_scores")


class Foreign:  # stands for any type a tampered artifact could smuggle in
    pass


def test_an_artifact_with_unknown_types_is_refused(tmp_path):
    folder = tmp_path / "v1"
    folder.mkdir()
    sio.dump({"model": Foreign()}, folder / "churn.skops")
    (folder / "churn.json").write_text("{}")
    with pytest.raises(artifacts.UntrustedArtifactError, match="Foreign"):
        artifacts.load_churn(tmp_path, "v1")


def test_fingerprint_and_version_are_deterministic(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert artifacts.fingerprint(frame) == artifacts.fingerprint(frame.copy())
    assert artifacts.fingerprint(frame) != artifacts.fingerprint(frame.assign(a=[1, 3]))
    v = artifacts.model_version(date(2025, 12, 31), "abc")
    assert v == artifacts.model_version(date(2025, 12, 31), "abc") and v.startswith("20251231-")
    assert artifacts.read_pointer(tmp_path) == {}  # nothing promoted yet
