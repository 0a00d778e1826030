"""Churn classifier, the two baselines and the evaluation metrics.

Model: Pipeline(ColumnTransformer(numbers: median imputer + missing indicators + scaler, categories:
constant imputer + one-hot), HistGradientBoostingClassifier), wrapped in CalibratedClassifierCV
(sigmoid, 3 folds grouped by customer so one person's stacked cutoffs never straddle a fold).

Baselines, scored on the same customers:
* recency: days since the last completed sale;
* heuristic: days since the last sale / the customer's mean gap between purchase days (the
  population median gap for customers with a single purchase day).
A baseline's raw score ranks customers (AUC, AP, lift); for the Brier score it is mapped to a
probability by isotonic regression fitted on the training frame.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

from ml.config import RANDOM_STATE
from ml.features import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES

CALIBRATION_FOLDS = 3
CLASSIFIER_PARAMS = dict(max_depth=3, learning_rate=0.05, max_iter=100, min_samples_leaf=100,
                         l2_regularization=1.0, early_stopping=False, random_state=RANDOM_STATE)
# A readable description of the model, stored in its metadata.
MODEL_SPEC = (f"hgb{sorted(CLASSIFIER_PARAMS.items())}|sigmoid|groupkfold{CALIBRATION_FOLDS}|"
              f"features={','.join(FEATURES)}")
BASELINES = ("recency", "heuristic")


def build_pipeline() -> Pipeline:
    numeric = Pipeline([
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
        ("scale", StandardScaler()),
    ])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="missing", keep_empty_features=True)),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])
    pre = ColumnTransformer([("num", numeric, NUMERIC_FEATURES), ("cat", categorical, CATEGORICAL_FEATURES)])
    return Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(**CLASSIFIER_PARAMS))])


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns in model order: numbers as float, categories as object with "missing" for missing.

    One frame built from the converted columns: assigning them one by one into a copy of the frame made
    pandas re-arrange its blocks on every assignment (about twice as slow: 16 vs 9 ms for 7.8k rows).
    """
    columns = {}
    for col in FEATURES:
        value = frame[col]
        columns[col] = (value.astype(object).where(value.notna(), "missing") if col in CATEGORICAL_FEATURES
                        else value.astype(float))
    return pd.DataFrame(columns, index=frame.index)


def fit(train: pd.DataFrame) -> CalibratedClassifierCV:
    """Fit the calibrated model on a labelled frame (ml.features.labelled_frame)."""
    y = train["churned"].to_numpy()
    if len(np.unique(y)) < 2:
        raise ValueError("training labels have a single class: cannot train a churn model")
    x = model_input(train)
    folds = min(CALIBRATION_FOLDS, train["customer_id"].nunique())
    splits = list(GroupKFold(n_splits=folds).split(x, y, groups=train["customer_id"]))
    model = CalibratedClassifierCV(build_pipeline(), method="sigmoid", cv=splits)
    model.fit(x, y)
    model.cv = folds  # the fold indices are not needed after fitting (and would bloat the artifact)
    return model


# Rows per predict_proba call: memory stays bounded whatever the number of rows.
PREDICT_BLOCK_ROWS = 16384
# OpenMP threads of the trees' predict. On the 2 shared cores the pipeline runs on, 2 threads cost 2-3x the
# CPU and wall time of 1 (each of the 100 trees per call ends in a barrier that waits for a descheduled
# thread); partitioned scoring runs one process per partition instead (measured at 100k customers).
PREDICT_THREADS = 1


def trees_read_columns(model):
    """The same fitted model, handing the trees its preprocessed features column by column (Fortran order).

    The boosted trees are applied one tree at a time over all rows of a block, each tree reading a few
    features of every row. In the row-major matrix the preprocessing returns (80 features a row), every
    such read is a cache line of its own; column by column, a tree reads each of its features as one
    stretch of memory: the trees take a quarter of the time (100k sample, 16,384 rows, 100 trees: 0.30 -> 0.07 s).
    The numbers do not change: the trees read the same values, only their place in memory differs.
    Models of another shape (not a calibrated Pipeline ensemble) are returned as they are.
    """
    classifiers = getattr(model, "calibrated_classifiers_", None)
    if not classifiers or not all(isinstance(c.estimator, Pipeline) for c in classifiers):
        return model
    reordered = copy.copy(model)
    reordered.calibrated_classifiers_ = []
    for calibrated in classifiers:
        steps = calibrated.estimator.steps
        calibrated = copy.copy(calibrated)
        calibrated.estimator = Pipeline([*steps[:-1], ("column_major", _COLUMN_MAJOR), steps[-1]])
        reordered.calibrated_classifiers_.append(calibrated)
    return reordered


