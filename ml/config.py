"""The one place for the ML step's definitions: churn, population, windows, cutoffs, risk bands.

Dates and times
---------------
A *cutoff* is a calendar date ``c`` that stands for the instant ``c 00:00 UTC``. Features at ``c`` use
only rows whose event time is strictly before that instant; labels at ``c`` use the window
``[c, c + N days)``.

For a run "as of" day ``D`` (the warehouse holds events up to the end of ``D``, like dbt's as-of filter):

* the scoring cutoff is ``D + 1`` (the end of day ``D``: every event of ``D`` counts);
* the evaluation cutoff is ``D - N``: its label window ``[D - N, D)`` ends on the scoring date;
* training cutoffs are ``D - 2N - k * step`` (k = 0, 1, ...): each label window ends on or before
  the evaluation cutoff, so no training label overlaps the evaluation or scoring periods. Cutoffs
  need ``max(N, MIN_HISTORY_DAYS)`` days of data before them, so a run needs at least
  ``3N`` days of history (270 days for N = 90).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import yaml

from loyalist.config import DBT_PROJECT_DIR

log = logging.getLogger(__name__)

# Churn: no completed purchase within N days after the cutoff. N is the dbt var `churn_after_days`
# (one definition for SQL and Python); this is the fallback when the var is absent.
DEFAULT_CHURN_AFTER_DAYS = 90
CHURN_VAR = "churn_after_days"

# Population ("alive enough" to score): at least one completed sale in the N days before the cutoff
# (N = churn_after_days). Whoever has not bought for N days has churned already by the same
# definition (the dbt lifecycle stage `churned`): a win-back case, not a churn prediction.

# Feature windows (days before the cutoff).
WINDOWS = (30, 90, 180, 365)

# Training cutoffs: every TRAIN_STEP_DAYS going back from the latest allowed one, at most
# MAX_TRAIN_CUTOFFS, each with at least max(N, MIN_HISTORY_DAYS) days of transactions before it, so
# that its population (bought in the last N days) is fully observed, as it is when scoring.
TRAIN_STEP_DAYS = 14
MAX_TRAIN_CUTOFFS = 12
MIN_HISTORY_DAYS = 90

# Training reads at most this many customers: a stable hash sample (ml.data.customer_sample), the same
# people at every cutoff. Beyond it the model barely improves while feature and fitting time and memory
# keep growing with the customer base (at 1M customers: ~7 cutoffs x 650k rows).
MAX_TRAINING_CUSTOMERS = 150_000

# The weekly evaluation (the held-out window: model, baselines, incumbent) and the CLV fit read a stable
# hash sample of at most this many customers; it holds the training sample (the same hash, a larger
# cut), so training reads only these customers' rows from the warehouse and its memory stops growing
# with the customer base (reading everyone took 10.5 GB at 1M customers). Up to this many customers
# nothing changes. Scoring always uses everyone.
MAX_EVALUATION_CUSTOMERS = 200_000

# Scoring reads the warehouse in blocks of customers with about this many transactions each (at 100k
# customers, 2M transactions, one block took 1.8 GB of memory): its memory stays bounded as the history
# grows, at the cost of one more scan of marts.transactions per block.
SCORING_BLOCK_TRANSACTIONS = 2_000_000


def scoring_threads(partitions: int = 1) -> int:
    """Threads for the churn reasons of one scoring process, when ``partitions`` processes score at once.

    The reasons' ablations run block by block of customers, each block on its own (ml.reasons), and
    the trees' predictions release the GIL: at 1M customers on 2 cores, 34-36 s on one thread and
    18-20 s on two, the same numbers. Each process takes its share of the cores this process may use,
    so the DAG's parallel partitions do not compete for them.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, partitions))


# CLV: predictions are for 12 months; with one year of data the held-out evaluation uses a shorter
# horizon (the churn window N), see docs/ml.md.
CLV_HORIZON_DAYS = 365

RANDOM_STATE = 42

# Risk bands on the calibrated churn probability: the lower bound of each band, highest first.
RISK_BANDS = (("high", 0.6), ("medium", 0.3), ("low", 0.0))


def risk_band(probability: float) -> str:
    """Band of one churn probability (the rule lives only here)."""
    for name, lower in RISK_BANDS:
        if probability >= lower:
            return name
    return RISK_BANDS[-1][0]


