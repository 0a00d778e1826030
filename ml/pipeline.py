"""The ML step's entry points (called by the Airflow DAG; no Airflow imports here).

* ``train_evaluate_promote(con, as_of, models_dir)``: train churn + CLV on past cutoffs, evaluate on
  the latest fully observed window against the baselines and the promoted models, write
  ``ml.model_evaluations``, promote or not.
* ``score(con, as_of, models_dir)``: score the population as of ``as_of`` with the promoted models
  into ``ml.churn_scores`` and ``ml.clv_predictions`` (replacing that date's rows).

See docs/ml.md for the definitions and ml/config.py for the one place they live.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from loyalist.warehouse import release_cached_blocks
from ml import artifacts, churn, clv, store
from ml.config import (
    CLV_HORIZON_DAYS,
    MAX_EVALUATION_CUSTOMERS,
    MAX_TRAINING_CUSTOMERS,
    SCORING_BLOCK_TRANSACTIONS,
    CutoffPlan,
    churn_after_days,
    plan_cutoffs,
    risk_band,
    scoring_threads,
)
from ml.data import (
    Inputs,
    block_count,
    customer_sample,
    first_sale_day,
    last_transaction_day,
    load_inputs,
    sampled_customers,
    transaction_customers,
)
from ml.features import FEATURES, EmptyPopulationError, compute_features, future_activity, labelled_frame
from ml.reasons import MIN_CONTRIBUTION, probabilities_and_contributions, top_reasons, typical_values

log = logging.getLogger(__name__)

PRIMARY_CHURN_METRIC = "roc_auc"  # higher is better
PRIMARY_CLV_METRIC = "spend_mae"  # lower is better
STALE_AFTER_DAYS = 7


class NoPromotedModelError(RuntimeError):
    """Scoring needs a promoted model and training did not produce one."""


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str


def churn_decision(candidate_version: str, candidate_auc: float, recency_auc: float,
                   incumbent_version: str | None, incumbent_auc: float | None, incumbent_comparable: bool) -> Decision:
    """Promote a churn model only if it beats the recency baseline and the promoted model (same window)."""
    if incumbent_version == candidate_version:
        return Decision(True, "candidate is the promoted model already (same data and code)")
    if not candidate_auc > recency_auc:
        return Decision(False, f"AUC {candidate_auc:.4f} does not beat the recency baseline {recency_auc:.4f}")
    if incumbent_version is not None:
        if not incumbent_comparable:
            return Decision(False, f"promoted model {incumbent_version} cannot be compared on this window "
                                   "(its training labels overlap it); keeping it")
        if incumbent_auc is not None and not candidate_auc > incumbent_auc:
            return Decision(False, f"AUC {candidate_auc:.4f} does not beat promoted {incumbent_version} "
                                   f"({incumbent_auc:.4f}) on the same window")
    return Decision(True, f"AUC {candidate_auc:.4f} beats recency {recency_auc:.4f}"
                    + (f" and promoted {incumbent_version} ({incumbent_auc:.4f})" if incumbent_auc is not None else ""))


def clv_decision(candidate_version: str, candidate_mae: float, baseline_mae: float,
                 incumbent_version: str | None, incumbent_mae: float | None, incumbent_comparable: bool) -> Decision:
    """Promote a CLV model only if its spend MAE beats the baseline and the promoted model (same window)."""
    if incumbent_version == candidate_version:
        return Decision(True, "candidate is the promoted model already (same data and code)")
    if not candidate_mae < baseline_mae:
        return Decision(False, f"spend MAE {candidate_mae:.2f} does not beat the baseline {baseline_mae:.2f}")
    if incumbent_version is not None:
        if not incumbent_comparable:
            return Decision(False, f"promoted model {incumbent_version} cannot be compared on this window; keeping it")
        if incumbent_mae is not None and not candidate_mae < incumbent_mae:
            return Decision(False, f"spend MAE {candidate_mae:.2f} does not beat promoted {incumbent_version} "
                                   f"({incumbent_mae:.2f}) on the same window")
    return Decision(True, f"spend MAE {candidate_mae:.2f} beats baseline {baseline_mae:.2f}"
                    + (f" and promoted {incumbent_version} ({incumbent_mae:.2f})" if incumbent_mae is not None else ""))


def _warn_if_stale(last: date | None, as_of: date) -> None:
    """Warn when the warehouse's last transaction day ``last`` is long before ``as_of``."""
    if last is not None and (as_of - last).days > STALE_AFTER_DAYS:
        log.warning("the last transaction in the warehouse is on %s, %s days before as_of %s: recent labels "
                    "and features will look like churn", last, (as_of - last).days, as_of)