_COLUMN_MAJOR = FunctionTransformer(np.asfortranarray)  # stateless: usable without fitting


def predict(model, features: pd.DataFrame, block_rows: int = PREDICT_BLOCK_ROWS) -> np.ndarray:
    """Churn probability per row (each row is scored on its own, so blocks give the same numbers)."""
    model = trees_read_columns(model)
    with threadpool_limits(limits=PREDICT_THREADS, user_api="openmp"):
        return np.concatenate([model.predict_proba(model_input(features.iloc[i:i + block_rows]))[:, 1]
                               for i in range(0, max(len(features), 1), block_rows)])


def tree_ablation(model) -> Callable[[dict[str, object]], TreeAblation] | None:
    """For ``ml.reasons.group_contributions``: the churn model's ablations, re-running only the trees they reach.

    None for a model of another shape (the reasons then ablate feature frames, which is always right).
    """
    folds = _ablation_folds(model)
    if folds is None:
        return None
    return lambda ref: TreeAblation(model.classes_, folds, ref)


class _RawScores(ClassifierMixin, BaseEstimator):
    """Stands in for a fold's pipeline inside its calibration step: its decision values are given as input."""

    def __init__(self, classes: np.ndarray):
        self.classes_ = classes

    def decision_function(self, raw: np.ndarray) -> np.ndarray:
        return raw[:, 0]


@dataclass(frozen=True)
class _Fold:
    pre: ColumnTransformer               # the fold's preprocessing
    trees: HistGradientBoostingClassifier
    calibration: object                  # the fold's calibrated classifier, reading the trees' raw sum
    columns: dict[str, np.ndarray]       # each feature's preprocessed columns
    split_columns: list[frozenset[int]]  # the preprocessed columns each tree splits on


def _ablation_folds(model) -> list[_Fold] | None:
    """The calibrated ensemble taken apart fold by fold; None when it is not ``fit``'s model."""
    classifiers = getattr(model, "calibrated_classifiers_", None)
    if not classifiers:
        return None
    folds = []
    for calibrated in classifiers:
        steps = getattr(calibrated.estimator, "steps", [])
        if len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer) \
                or not isinstance(steps[1][1], HistGradientBoostingClassifier):
            return None
        pre, trees = steps[0][1], steps[1][1]
        columns = _feature_columns(pre)
        if columns is None or trees.n_trees_per_iteration_ != 1 or calibrated.method != "sigmoid":
            return None
        calibration = copy.copy(calibrated)
        calibration.estimator = _RawScores(trees.classes_)
        split_columns = [frozenset(int(f) for f in predictor.nodes["feature_idx"][predictor.nodes["is_leaf"] == 0])
                         for (predictor,) in trees._predictors]
        folds.append(_Fold(pre, trees, calibration, columns, split_columns))
    return folds


def _feature_columns(pre: ColumnTransformer) -> dict[str, np.ndarray] | None:
    """Each input feature's columns in the preprocessed matrix of ``build_pipeline``'s ColumnTransformer.

    Numbers: the scaled value, then (after all values) a missing-value indicator for the features that
    had missing values in training. Categories: one one-hot column per category, feature after feature.
    None when the fitted transformer is not laid out like that.
    """
    try:
        num_slice, cat_slice = pre.output_indices_["num"], pre.output_indices_["cat"]
        imputer = pre.named_transformers_["num"].named_steps["impute"]
        categories = pre.named_transformers_["cat"].named_steps["onehot"].categories_
    except (AttributeError, KeyError):
        return None
    indicated = [] if imputer.indicator_ is None else [int(i) for i in imputer.indicator_.features_]
    n = len(NUMERIC_FEATURES)
    sizes = [len(c) for c in categories]
    if num_slice.stop - num_slice.start != n + len(indicated) or cat_slice.stop - cat_slice.start != sum(sizes):
        return None
    columns = {}
    for i, feature in enumerate(NUMERIC_FEATURES):
        own = [num_slice.start + i]
        if i in indicated:
            own.append(num_slice.start + n + indicated.index(i))
        columns[feature] = np.array(own)
    start = cat_slice.start
    for feature, size in zip(CATEGORICAL_FEATURES, sizes, strict=True):
        columns[feature] = np.arange(start, start + size)
        start += size
    return columns