def churn_after_days(project_dir: Path = DBT_PROJECT_DIR) -> int:
    """N of the churn definition: dbt var `churn_after_days` from dbt_project.yml, else 90 (logged)."""
    path = project_dir / "dbt_project.yml"
    try:
        project = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        log.warning("cannot read %s (%s): churn_after_days falls back to %s", path, exc, DEFAULT_CHURN_AFTER_DAYS)
        return DEFAULT_CHURN_AFTER_DAYS
    value = (project.get("vars") or {}).get(CHURN_VAR)
    if value is None:
        log.warning("dbt var %s not set in %s: falling back to %s days", CHURN_VAR, path, DEFAULT_CHURN_AFTER_DAYS)
        return DEFAULT_CHURN_AFTER_DAYS
    days = int(str(value).strip())
    if days <= 0:
        raise ValueError(f"dbt var {CHURN_VAR} must be a positive number of days, got {value!r}")
    return days


@cache
def _dbt_vars(path: Path) -> dict:
    """The vars of a dbt_project.yml, read once per process (features and reasons ask per cutoff and row)."""
    try:
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("vars") or {}
    except OSError:
        return {}


def dbt_var(name: str, default: float, project_dir: Path = DBT_PROJECT_DIR) -> float:
    """A numeric business threshold from dbt_project.yml vars (their one home), else ``default`` (logged)."""
    path = project_dir / "dbt_project.yml"
    value = _dbt_vars(path).get(name)
    if value is None:
        log.warning("dbt var %s not found in %s: using %s", name, path, default)
        return default
    return float(value)


@dataclass(frozen=True)
class CutoffPlan:
    """Cutoffs of one run. Every label window is [cutoff, cutoff + churn_days)."""

    as_of: date
    churn_days: int
    scoring_cutoff: date
    evaluation_cutoff: date
    training_cutoffs: tuple[date, ...]  # oldest first

    def label_window(self, cutoff: date) -> tuple[date, date]:
        return cutoff, cutoff + timedelta(days=self.churn_days)

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "churn_days": self.churn_days,
            "scoring_cutoff": self.scoring_cutoff.isoformat(),
            "evaluation_cutoff": self.evaluation_cutoff.isoformat(),
            "evaluation_label_window": [d.isoformat() for d in self.label_window(self.evaluation_cutoff)],
            "training_cutoffs": [c.isoformat() for c in self.training_cutoffs],
            "training_label_windows": [[d.isoformat() for d in self.label_window(c)] for c in self.training_cutoffs],
        }


class NotEnoughHistoryError(ValueError):
    """The warehouse does not hold enough history before the as-of date to train and evaluate."""


def min_history_days(churn_days: int) -> int:
    """Days of data a training cutoff needs before it."""
    return max(churn_days, MIN_HISTORY_DAYS)


def required_history_days(churn_days: int, training_cutoffs: int = 1) -> int:
    """Days of data (ending on the as-of day) needed for ``training_cutoffs`` training cutoffs."""
    return min_history_days(churn_days) + 2 * churn_days + (training_cutoffs - 1) * TRAIN_STEP_DAYS


def plan_cutoffs(as_of: date, churn_days: int, data_start: date, step_days: int = TRAIN_STEP_DAYS,
                 max_cutoffs: int = MAX_TRAIN_CUTOFFS) -> CutoffPlan:
    """Scoring, evaluation and training cutoffs for a run as of ``as_of`` (see the module docstring)."""
    min_history = min_history_days(churn_days)
    evaluation = as_of - timedelta(days=churn_days)
    earliest = data_start + timedelta(days=min_history)
    latest_training = evaluation - timedelta(days=churn_days)
    training = []
    cutoff = latest_training
    while cutoff >= earliest and len(training) < max_cutoffs:
        training.append(cutoff)
        cutoff -= timedelta(days=step_days)
    if not training:
        needed = required_history_days(churn_days)
        raise NotEnoughHistoryError(
            f"as of {as_of} with churn after {churn_days} days, training needs {needed} days of history "
            f"(data starts {data_start}, so the first possible as-of date is {data_start + timedelta(days=needed)})")
    return CutoffPlan(as_of=as_of, churn_days=churn_days, scoring_cutoff=as_of + timedelta(days=1),
                      evaluation_cutoff=evaluation, training_cutoffs=tuple(sorted(training)))
