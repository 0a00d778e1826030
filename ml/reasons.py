"""Top reasons per scored customer: which feature groups push the churn probability up, in words.

Contribution of a group g for customer i = p(x_i) - p(x_i with g's features set to the population's
typical value: median for numbers, most frequent value for categories). It works for any model
(here gradient-boosted trees, where coefficients do not exist) and is computed vectorised: the ablated
copies of a block of customers go through one predict_proba call (see ``group_contributions``).

Only groups whose contribution is above MIN_CONTRIBUTION (they push churn *up*) and whose own
values are known for the customer become reasons; at most MAX_REASONS, largest first, each rendered
from the customer's own feature values by the group's template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Protocol

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

from ml.config import dbt_var
from ml.features import CATEGORICAL_FEATURES, FEATURE_GROUPS, FEATURES
from ml.feedback_text import load_lexicon

MAX_REASONS = 3
MIN_CONTRIBUTION = 0.01  # probability points
NO_REASON = "no single factor raises the churn risk noticeably"
SEPARATOR = " | "


def typical_values(features: pd.DataFrame) -> dict[str, object]:
    """Population reference for the ablation: median of numbers, mode of categories."""
    out: dict[str, object] = {}
    for col in FEATURES:
        if col in CATEGORICAL_FEATURES:
            mode = features[col].dropna().mode()
            out[col] = mode.sort_values().iloc[0] if len(mode) else None
        else:
            med = features[col].median()
            out[col] = float(med) if pd.notna(med) else np.nan
    return out


ABLATION_BLOCK = 4096  # customers per predict call: 13 ablated copies stay ~50k rows, whatever the population


def _at_reference(frame: pd.DataFrame, cols: list[str], ref: dict[str, object]) -> np.ndarray:
    """Rows whose ``cols`` already hold the reference values (missing counts as equal to a missing reference)."""
    same = np.ones(len(frame), dtype=bool)
    for col in cols:
        value, r = frame[col], ref[col]
        same &= (value.isna() if r is None or (isinstance(r, float) and np.isnan(r)) else value == r).to_numpy()
    return same


class Ablation(Protocol):
    """How a block of customers is ablated and scored (``group_contributions``).

    ``prepare`` turns a block of feature rows into whatever ``ablated`` edits; ``base`` scores the
    block's own rows from it; ``ablated`` returns the given rows of it with the given feature columns
    set to their reference values; ``predict`` scores a list of such pieces as one stack, in order.
    """

    def prepare(self, part: pd.DataFrame) -> Any: ...

    def base(self, prepared: Any) -> np.ndarray: ...

    def ablated(self, prepared: Any, rows: np.ndarray, cols: list[str]) -> Any: ...

    def predict(self, pieces: list[Any]) -> np.ndarray: ...


class FrameAblation:
    """Ablated copies as feature frames, scored by any ``predict(frame)``: the definition itself."""

    def __init__(self, predict: Callable[[pd.DataFrame], np.ndarray], ref: dict[str, object]):
        self._predict, self._ref = predict, ref

    def prepare(self, part: pd.DataFrame) -> pd.DataFrame:
        return part

    def base(self, prepared: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._predict(prepared), dtype=float)

    def ablated(self, prepared: pd.DataFrame, rows: np.ndarray, cols: list[str]) -> pd.DataFrame:
        ablated = prepared.iloc[rows].copy()
        for col in cols:
            ablated[col] = self._ref[col]
        return ablated

    def predict(self, pieces: list[pd.DataFrame]) -> np.ndarray:
        stacked = pd.concat(pieces, ignore_index=True)
        for col in CATEGORICAL_FEATURES:
            stacked[col] = stacked[col].astype(object).where(stacked[col].notna(), None)
        return np.asarray(self._predict(stacked))


def group_contributions(predict: Callable[[pd.DataFrame], np.ndarray], features: pd.DataFrame,
                        typical: dict[str, object] | None = None, base: np.ndarray | None = None,
                        block: int = ABLATION_BLOCK, only_above: float | None = None,
                        ablation: Callable[[dict[str, object]], Ablation] | None = None,
                        threads: int = 1) -> pd.DataFrame:
    """Customers x groups: p(actual) - p(group set to the population's typical value).

    ``predict`` maps a feature frame to churn probabilities (e.g. ``partial(ml.churn.predict, model)``) and
    must score each row on its own (every model does). ``typical``: the population's reference values when
    ``features`` is only a slice of it. ``base``: ``predict(features)`` when the caller has it already
    (without it, each block's own rows are scored on the way: ``probabilities_and_contributions``).

    Customers are ablated in blocks of ``block``, so memory stays bounded at any population (one
    stacked copy of 13 x the population was 3 GB at 100k customers). A customer whose group already holds
    the typical values is its own ablation: its contribution is exactly 0 and it is not predicted again.

    ``only_above``: customers whose base probability is at most this are not ablated and get 0 for every
    group. A probability cannot go below 0, so none of their contributions can exceed their base, hence
    none exceeds ``only_above``: for a caller that keeps only contributions above it (``top_reasons``
    with ``min_contribution``), nothing changes. At 100k customers a fifth of them are below 0.01.

    ``ablation``: builds, from the reference values, a faster way to the same predictions of the ablated
    rows (``ml.churn.tree_ablation``); default ``FrameAblation`` over ``predict``.

    ``threads``: blocks ablated at once (``ml.config.scoring_threads``); each block's numbers are the
    same on any thread, so the result does not depend on it.
    """
    return _ablate(predict, features, typical, base, block, only_above, ablation, threads)[1]


def probabilities_and_contributions(
        predict: Callable[[pd.DataFrame], np.ndarray], features: pd.DataFrame,
        typical: dict[str, object] | None = None, block: int = ABLATION_BLOCK, only_above: float | None = None,
        ablation: Callable[[dict[str, object]], Ablation] | None = None,
        threads: int = 1) -> tuple[np.ndarray, pd.DataFrame]:
    """(``predict(features)``, ``group_contributions``) in one pass over the blocks.

    Each block's own rows are scored from what the ablation prepared for it: with
    ``ml.churn.TreeAblation`` that is the preprocessed rows and every tree's leaf values, which the
    ablations need anyway, so the population is not predicted a second time (at 1M customers, the
    594k scored customers: 41.5-44.4 s this way, 49.7-51.3 s with a separate ``churn.predict``).
    """
    return _ablate(predict, features, typical, None, block, only_above, ablation, threads)


def _ablate(predict: Callable[[pd.DataFrame], np.ndarray], features: pd.DataFrame,
            typical: dict[str, object] | None, base: np.ndarray | None, block: int, only_above: float | None,
            ablation: Callable[[dict[str, object]], Ablation] | None,
            threads: int = 1) -> tuple[np.ndarray, pd.DataFrame]:
    ref = typical if typical is not None else typical_values(features)
    x = features[FEATURES]
    ablate = ablation(ref) if ablation is not None else FrameAblation(predict, ref)
    scored = np.zeros(len(x)) if base is None else np.asarray(base, dtype=float)
    out = np.zeros((len(x), len(FEATURE_GROUPS)))

    def ablate_block(start: int) -> None:
        # a block writes only its own rows of `scored` and `out`, so blocks can run on threads
        part = x.iloc[start:start + block]
        prepared, pieces, targets = None, [], []
        if base is None:
            prepared = ablate.prepare(part)
            scored[start:start + len(part)] = ablate.base(prepared)
        own = scored[start:start + len(part)]
        wanted = own > only_above if only_above is not None else np.ones(len(part), dtype=bool)
        for j, cols in enumerate(FEATURE_GROUPS.values()):
            changed = np.flatnonzero(~_at_reference(part, cols, ref) & wanted)
            if len(changed) == 0:
                continue
            prepared = ablate.prepare(part) if prepared is None else prepared
            pieces.append(ablate.ablated(prepared, changed, cols))
            targets.append((j, start + changed))
        if not pieces:
            return
        p = ablate.predict(pieces)
        offset = 0
        for j, rows in targets:
            out[rows, j] = scored[rows] - p[offset:offset + len(rows)]
            offset += len(rows)

    starts = range(0, len(x), block)
    if threads > 1:
        # One OpenMP thread per block while the blocks run side by side. Set here, around the pool:
        # the predictions' own threadpool_limits, entered and left on several threads at once, would
        # otherwise restore each other's settings and could leave the process's limit changed.
        with threadpool_limits(limits=1, user_api="openmp"), ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(ablate_block, starts))
    else:
        for start in starts:
            ablate_block(start)
    return scored, pd.DataFrame(out, index=features.index, columns=list(FEATURE_GROUPS))


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _plural(n: float, word: str) -> str:
    return f"{_n(n)} {word}{'' if round(n) == 1 else 's'}"


def describe(group: str, row: Mapping[str, object], typical: dict[str, object]) -> str | None:
    """The group's reason text from one customer's features (a Series or a dict; None when the values are unknown)."""
    g = row.get
    if group == "recency":
        if pd.isna(g("recency_days")):
            return None
        if pd.notna(g("interval_mean_days")):
            return f"no purchase for {_n(g('recency_days'))} days (usually every {_n(max(g('interval_mean_days'), 1))})"
        return f"no purchase for {_n(g('recency_days'))} days (only one purchase day in the last year)"
    if group == "trend":
        o90, prev = g("orders_90"), g("orders_180") - g("orders_90")
        if prev > 0 and o90 == 0:
            return f"no orders in last 90 days ({_n(prev)} in the previous 90)"
        if prev > 0 and o90 < prev:
            drop = 100 * (prev - o90) / prev
            return f"orders in last 90 days down {drop:.0f}% vs previous 90 ({_n(o90)} vs {_n(prev)})"
        if o90 == 0 and prev == 0:
            return "no orders in the last 180 days"
        if g("orders_30") == 0:
            return f"no orders in the last 30 days ({_n(g('orders_180'))} in the last 180)"
        rate = g("orders_30_vs_180_rate")
        if pd.notna(rate) and rate < 1:
            return f"buying pace in last 30 days {100 * (1 - rate):.0f}% below the 180-day pace"
        return f"{_plural(o90, 'order')} in last 90 days vs {_n(prev)} in previous 90"
    if group == "frequency":
        n = g("orders_365")
        only = "only " if pd.notna(typical.get("orders_365")) and n < typical["orders_365"] else ""
        return f"{only}{_plural(n, 'order')} in the last 365 days"
    if group == "monetary":
        return (f"spent ¥{_n(g('spend_90'))} in the last 90 days "
                f"(typical customer ¥{_n(typical['spend_90'])})")
    if group == "refunds":
        if g("refunds_365") > 0:
            return (f"{_plural(g('refunds_365'), 'refund')} in the last 365 days "
                    f"({100 * (g('refund_share_365') or 0):.0f}% of orders)")
        if g("cancelled_365") > 0:
            return f"{_plural(g('cancelled_365'), 'cancelled order')} in the last 365 days"
        return None
    if group == "discounts":
        if pd.isna(g("discount_share_365")):
            return None
        return f"{100 * g('discount_share_365'):.0f}% of orders bought on discount"
    if group == "breadth":
        if pd.isna(g("channels_365")):
            return None
        text = f"buys through {_plural(g('channels_365'), 'channel')}"
        if pd.notna(g("categories_365")):
            text += f" in {_plural(g('categories_365'), 'product category')}".replace("categorys", "categories")
        return text
    if group == "points":
        if pd.isna(g("points_balance")):
            return None
        return (f"{_n(g('points_balance'))} loyalty points unredeemed "
                f"({_n(g('points_redeemed_365') or 0)} redeemed in the last 365 days)")
    if group == "complaints":
        if g("open_complaints") > 0:
            late = g("open_complaint_days") * 24 > dbt_var("complaint_resolution_sla_hours", 72)
            return f"complaint open {_n(g('open_complaint_days'))} days" + (" (past the resolution target)" if late
                                                                           else "")
        if g("late_complaints_365") > 0:
            return f"{_plural(g('late_complaints_365'), 'complaint')} handled late in the last 365 days"
        if g("complaints_90") > 0:
            return f"{_plural(g('complaints_90'), 'complaint')} in the last 90 days"
        if g("complaints_365") > 0:
            return f"{_plural(g('complaints_365'), 'complaint')} in the last 365 days"
        return None
    if group == "satisfaction":
        if g("low_scores_90") > 0:
            return f"{_plural(g('low_scores_90'), 'low rating')} (1-2 of 5) in the last 90 days"
        if g("nps_detractor") == 1:
            return f"NPS detractor (latest answer {_n(g('nps_latest'))} of 10)"
        if pd.notna(g("nps_latest")):
            return f"latest NPS answer {_n(g('nps_latest'))} of 10"
        if pd.notna(g("csat_mean_365")):
            return f"average CSAT {g('csat_mean_365'):.1f} of 5"
        if pd.notna(g("review_mean_365")):
            return f"average review {g('review_mean_365'):.1f} of 5"
        return None
    if group == "feedback_topics":
        return _topic_reason(row)
    if group == "tenure":
        if pd.isna(g("tenure_days")):
            return None
        return f"relatively new customer (first seen {_n(g('tenure_days'))} days ago)"
    if group == "profile":
        parts = []
        if pd.notna(g("age_years")):
            parts.append(f"age {_n(np.floor(g('age_years')))}")
        if pd.notna(g("city_tier")):
            parts.append(f"tier-{_n(g('city_tier'))} city")
        if g("income_band") is not None and pd.notna(g("income_band")):
            parts.append(f"income {g('income_band')}")
        return "profile group with higher churn (" + ", ".join(parts) + ")" if parts else None
    raise KeyError(f"no reason template for group {group!r}")


_DIMENSIONS = ("value", "cost", "convenience", "communication")


@cache
def _topic_labels() -> dict[str, str]:
    return load_lexicon().topic_label


def _topic_reason(row: Mapping[str, object]) -> str | None:
    """'complained about delivery, unresolved (3 negative comments in the last 365 days)'."""
    topic = row.get("latest_negative_topic")
    if topic is None or (not isinstance(topic, str) and pd.isna(topic)):
        return None
    text = f"complained about {_topic_labels().get(topic, topic)}"
    if row.get("latest_negative_unresolved") == 1:
        text += ", unresolved"
    total = sum(row.get(f"negative_{d}_365") or 0 for d in _DIMENSIONS)
    if total > 1:
        text += f" ({_n(total)} negative comments in the last 365 days)"
    return text


class _FeatureRow(Mapping[str, object]):
    """One customer's features, read from the columns' arrays when ``describe`` asks for them.

    top_reasons built a dict of every feature per customer (``to_dict("records")``), most of its time
    at 1M customers, for the handful of values the chosen reasons' texts read.
    """

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, np.ndarray], i: int) -> None:
        self._columns, self._i = columns, i

    def __getitem__(self, name: str) -> object:
        return self._columns[name][self._i]

    def __iter__(self):
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def top_reasons(contributions: pd.DataFrame, features: pd.DataFrame,
                max_reasons: int = MAX_REASONS, min_contribution: float = MIN_CONTRIBUTION,
                typical: dict[str, object] | None = None) -> pd.Series:
    """Per customer, up to ``max_reasons`` reason texts (largest upward contribution first), joined by ' | '."""
    typical = typical if typical is not None else typical_values(features)
    groups = np.array(contributions.columns)
    values = contributions.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")
    columns = {name: features[name].to_numpy() for name in features.columns}
    out = []
    for i in range(len(features)):
        row = _FeatureRow(columns, i)
        texts = []
        for j in order[i]:
            if values[i, j] <= min_contribution or len(texts) == max_reasons:
                break
            text = describe(groups[j], row, typical)
            if text:
                texts.append(text)
        out.append(SEPARATOR.join(texts) if texts else NO_REASON)
    return pd.Series(out, index=features.index, name="top_reasons")
