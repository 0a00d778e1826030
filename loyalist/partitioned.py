"""Scoring and reward eligibility on hash partitions of customers (the DAG maps one task per partition).

DuckDB has a single writer: a file being written cannot be opened by another process at all, and mapped
tasks on the LocalExecutor or Celery run as parallel processes. So the steps are split by who writes:

1. ``prepare_scoring`` (one task, writer): make sure promoted models exist (trains when none is; that
   writes ml.model_evaluations), clear the run's partition folder.
2. ``feature_partition`` (one task per partition, read-only, in parallel): read the partition's
   customers only (every ``partitions``-th block of customers, ``ml.pipeline.partition_blocks``),
   compute their features and CLV rows, write both to Parquet under ``<data_dir>/partitions/<as_of>/``.
3. ``score_partition`` (per partition, no warehouse access, in parallel): the reasons compare each
   customer with the whole population's typical values, so each partition reads every partition's
   features, and scores its own customers.
4. ``collect_scores`` (one task, writer): replace the as_of slice of ml.churn_scores / ml.clv_predictions
   with all partitions' rows in one transaction.
5. ``reward_partition`` (per partition, read-only): rules, consent, expected value, best reward and the
   control flag for the partition's customers -> Parquet.
6. ``collect_rewards`` (one task, writer): the budget is global (greedy over every customer), so it is
   allocated here over all partitions' rows, then ml.reward_eligibility is written.

The tables are identical to the one-partition run (``ml.pipeline.score``, ``ml.rewards.build_reward_eligibility``);
tests/ml/test_partitioned.py compares them.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd

from loyalist.config import Settings
from loyalist.pipeline import ScoringUnavailable, models_dir
from loyalist.runlog import logged_step
from loyalist.warehouse import connect

log = logging.getLogger(__name__)


class MissingPartitionError(RuntimeError):
    """A collect step found fewer partition files than partitions: a partition task did not finish."""


class InconsistentPartitionsError(RuntimeError):
    """The partitions' rows cannot be combined (they were scored with different models)."""


def partition_dir(settings: Settings, as_of: date) -> Path:
    return settings.data_dir / "partitions" / as_of.isoformat()


def _part_file(settings: Settings, as_of: date, kind: str, partition: int, partitions: int) -> Path:
    return partition_dir(settings, as_of) / f"{kind}-{partition:04d}-of-{partitions:04d}.parquet"


def _write_part(frame: pd.DataFrame, path: Path, index: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=index)
    tmp.replace(path)  # a retried or killed task never leaves half a file under the final name


def _read_part_list(settings: Settings, as_of: date, kind: str, partitions: int) -> list[pd.DataFrame]:
    paths = [_part_file(settings, as_of, kind, i, partitions) for i in range(partitions)]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise MissingPartitionError(f"{kind}: partition files missing in {paths[0].parent}: {missing}")
    return [pd.read_parquet(p) for p in paths]


def _concat_parts(frames: list[pd.DataFrame], ignore_index: bool = True) -> pd.DataFrame:
    # A partition without anyone to score wrote an empty file without columns: left out, so that it
    # cannot change the other partitions' column types.
    with_rows = [frame for frame in frames if len(frame)]
    return pd.concat(with_rows, ignore_index=ignore_index) if with_rows else frames[0]


def _read_parts(settings: Settings, as_of: date, kind: str, partitions: int) -> pd.DataFrame:
    return _concat_parts(_read_part_list(settings, as_of, kind, partitions))


@logged_step("prepare_scoring", skipped=(ScoringUnavailable,))
def prepare_scoring(settings: Settings, as_of: date) -> dict[str, str]:
    """Promoted model versions to score with (training first if needed); raises ScoringUnavailable."""
    import shutil

    from ml.config import NotEnoughHistoryError
    from ml.pipeline import NoPromotedModelError, prepare_scoring

    shutil.rmtree(partition_dir(settings, as_of), ignore_errors=True)
    with connect(settings) as con:
        try:
            return prepare_scoring(con, as_of, models_dir(settings))
        except (NotEnoughHistoryError, NoPromotedModelError) as exc:
            log.warning("scoring skipped: %s", exc)
            raise ScoringUnavailable(str(exc)) from exc


@logged_step("score_features")
def feature_partition(settings: Settings, as_of: date, partition: int, partitions: int) -> dict:
    from ml.features import EmptyPopulationError
    from ml.pipeline import partition_features

    with connect(settings, read_only=True) as con:
        try:
            features, predictions = partition_features(con, as_of, models_dir(settings), partition, partitions)
        except EmptyPopulationError as exc:
            log.info("partition %s of %s: nobody to score (%s)", partition, partitions, exc)
            features, predictions = pd.DataFrame(), pd.DataFrame()
    _write_part(features, _part_file(settings, as_of, "features", partition, partitions), index=True)
    _write_part(predictions, _part_file(settings, as_of, "clv_predictions", partition, partitions))
    return {"partition": partition, "partitions": partitions, "customers": len(features)}


@logged_step("score_partition")
def score_partition(settings: Settings, as_of: date, partition: int, partitions: int) -> dict:
    from ml.config import scoring_threads
    from ml.features import EmptyPopulationError
    from ml.pipeline import partition_churn_scores
    from ml.reasons import typical_values

    parts = _read_part_list(settings, as_of, "features", partitions)
    population = _concat_parts(parts, ignore_index=False)  # indexed by customer_id
    if population.empty:
        raise EmptyPopulationError(f"no partition has anyone to score as of {as_of}")
    typical = typical_values(population)
    # a partition without anyone scores no rows, with the columns of the others' features
    mine = parts[partition] if len(parts[partition]) else population.iloc[:0]
    # the DAG runs the partitions' tasks side by side: each takes its share of the cores
    scores = partition_churn_scores(as_of, models_dir(settings), mine, typical, scoring_threads(partitions))
    _write_part(scores, _part_file(settings, as_of, "churn_scores", partition, partitions))
    return {"partition": partition, "partitions": partitions, "customers": len(scores)}


@logged_step("collect_scores")
def collect_scores(settings: Settings, as_of: date, partitions: int) -> dict:
    from ml.pipeline import write_scores

    scores = _read_parts(settings, as_of, "churn_scores", partitions)
    predictions = _read_parts(settings, as_of, "clv_predictions", partitions)
    for frame in (scores, predictions):
        if frame["model_version"].nunique() > 1:  # a model was promoted while the partitions ran
            raise InconsistentPartitionsError(f"partitions were scored with different models "
                                              f"{sorted(frame['model_version'].unique())}: rerun prepare_scoring")
    with connect(settings) as con:
        return write_scores(con, as_of, scores, predictions)


@logged_step("reward_candidates")
def reward_partition(settings: Settings, as_of: date, partition: int, partitions: int) -> dict:
    from ml.rewards import reward_candidates

    with connect(settings, read_only=True) as con:
        best = reward_candidates(con, as_of, partition, partitions)
    _write_part(best, _part_file(settings, as_of, "rewards", partition, partitions))
    return {"partition": partition, "partitions": partitions, "candidates": len(best)}


@logged_step("rewards")
def collect_rewards(settings: Settings, as_of: date, partitions: int) -> dict:
    from ml.rewards import allocate

    best = _read_parts(settings, as_of, "rewards", partitions)
    with connect(settings) as con:
        summary = allocate(con, as_of, best)
    return {**summary, "as_of_date": as_of.isoformat()}