class TreeAblation:
    """The reasons' ablations (``ml.reasons.Ablation``) of the calibrated churn ensemble, with less work.

    1. After the preprocessing: it works column by column (impute, indicate, scale, one-hot), so a
       customer with a group of features set to the reference values is, preprocessed, the customer's
       preprocessed row with that group's columns taken from the preprocessed reference row. Each block
       of customers is preprocessed once, not once per group.
    2. Only the trees that split on a group's columns: any other tree sends the ablated row to the leaf
       of the customer's own row. Each tree's leaf values of the block are kept from one pass, and an
       ablated row's raw score is summed tree by tree in the model's order, re-running only the trees
       that split on the group (a third of them, on average, at 10k customers).
    The trees and the calibration see the same numbers, in the same order, as scikit-learn's
    ``predict_proba`` on the ablated frames: the same probabilities to the last bit (tested). This reads
    fitted attributes of HistGradientBoostingClassifier that are not public API (its predictors, its
    baseline, its input check): the version is pinned in uv.lock, and the test would catch a change.
    """

    def __init__(self, classes: np.ndarray, folds: list[_Fold], ref: dict[str, object]):
        self._classes, self._folds = classes, folds
        reference = model_input(pd.DataFrame([{col: ref[col] for col in FEATURES}]))
        self._reference = [fold.pre.transform(reference)[0] for fold in folds]
        self._categories = [fold.trees._bin_mapper.make_known_categories_bitsets() for fold in folds]

    def _leaves(self, k: int, matrix: np.ndarray, tree: int) -> np.ndarray:
        """Tree ``tree`` of fold ``k``: the leaf value of each row (as the model's own predict computes it)."""
        known_categories, category_index = self._categories[k]
        return self._folds[k].trees._predictors[tree][0].predict(matrix, known_categories, category_index,
                                                                 PREDICT_THREADS)

    def _matrix(self, fold: _Fold, x: pd.DataFrame) -> np.ndarray:
        return fold.trees._preprocess_X(np.asfortranarray(fold.pre.transform(x)), reset=False)

    def prepare(self, part: pd.DataFrame) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """Per fold: the block's preprocessed rows and every tree's leaf values for them."""
        x = model_input(part)
        prepared = []
        for k, fold in enumerate(self._folds):
            matrix = self._matrix(fold, x)
            prepared.append((matrix, [self._leaves(k, matrix, t) for t in range(len(fold.split_columns))]))
        return prepared

    def base(self, prepared: list[tuple[np.ndarray, list[np.ndarray]]]) -> np.ndarray:
        """The ensemble's probability of the prepared rows themselves, from their leaf values.

        The sums ``predict`` makes for an ablated row, with no tree re-run: the same numbers as
        ``predict_proba`` of the model (tested to the last bit).
        """
        def add_trees(k: int, fold: _Fold, raw: np.ndarray) -> None:
            for tree_leaves in prepared[k][1]:
                raw += tree_leaves

        return self._probability(prepared[0][0].shape[0], add_trees)

    def ablated(self, prepared: list, rows: np.ndarray, cols: list[str]) -> list[tuple]:
        """Per fold: (the rows' leaf values, the ablated rows, the group's columns)."""
        out = []
        for (matrix, leaves), reference, fold in zip(prepared, self._reference, self._folds, strict=True):
            own = np.concatenate([fold.columns[col] for col in cols])
            edited = matrix[rows]
            edited[:, own] = reference[own]
            out.append((leaves, rows, np.asfortranarray(edited), frozenset(own.tolist())))
        return out

    def predict(self, pieces: list[list[tuple]]) -> np.ndarray:
        """The ensemble's probability of each ablated row, pieces in order (as CalibratedClassifierCV computes it)."""
        n = sum(len(piece[0][1]) for piece in pieces)

        def add_trees(k: int, fold: _Fold, raw: np.ndarray) -> None:
            offset = 0
            for piece in pieces:
                leaves, rows, edited, own = piece[k]
                part = raw[offset:offset + len(rows)]
                for tree, split in enumerate(fold.split_columns):
                    part += self._leaves(k, edited, tree) if split & own else leaves[tree][rows]
                offset += len(rows)

        with threadpool_limits(limits=PREDICT_THREADS, user_api="openmp"):
            return self._probability(n, add_trees)

    def _probability(self, n: int, add_trees: Callable[[int, _Fold, np.ndarray], None]) -> np.ndarray:
        """Probability of ``n`` rows as CalibratedClassifierCV computes it; ``add_trees(k, fold, raw)`` adds
        fold k's trees, in the model's order, to the rows' raw scores (which start at the baseline)."""
        mean = np.zeros((n, self._classes.shape[0]))
        for k, fold in enumerate(self._folds):
            raw = np.zeros((n, 1), order="F")
            raw += fold.trees._baseline_prediction
            add_trees(k, fold, raw[:, 0])
            mean += fold.calibration.predict_proba(raw)
        mean /= len(self._folds)
        return mean[:, 1]