def _evaluation_rows(version: str, kind: str, plan: CutoffPlan, metrics: dict[str, dict[str, float]],
                     n_customers: int, promoted: bool, incumbent_version: str | None) -> pd.DataFrame:
    model = metrics["model"]
    rows = []
    for metric in model:
        rows.append({
            "model_version": version, "model_kind": kind, "evaluated_at_cutoff": plan.evaluation_cutoff,
            "label_window_end": plan.label_window(plan.evaluation_cutoff)[1], "metric": metric,
            "model_value": model[metric],
            "baseline_recency": metrics.get("recency", {}).get(metric),
            "baseline_heuristic": metrics.get("heuristic", metrics.get("baseline", {})).get(metric),
            "incumbent_version": incumbent_version if metrics.get("incumbent") else None,
            "incumbent_value": (metrics.get("incumbent") or {}).get(metric),
            "n_customers": n_customers, "promoted": promoted,
            "created_at": datetime.now(UTC),
        })
    frame = pd.DataFrame(rows)
    for col in ("model_value", "baseline_recency", "baseline_heuristic", "incumbent_value"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def _write_evaluations(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, version: str, kind: str,
                       plan: CutoffPlan) -> None:
    store.replace_slice(con, "model_evaluations", frame,
                        "model_version = ? and model_kind = ? and evaluated_at_cutoff = ?",
                        [version, kind, plan.evaluation_cutoff])


def _usable(meta: dict, churn_days: int) -> bool:
    """Can the current code score with (and fairly compare) a churn model with this metadata?"""
    return meta.get("features") == FEATURES and meta.get("plan", {}).get("churn_days") == churn_days


def _promoted_usable(models_dir: Path, churn_days: int) -> bool:
    pointer = artifacts.read_pointer(models_dir)
    if not all(kind in pointer for kind in artifacts.KINDS):
        return False
    try:
        meta = json.loads((models_dir / pointer["churn"]["version"] / "churn.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return _usable(meta, churn_days)


def _incumbent_churn(models_dir: Path, pointer: dict, plan: CutoffPlan, evaluation: pd.DataFrame,
                     candidate_version: str) -> tuple[str | None, dict | None, bool]:
    """(version, metrics on this window or None, comparable) of the promoted churn model."""
    entry = pointer.get("churn")
    if not entry:
        return None, None, True
    version = entry["version"]
    if version == candidate_version:
        return version, None, True
    try:
        model, meta = artifacts.load_churn(models_dir, version)
    except (OSError, ValueError, artifacts.UntrustedArtifactError) as exc:
        log.warning("promoted churn model %s cannot be loaded (%s): comparing with the baselines only", version, exc)
        return None, None, True
    if not _usable(meta, plan.churn_days):
        log.warning("promoted churn model %s has another feature set or churn window: comparing with the "
                    "baselines only", version)
        return None, None, True
    label_end = max(date.fromisoformat(w[1]) for w in meta["plan"]["training_label_windows"])
    if label_end > plan.evaluation_cutoff:
        log.warning("promoted churn model %s was trained on labels up to %s, after this evaluation cutoff %s",
                    version, label_end, plan.evaluation_cutoff)
        return version, None, False
    y = evaluation["churned"].to_numpy()
    p = churn.predict(model, evaluation)
    return version, churn.metrics(y, p, p), True


def _incumbent_clv(models_dir: Path, pointer: dict, plan: CutoffPlan, inputs: Inputs, ids: pd.Index,
                   actual: pd.DataFrame, candidate_version: str) -> tuple[str | None, dict | None, bool]:
    entry = pointer.get("clv")
    if not entry:
        return None, None, True
    version = entry["version"]
    if version == candidate_version:
        return version, None, True
    try:
        params = clv.ClvParams(**artifacts.load_clv(models_dir, version)["params"])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        log.warning("promoted CLV model %s cannot be loaded (%s): comparing with the baseline only", version, exc)
        return None, None, True
    if date.fromisoformat(params.fitted_at_cutoff) > plan.evaluation_cutoff:
        return version, None, False
    predicted = clv.predict(params, inputs, plan.evaluation_cutoff, ids, plan.churn_days)
    return version, clv.error_metrics(predicted, actual), True


def _as_day(as_of: date) -> date:
    """Accept a datetime too (Airflow passes those); its UTC calendar day is meant."""
    if isinstance(as_of, datetime):
        return (as_of.astimezone(UTC) if as_of.tzinfo else as_of).date()
    return as_of


def train_evaluate_promote(con: duckdb.DuckDBPyConnection, as_of: date, models_dir: Path) -> dict:
    """Train churn + CLV as of ``as_of``, evaluate, write ml.model_evaluations, promote or not.

    Training and evaluation read stable samples of customers beyond MAX_TRAINING_CUSTOMERS and
    MAX_EVALUATION_CUSTOMERS (docs/ml.md). Returns a JSON-friendly summary: model_version, promoted
    (churn), the plan of cutoffs, and per model kind the metrics (model, baselines, promoted model), the
    decision and its reason. Raises ml.config.NotEnoughHistoryError when the warehouse is too short for
    the churn window.
    """
    as_of = _as_day(as_of)
    models_dir = Path(models_dir)
    churn_days = churn_after_days()
    _warn_if_stale(last_transaction_day(con), as_of)
    plan = plan_cutoffs(as_of, churn_days, first_sale_day(con))
    log.info("cutoffs: %s", plan.as_dict())
    # Only the evaluation sample's rows are read (it holds the training sample): memory follows the
    # samples, not the customer base.
    if MAX_TRAINING_CUSTOMERS > MAX_EVALUATION_CUSTOMERS:
        raise ValueError(f"MAX_TRAINING_CUSTOMERS ({MAX_TRAINING_CUSTOMERS}) must not exceed "
                         f"MAX_EVALUATION_CUSTOMERS ({MAX_EVALUATION_CUSTOMERS}): training reads its sample")
    everyone = transaction_customers(con)
    evaluated = sampled_customers(everyone, MAX_EVALUATION_CUSTOMERS)
    if evaluated is not None:
        log.info("evaluation sample: %s of %s customers", len(evaluated), len(everyone))
    inputs = load_inputs(con, customers=evaluated)
    # What DuckDB cached while reading is of no more use here: at 1M customers 1.2 GB, kept beside the
    # frames through training (peak RSS 4,390 MiB with it).
    release_cached_blocks(con)
    train = labelled_frame(customer_sample(inputs, MAX_TRAINING_CUSTOMERS, population=len(everyone)),
                           plan.training_cutoffs, churn_days)
    evaluation = labelled_frame(inputs, [plan.evaluation_cutoff], churn_days)
    # same data, code and libraries -> same version (a rerun overwrites the same artifacts)
    version = artifacts.model_version(as_of, artifacts.fingerprint(train), artifacts.fingerprint(evaluation),
                                      artifacts.code_fingerprint(),
                                      json.dumps(artifacts.library_versions(), sort_keys=True))
    pointer = artifacts.read_pointer(models_dir)
    churn_summary = _train_churn(con, models_dir, pointer, version, plan, train, evaluation)
    clv_summary = _train_clv(con, models_dir, pointer, version, plan, inputs, train, evaluation)
    return {"as_of": as_of.isoformat(), "model_version": version, "promoted": churn_summary["promoted"],
            "churn_after_days": churn_days, "plan": plan.as_dict(), "churn": churn_summary, "clv": clv_summary}


def _train_churn(con: duckdb.DuckDBPyConnection, models_dir: Path, pointer: dict, version: str, plan: CutoffPlan,
                 train: pd.DataFrame, evaluation: pd.DataFrame) -> dict:
    model = churn.fit(train)
    metrics = churn.evaluate(model, train, evaluation)
    inc_version, inc_metrics, comparable = _incumbent_churn(models_dir, pointer, plan, evaluation, version)
    metrics["incumbent"] = inc_metrics
    decision = churn_decision(version, metrics["model"][PRIMARY_CHURN_METRIC],
                              metrics["recency"][PRIMARY_CHURN_METRIC], inc_version,
                              inc_metrics[PRIMARY_CHURN_METRIC] if inc_metrics else None, comparable)
    log.info("churn %s: promoted=%s (%s)", version, decision.promoted, decision.reason)
    artifacts.save_churn(models_dir, version, model, {
        "model_version": version, "model_kind": "churn", "as_of": plan.as_of.isoformat(), "plan": plan.as_dict(),
        "features": FEATURES, "model_spec": churn.MODEL_SPEC, "training_rows": len(train),
        "training_churn_rate": float(train["churned"].mean()), "data_fingerprint": artifacts.fingerprint(train),
        "code_fingerprint": artifacts.code_fingerprint(), "metrics": metrics, "decision": decision.reason,
    })
    _write_evaluations(con, _evaluation_rows(version, "churn", plan, metrics, len(evaluation), decision.promoted,
                                             inc_version), version, "churn", plan)
    if decision.promoted and (pointer.get("churn") or {}).get("version") != version:
        artifacts.promote(models_dir, "churn", version, {
            "evaluation_cutoff": plan.evaluation_cutoff.isoformat(),
            PRIMARY_CHURN_METRIC: metrics["model"][PRIMARY_CHURN_METRIC]})
    headline = ("roc_auc", "average_precision", "brier", "lift_decile_01", "observed_churn_rate")
    return {"promoted": decision.promoted, "reason": decision.reason, "training_rows": len(train),
            "evaluation_customers": len(evaluation), "incumbent_version": inc_version,
            "metrics": {k: ({m: v[m] for m in headline} if v else None) for k, v in metrics.items()}}


def _train_clv(con: duckdb.DuckDBPyConnection, models_dir: Path, pointer: dict, version: str, plan: CutoffPlan,
               inputs: Inputs, train: pd.DataFrame, evaluation: pd.DataFrame) -> dict:
    """Fit on histories before the evaluation cutoff; check on its next churn_days days (same customers)."""
    ids = pd.Index(evaluation["customer_id"], name="customer_id")
    horizon = plan.churn_days
    params = clv.fit(inputs, plan.evaluation_cutoff)
    actual = future_activity(inputs, plan.evaluation_cutoff, horizon, ids)
    latest_train = train[train["cutoff"] == plan.training_cutoffs[-1]]
    retention = float(1 - latest_train["churned"].mean())
    metrics = {
        "model": clv.error_metrics(clv.predict(params, inputs, plan.evaluation_cutoff, ids, horizon), actual),
        "baseline": clv.error_metrics(clv.baseline(inputs, plan.evaluation_cutoff, ids, horizon, retention), actual),
    }
    inc_version, inc_metrics, comparable = _incumbent_clv(models_dir, pointer, plan, inputs, ids, actual, version)
    metrics["incumbent"] = inc_metrics
    decision = clv_decision(version, metrics["model"][PRIMARY_CLV_METRIC], metrics["baseline"][PRIMARY_CLV_METRIC],
                            inc_version, inc_metrics[PRIMARY_CLV_METRIC] if inc_metrics else None, comparable)
    log.info("clv %s: promoted=%s (%s)", version, decision.promoted, decision.reason)
    artifacts.save_clv(models_dir, version, {
        "model_version": version, "model_kind": "clv", "as_of": plan.as_of.isoformat(), "plan": plan.as_dict(),
        "method": "BG/NBD + Gamma-Gamma", "params": params.as_dict(),
        "evaluation_horizon_days": horizon, "prediction_horizon_days": CLV_HORIZON_DAYS,
        "baseline_retention": retention,
        "data_fingerprint": artifacts.fingerprint(clv.summaries(inputs, plan.evaluation_cutoff, ids).reset_index()),
        "metrics": metrics, "decision": decision.reason,
    })
    _write_evaluations(con, _evaluation_rows(version, "clv", plan, metrics, len(ids), decision.promoted,
                                             inc_version), version, "clv", plan)
    if decision.promoted and (pointer.get("clv") or {}).get("version") != version:
        artifacts.promote(models_dir, "clv", version, {
            "evaluation_cutoff": plan.evaluation_cutoff.isoformat(),
            PRIMARY_CLV_METRIC: metrics["model"][PRIMARY_CLV_METRIC]})
    return {"promoted": decision.promoted, "reason": decision.reason, "evaluation_horizon_days": horizon,
            "incumbent_version": inc_version, "metrics": metrics}


def prepare_scoring(con: duckdb.DuckDBPyConnection, as_of: date, models_dir: Path) -> dict[str, str]:
    """Make sure usable promoted models exist (training first when none is); return their versions.

    The only step of scoring that may write to the warehouse besides the final slice write
    (``ml.model_evaluations`` when it trains), so partitioned scoring runs it once, before the partitions.
    """
    as_of = _as_day(as_of)
    models_dir = Path(models_dir)
    churn_days = churn_after_days()
    if not _promoted_usable(models_dir, churn_days):
        log.info("no usable promoted model in %s (none yet, or another feature set or churn window): "
                 "training first", models_dir)
        train_evaluate_promote(con, as_of, models_dir)
    pointer = artifacts.read_pointer(models_dir)
    missing = [kind for kind in artifacts.KINDS if kind not in pointer]
    if missing:
        raise NoPromotedModelError(f"no promoted {' and '.join(missing)} model in {models_dir}: the candidate did "
                                   "not beat its baseline (see ml.model_evaluations)")
    churn_version = pointer["churn"]["version"]
    _, meta = artifacts.load_churn(models_dir, churn_version)
    if not _usable(meta, churn_days):
        raise NoPromotedModelError(f"promoted churn model {churn_version} does not match this code's features and "
                                   f"churn window ({churn_days} days), and the new candidate was not promoted")
    return {"churn": churn_version, "clv": pointer["clv"]["version"]}


def _promoted_versions(models_dir: Path) -> dict[str, str]:
    """The promoted churn and CLV versions (NoPromotedModelError when one is missing)."""
    pointer = artifacts.read_pointer(models_dir)
    missing = [kind for kind in artifacts.KINDS if kind not in pointer]
    if missing:
        raise NoPromotedModelError(f"no promoted {' and '.join(missing)} model in {models_dir}: run "
                                   "prepare_scoring first")
    return {kind: pointer[kind]["version"] for kind in artifacts.KINDS}


def partition_blocks(con: duckdb.DuckDBPyConnection, partition: int, partitions: int,
                     block_transactions: int = SCORING_BLOCK_TRANSACTIONS) -> tuple[int, list[int]]:
    """(blocks, the numbers of ``partition``'s blocks): a partition is every ``partitions``-th block.

    The warehouse is read in blocks of customers (about ``block_transactions`` transactions each, a
    multiple of ``partitions`` of them), so each partition reads only its own customers' rows.
    """
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is outside [0, {partitions})")
    blocks = -(-block_count(con, block_transactions) // partitions) * partitions
    return blocks, list(range(partition, blocks, partitions))


def partition_features(con: duckdb.DuckDBPyConnection, as_of: date, models_dir: Path, partition: int = 0,
                       partitions: int = 1, block_transactions: int = SCORING_BLOCK_TRANSACTIONS,
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, CLV rows) of the customers of one partition (``partition_blocks``); reads only.

    Memory follows a block, not the whole history: each block's features and CLV rows are computed
    from that block's rows alone (every feature reads only the customer's own rows), so the rows are
    identical to a single-block run's. Raises EmptyPopulationError when none of the partition's
    customers is in the population.
    """
    as_of = _as_day(as_of)
    models_dir = Path(models_dir)
    clv_version = _promoted_versions(models_dir)["clv"]
    params = clv.ClvParams(**artifacts.load_clv(models_dir, clv_version)["params"])
    _warn_if_stale(last_transaction_day(con), as_of)
    cutoff = as_of + timedelta(days=1)  # the end of the as-of day: all of its events count
    churn_days = churn_after_days()
    blocks, mine = partition_blocks(con, partition, partitions, block_transactions)
    feature_blocks, prediction_blocks, empty = [], [], None
    for number in mine:
        inputs = load_inputs(con, block=(number, blocks))
        try:
            features = compute_features(inputs, cutoff, churn_days)
        except EmptyPopulationError as exc:
            empty = exc  # nobody of this block is in the population; other blocks may have people
            continue
        feature_blocks.append(features)
        prediction_blocks.append(clv_predictions(params, inputs, cutoff, features.index, as_of, clv_version))
        del inputs
    if not feature_blocks:
        raise empty or EmptyPopulationError(f"partition {partition} of {partitions} has no blocks")
    features = pd.concat(feature_blocks).sort_index()
    predictions = pd.concat(prediction_blocks).sort_values("customer_id", kind="mergesort", ignore_index=True)
    log.info("partition %s/%s: features of %s customers, read in %s of %s block(s)", partition, partitions,
             len(features), len(mine), blocks)
    return features, predictions


def partition_churn_scores(as_of: date, models_dir: Path, features: pd.DataFrame,
                           typical: dict[str, object], threads: int = 1) -> pd.DataFrame:
    """Churn score rows of ``features`` (a partition's) with the promoted model; no warehouse access.

    ``typical``: the whole population's reference values for the reasons (``typical_values`` of every
    partition's features), so that a partition's rows are those of a single-partition run.
    ``threads``: for the reasons (``ml.config.scoring_threads``); the rows do not depend on it.
    """
    models_dir = Path(models_dir)
    churn_version = _promoted_versions(models_dir)["churn"]
    model, _ = artifacts.load_churn(models_dir, churn_version)
    return churn_scores(model, features, _as_day(as_of), churn_version, typical, threads)


def compute_scores(con: duckdb.DuckDBPyConnection, as_of: date, models_dir: Path,
                   block_transactions: int = SCORING_BLOCK_TRANSACTIONS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(churn score rows, CLV rows) of the whole population in one process; reads only (no writes).

    The partitioned path (loyalist.partitioned) splits the same work: features and CLV per partition,
    then the churn scores per partition with the population's typical values.
    """
    features, predictions = partition_features(con, as_of, models_dir, block_transactions=block_transactions)
    scores = partition_churn_scores(as_of, models_dir, features, typical_values(features), scoring_threads())
    return scores, predictions


def write_scores(con: duckdb.DuckDBPyConnection, as_of: date, scores: pd.DataFrame,
                 predictions: pd.DataFrame) -> dict:
    """Replace the ``as_of`` slices of ml.churn_scores and ml.clv_predictions; return a summary."""
    as_of = _as_day(as_of)
    scores = scores.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    predictions = predictions.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    n_scores = store.replace_slice(con, "churn_scores", scores, "as_of_date = ?", [as_of])
    n_clv = store.replace_slice(con, "clv_predictions", predictions, "as_of_date = ?", [as_of])
    bands = scores["risk_band"].value_counts().sort_index()
    churn_version = scores["model_version"].iloc[0] if len(scores) else None
    clv_version = predictions["model_version"].iloc[0] if len(predictions) else None
    log.info("scored %s customers as of %s (churn %s, clv %s): %s", n_scores, as_of, churn_version, clv_version,
             bands.to_dict())
    return {"as_of": as_of.isoformat(), "churn_scores": n_scores, "clv_predictions": n_clv,
            "churn_model_version": churn_version, "clv_model_version": clv_version,
            "risk_bands": {str(k): int(v) for k, v in bands.items()}}


def score(con: duckdb.DuckDBPyConnection, as_of: date, models_dir: Path) -> dict:
    """Write ml.churn_scores and ml.clv_predictions for ``as_of`` with the promoted models (one partition).

    Trains first when no model is promoted yet. Returns row counts and the model versions used.
    """
    prepare_scoring(con, as_of, models_dir)
    scores, predictions = compute_scores(con, as_of, models_dir)
    return write_scores(con, as_of, scores, predictions)


def churn_scores(model, features: pd.DataFrame, as_of: date, version: str,
                 typical: dict[str, object] | None = None, threads: int = 1) -> pd.DataFrame:
    """Rows of ml.churn_scores: probability, band and up to three reasons per customer.

    ``typical``: the reference values of the reasons (default: those of ``features`` itself).
    ``threads``: blocks of customers ablated at once for the reasons; the rows do not depend on it.
    """
    # Only contributions above MIN_CONTRIBUTION become reasons: customers whose probability is not above it
    # cannot have one, so they are not ablated (the same reasons for a fifth less prediction work at 100k).
    # The ablations re-run only the trees that split on the ablated group, and the probabilities come
    # from the same pass (churn.TreeAblation: the same numbers as churn.predict).
    probability, contributions = probabilities_and_contributions(
        partial(churn.predict, model), features, typical, only_above=MIN_CONTRIBUTION,
        ablation=churn.tree_ablation(model), threads=threads)
    return pd.DataFrame({
        "customer_id": features.index.astype(str),
        "as_of_date": as_of,
        "churn_probability": probability,
        "risk_band": [risk_band(p) for p in probability],
        "top_reasons": top_reasons(contributions, features, typical=typical).to_numpy(),
        "model_version": version,
    })


def clv_predictions(params: clv.ClvParams, inputs: Inputs, cutoff: date, customers: pd.Index, as_of: date,
                    version: str) -> pd.DataFrame:
    """Rows of ml.clv_predictions: expected orders and net spend in the next 12 months, next order day."""
    predicted = clv.predict(params, inputs, cutoff, customers, CLV_HORIZON_DAYS)
    next_days = predicted["days_to_next_order"].to_numpy()
    return pd.DataFrame({
        "customer_id": customers.astype(str),
        "as_of_date": as_of,
        "expected_orders_12m": predicted["expected_orders"].to_numpy(),
        "expected_spend_12m": predicted["expected_spend"].round(2).to_numpy(),
        # day d of the horizon (1 = the day after as_of) by which one order is expected; None beyond 12 months
        "expected_next_order_date": pd.Series(
            [cutoff + timedelta(days=int(d) - 1) if np.isfinite(d) else None for d in next_days], dtype=object),
        "model_version": version,
    })
