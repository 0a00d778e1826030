"""Hash partitions of customers by id, for the reward candidates and stable samples.

A customer belongs to partition ``sha256(customer_id) mod n`` (first 8 bytes, big-endian). The hash is
stable across processes, machines and Python versions (unlike ``hash()``), so every mapped Airflow task
agrees on who is in which slice, and a rerun puts everyone in the same slice again. (Scoring partitions
are sets of the blocks it reads the warehouse in, so that each reads only its own customers:
``ml.pipeline.partition_blocks``.)
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def hash_partition(customer_id: str, partitions: int) -> int:
    """Partition number in [0, partitions) of one customer."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    digest = hashlib.sha256(str(customer_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def in_partition(customer_ids: pd.Series | pd.Index, partition: int, partitions: int) -> np.ndarray:
    """Boolean mask: which of ``customer_ids`` fall into ``partition`` of ``partitions``."""
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is outside [0, {partitions})")
    if partitions == 1:
        return np.ones(len(customer_ids), dtype=bool)
    return np.fromiter((hash_partition(c, partitions) == partition for c in customer_ids), dtype=bool,
                       count=len(customer_ids))


def in_sample(customer_ids: pd.Series | pd.Index | np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask: a stable ``fraction`` of ``customer_ids`` (the same people in every run and process)."""
    buckets = 100_000
    cut = round(fraction * buckets)
    return np.fromiter((hash_partition(c, buckets) < cut for c in customer_ids), dtype=bool, count=len(customer_ids))