def baseline_scores(features: pd.DataFrame) -> pd.DataFrame:
    """Higher = more likely to churn. Columns: recency, heuristic."""
    typical_gap = features["interval_mean_days"].median()
    typical_gap = typical_gap if pd.notna(typical_gap) and typical_gap > 0 else 30.0
    gap = features["interval_mean_days"].fillna(typical_gap).clip(lower=1.0)
    return pd.DataFrame({"recency": features["recency_days"], "heuristic": features["recency_days"] / gap},
                        index=features.index)


def fit_baseline_calibrators(train: pd.DataFrame) -> dict[str, IsotonicRegression]:
    """Isotonic maps from each baseline score to a churn probability, fitted per training cutoff frame."""
    scores = pd.concat([baseline_scores(part) for _, part in train.groupby("cutoff", sort=True)])
    scores = scores.loc[train.index]
    return {name: IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        scores[name].to_numpy(), train["churned"].to_numpy()) for name in BASELINES}


def lift_by_decile(y: np.ndarray, score: np.ndarray) -> list[float]:
    """Churn rate of each score decile (highest scores first) divided by the overall rate."""
    order = np.argsort(-score, kind="stable")
    rate = y.mean()
    return [float(part.mean() / rate) if rate > 0 and len(part) else float("nan")
            for part in np.array_split(y[order], 10)]


def calibration_by_decile(y: np.ndarray, probability: np.ndarray) -> list[tuple[float, float]]:
    """(mean predicted probability, observed churn rate) of each tenth of customers ordered by probability.

    Equal-count bins, so every point of the reliability curve rests on the same number of customers.
    """
    order = np.argsort(probability, kind="stable")
    return [(float(probability[part].mean()), float(y[part].mean())) if len(part) else (float("nan"), float("nan"))
            for part in np.array_split(order, 10)]


def metrics(y: np.ndarray, score: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUC, AP and lift on the ranking score; Brier, mean and calibration points on the probability."""
    out = {
        "roc_auc": float(roc_auc_score(y, score)),
        "average_precision": float(average_precision_score(y, score)),
        "brier": float(brier_score_loss(y, probability)),
        "mean_probability": float(np.mean(probability)),
        "observed_churn_rate": float(np.mean(y)),
    }
    for i, lift in enumerate(lift_by_decile(y, score), start=1):
        out[f"lift_decile_{i:02d}"] = lift
    # The run report draws the reliability curve from these rows of ml.model_evaluations.
    for i, (predicted, observed) in enumerate(calibration_by_decile(y, probability), start=1):
        out[f"calibration_predicted_{i:02d}"] = predicted
        out[f"calibration_observed_{i:02d}"] = observed
    return out


def evaluate(model, train: pd.DataFrame, evaluation: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Metrics of the model and both baselines on the evaluation frame: {'model'|'recency'|'heuristic': {...}}."""
    y = evaluation["churned"].to_numpy()
    if len(np.unique(y)) < 2:
        raise ValueError("evaluation labels have a single class: AUC is undefined")
    p = predict(model, evaluation)
    out = {"model": metrics(y, p, p)}
    calibrators = fit_baseline_calibrators(train)
    scores = baseline_scores(evaluation)
    for name in BASELINES:
        s = scores[name].to_numpy()
        out[name] = metrics(y, s, calibrators[name].predict(s))
    return out
