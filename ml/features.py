"""Point-in-time features and churn labels, computed from ``ml.data.Inputs`` as of a cutoff.

Every feature at cutoff ``c`` reads only rows whose event time is before ``c 00:00 UTC`` (``t < C``):
transactions by ``ordered_at``, feedback by ``created_at`` (a complaint is open at ``c`` when it was
created before ``c`` and not resolved before ``c`` by its ``resolved_at`` — never by its current
``status``), profiles of accounts created before ``c``. Labels read the window ``[c, c + N)`` only.

All work is vectorised per cutoff (pandas group-bys); a cutoff costs a fraction of a second for
100k transactions.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ml.config import WINDOWS, dbt_var
from ml.data import Inputs, among, completed_sales, days, is_completed_sale

# Feature groups: the unit of the reasons (ml.reasons) and of the docs. Order matters only for ties.
FEATURE_GROUPS: dict[str, list[str]] = {
    # gaps belong with recency: "64 days without a purchase" means little without the usual gap
    "recency": ["recency_days", "recency_vs_interval", "recency_x_rate",
                "interval_mean_days", "interval_std_days", "interval_cv"],
    "trend": ["orders_90_vs_prev_90", "orders_90_change", "orders_30_vs_180_rate", "rate_60_vs_before"],
    "frequency": [f"orders_{w}" for w in WINDOWS],
    "monetary": [f"spend_{w}" for w in WINDOWS] + ["avg_order_value_365"],
    "refunds": ["refunds_365", "refund_share_365", "cancelled_365"],
    "discounts": ["discount_share_365", "discount_rate_365"],
    "breadth": ["channels_365", "categories_365"],
    "points": ["points_earned_365", "points_redeemed_365", "points_balance"],
    "complaints": ["complaints_90", "complaints_365", "open_complaints", "open_complaint_days", "late_complaints_365"],
    "satisfaction": ["nps_latest", "nps_detractor", "csat_latest", "csat_mean_365", "review_mean_365", "low_scores_90"],
    # what the customer's negative texts (last 365 days) were about, by 4C dimension (ml.feedback_text)
    "feedback_topics": ["negative_value_365", "negative_cost_365", "negative_convenience_365",
                        "negative_communication_365", "latest_negative_topic", "latest_negative_unresolved"],
    "tenure": ["tenure_days", "days_since_first_order"],
    "profile": ["age_years", "city_tier", "gender", "income_band"],
}
CATEGORICAL_FEATURES = ["gender", "income_band", "latest_negative_topic"]
FEATURES = [f for group in FEATURE_GROUPS.values() for f in group]
NUMERIC_FEATURES = [f for f in FEATURES if f not in CATEGORICAL_FEATURES]
FEATURE_TO_GROUP = {f: g for g, fs in FEATURE_GROUPS.items() for f in fs}


class EmptyPopulationError(ValueError):
    """No customer is alive enough to score at the cutoff."""


def population(inputs: Inputs, cutoff: date, population_days: int) -> pd.Index:
    """Customers with a completed sale in the ``population_days`` before the cutoff (sorted ids)."""
    c = days(cutoff)
    tx = inputs.transactions
    recent = is_completed_sale(tx) & (tx["t"] < c) & (tx["t"] >= c - population_days)
    return pd.Index(np.sort(tx.loc[recent, "customer_id"].unique()), name="customer_id")


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    num, den = num.astype(float), den.astype(float)
    return (num / den.where(den != 0)).astype(float)


def _count(frame: pd.DataFrame, ids: pd.Index) -> pd.Series:
    return frame.groupby("customer_id").size().reindex(ids, fill_value=0).astype(float)


def _rows(frame: pd.DataFrame, where: pd.Series, *columns: str) -> pd.DataFrame:
    """The ``where`` rows of ``frame``, with customer_id and ``columns`` only.

    The features filter the same few frames some 20 times per block; copying every column of each
    filtered frame was about 40 % of the features' time (pandas' take, at 1M customers).
    """
    return frame.loc[where, ["customer_id", *columns]]


def _sum(frame: pd.DataFrame, column: str, ids: pd.Index) -> pd.Series:
    return frame.groupby("customer_id")[column].sum(min_count=1).reindex(ids).astype(float)


def compute_features(inputs: Inputs, cutoff: date, population_days: int) -> pd.DataFrame:
    """One row per customer of ``population(inputs, cutoff, population_days)`` (index customer_id).

    Columns FEATURES. Raises EmptyPopulationError when nobody bought in the ``population_days``
    before the cutoff.
    """
    coded = inputs.coded  # the same features, grouped by integer codes instead of the text ids
    f = _features(coded.inputs, cutoff, population_days)
    f.index = coded.ids(f.index)
    return f


def _features(inputs: Inputs, cutoff: date, population_days: int) -> pd.DataFrame:
    ids = population(inputs, cutoff, population_days)
    if ids.empty:
        raise EmptyPopulationError(
            f"no customer has a completed sale in the {population_days} days before {cutoff}: nothing to score")
    c = days(cutoff)
    tx = inputs.transactions
    tx = tx[(tx["t"] < c) & among(tx["customer_id"], ids)]
    completed = tx[tx["status"] == "completed"]
    sales = _rows(completed, completed["transaction_type"] == "sale",
                  "t", "net_amount", "discount_amount", "gross_amount", "channel")
    refunds = _rows(completed, completed["transaction_type"] == "refund", "t")
    f = pd.DataFrame(index=ids)

    # recency, frequency, monetary
    last = sales.groupby("customer_id")["t"].max().reindex(ids)
    first = sales.groupby("customer_id")["t"].min().reindex(ids)
    f["recency_days"] = c - last
    for w in WINDOWS:
        f[f"orders_{w}"] = _count(_rows(sales, sales["t"] >= c - w), ids)
        f[f"spend_{w}"] = _sum(_rows(completed, completed["t"] >= c - w, "net_amount"), "net_amount", ids).fillna(0.0)
    sales_365 = sales[sales["t"] >= c - 365]  # every column of `sales` is used below
    f["avg_order_value_365"] = _ratio(_sum(sales_365, "net_amount", ids), f["orders_365"])

    # trend: last 90 days vs the 90 before; last 30 days' rate vs the 180-day rate
    prev_90 = f["orders_180"] - f["orders_90"]
    f["orders_90_vs_prev_90"] = _ratio(f["orders_90"], prev_90)
    f["orders_90_change"] = f["orders_90"] - prev_90
    f["orders_30_vs_180_rate"] = _ratio(f["orders_30"] / 30.0, f["orders_180"] / 180.0)
    # the last 60 days' rate vs the rate before them (within the last 365 days of observed history)
    observed = np.minimum(365.0, (c - first).clip(lower=1.0))
    orders_60 = _count(_rows(sales, sales["t"] >= c - 60), ids)
    before = (observed - 60.0).where(observed > 90.0)
    f["rate_60_vs_before"] = _ratio(orders_60 / 60.0, (f["orders_365"] - orders_60) / before)
    # days since last purchase in units of the customer's average gap (orders per observed day)
    f["recency_x_rate"] = f["recency_days"] * f["orders_365"] / observed

    # regularity: gaps between distinct purchase days within the last 365 days
    purchase_days = sales_365[["customer_id"]].assign(day=np.floor(sales_365["t"])).drop_duplicates()
    gaps = purchase_days.groupby("customer_id")["day"].diff().dropna()
    gap_stats = gaps.groupby(purchase_days.loc[gaps.index, "customer_id"]).agg(["mean", "std"]).reindex(ids)
    f["interval_mean_days"] = gap_stats["mean"]
    f["interval_std_days"] = gap_stats["std"]
    f["interval_cv"] = _ratio(gap_stats["std"], gap_stats["mean"])
    f["recency_vs_interval"] = _ratio(f["recency_days"], f["interval_mean_days"])

    # refunds and cancellations
    f["refunds_365"] = _count(_rows(refunds, refunds["t"] >= c - 365), ids)
    f["refund_share_365"] = _ratio(f["refunds_365"], f["orders_365"])
    cancelled = _rows(tx, (tx["status"] == "cancelled") & (tx["t"] >= c - 365))
    f["cancelled_365"] = _count(cancelled, ids)

    # discount dependence (NaN when the log carries no discount information)
    has_discount = sales_365["discount_amount"].notna()
    disc = sales_365[has_discount]
    f["discount_share_365"] = _ratio(_count(_rows(disc, disc["discount_amount"] > 0), ids), _count(disc, ids))
    gross = disc["gross_amount"].fillna(disc["net_amount"] + disc["discount_amount"])
    f["discount_rate_365"] = _ratio(_sum(disc, "discount_amount", ids),
                                    _sum(disc.assign(gross=gross), "gross", ids))

    # breadth: channels and product categories bought in the last 365 days
    f["channels_365"] = (sales_365.dropna(subset=["channel"]).groupby("customer_id")["channel"].nunique()
                         .reindex(ids).astype(float))
    if sales_365["channel"].isna().all():
        f["channels_365"] = np.nan
    if inputs.order_categories is not None:
        cats = inputs.order_categories
        # the rows are completed sales on their UTC day: a day >= c - 365 is a sale at or after c - 365
        cats = cats[(cats["t"] >= c - 365) & (cats["t"] < c)]
        f["categories_365"] = (cats.groupby("customer_id")["category"].nunique()
                               .reindex(ids, fill_value=0).astype(float))
    else:
        f["categories_365"] = np.nan

    # loyalty points
    points_365 = _rows(completed, completed["t"] >= c - 365, "points_earned", "points_redeemed")
    f["points_earned_365"] = _sum(points_365, "points_earned", ids)
    f["points_redeemed_365"] = _sum(points_365, "points_redeemed", ids)
    f["points_balance"] = (_sum(completed, "points_earned", ids) - _sum(completed, "points_redeemed", ids))

    _feedback_features(f, inputs.feedback, ids, c)

    # tenure: first time the person was seen (account creation or first event) before the cutoff
    first_seen = first
    if inputs.accounts is not None:
        acc = inputs.accounts[(inputs.accounts["t_first_seen"] < c)]
        first_seen = np.fmin(acc.groupby("customer_id")["t_first_seen"].min().reindex(ids), first)
    f["tenure_days"] = c - first_seen
    f["days_since_first_order"] = c - first

    _profile_features(f, inputs.profiles, ids, c)
    f = f[FEATURES]
    for col in NUMERIC_FEATURES:
        f[col] = f[col].astype(float)
    for col in CATEGORICAL_FEATURES:
        f[col] = f[col].astype(object).where(f[col].notna(), None)
    return f


def _feedback_features(f: pd.DataFrame, feedback: pd.DataFrame | None, ids: pd.Index, c: float) -> None:
    cols = FEATURE_GROUPS["complaints"] + FEATURE_GROUPS["satisfaction"] + FEATURE_GROUPS["feedback_topics"]
    if feedback is None:
        for col in cols:
            f[col] = np.nan
        f["latest_negative_topic"] = None
        return
    fb = feedback[(feedback["t_created"] < c) & among(feedback["customer_id"], ids)]
    nps = fb[(fb["feedback_type"] == "nps") & fb["score"].notna()].sort_values(["customer_id", "t_created"],
                                                                               kind="stable")
    f["nps_latest"] = nps.groupby("customer_id")["score"].last().reindex(ids)
    # threshold from dbt (satisfaction marts): the one place it lives
    f["nps_detractor"] = (f["nps_latest"] <= dbt_var("nps_detractor_max_score", 6)).astype(float).where(
        f["nps_latest"].notna())
    csat = fb[(fb["feedback_type"] == "csat") & fb["score"].notna()].sort_values(["customer_id", "t_created"],
                                                                                 kind="stable")
    f["csat_latest"] = csat.groupby("customer_id")["score"].last().reindex(ids)
    last_year = fb[fb["t_created"] >= c - 365]
    for kind in ("csat", "review"):
        scored = last_year[(last_year["feedback_type"] == kind) & last_year["score"].notna()]
        f[f"{kind}_mean_365"] = scored.groupby("customer_id")["score"].mean().reindex(ids)
    recent = fb[fb["t_created"] >= c - 90]
    low = recent[recent["feedback_type"].isin(["csat", "review"]) & (recent["score"] <= 2)]
    f["low_scores_90"] = _count(low, ids)

    complaints = fb[fb["feedback_type"] == "complaint"]
    f["complaints_90"] = _count(complaints[complaints["t_created"] >= c - 90], ids)
    f["complaints_365"] = _count(complaints[complaints["t_created"] >= c - 365], ids)
    resolved_t = _resolved_time(complaints)
    is_open = ~(resolved_t < c)
    open_ = complaints[is_open]
    f["open_complaints"] = _count(open_, ids)
    f["open_complaint_days"] = (c - open_.groupby("customer_id")["t_created"].min()).reindex(ids).fillna(0.0)
    late = _late(complaints, resolved_t, c) & (complaints["t_created"] >= c - 365)
    f["late_complaints_365"] = _count(complaints[late], ids)
    _topic_features(f, last_year, is_open.reindex(last_year.index, fill_value=False), ids)


def _resolved_time(complaints: pd.DataFrame) -> pd.Series:
    """When each complaint was resolved, by timestamps only (never by its current status).

    A 'resolved' status without resolved_at counts as resolved at updated_at (the latest version's
    time, never earlier than the real resolution).
    """
    resolved_t = complaints["t_resolved"].copy()
    no_time = resolved_t.isna() & (complaints["status"] == "resolved")
    resolved_t[no_time] = complaints.loc[no_time, "t_updated"]
    return resolved_t


def _late(complaints: pd.DataFrame, resolved_t: pd.Series, c: float) -> pd.Series:
    """Complaints that breached a service level (dbt vars complaint_*_sla_hours) as known at the cutoff."""
    first_sla = dbt_var("complaint_first_response_sla_hours", 24) / 24.0
    resolve_sla = dbt_var("complaint_resolution_sla_hours", 72) / 24.0
    created = complaints["t_created"]
    responded = complaints.get("t_first_response", pd.Series(np.nan, index=complaints.index))
    responded = responded.where(responded < c)  # a response after the cutoff is not known yet
    resolved = resolved_t.where(resolved_t < c)
    late_response = (responded.fillna(c) - created) > first_sla
    late_resolution = (resolved.fillna(c) - created) > resolve_sla
    return late_response | late_resolution


def _topic_features(f: pd.DataFrame, last_year: pd.DataFrame, is_open: pd.Series, ids: pd.Index) -> None:
    """Negative texts per 4C dimension, the latest negative text's topic and whether it is an open complaint."""
    from ml.feedback_text import default_classifier

    dims = {"value": "negative_value_365", "cost": "negative_cost_365", "convenience": "negative_convenience_365",
            "communication": "negative_communication_365"}
    has_text = last_year.get("text", pd.Series(None, index=last_year.index, dtype=object)).notna()
    texts = last_year[has_text]
    if texts.empty:
        for col in dims.values():
            f[col] = 0.0 if "text" in last_year.columns else np.nan
        f["latest_negative_topic"] = None
        f["latest_negative_unresolved"] = 0.0 if "text" in last_year.columns else np.nan
        return
    classifier = default_classifier()
    # Classify each distinct (text, language) once and give every row its text's result by code: a
    # block of the 1M sample holds ~100k texts of a few dozen distinct ones, and per-row Python
    # (a classify call, lists of topics, an explode) took 7.2 s of the score step's 28 s of features.
    languages = texts.get("language", pd.Series(None, index=texts.index, dtype=object))
    text_codes, _ = pd.factorize(texts["text"])
    language_codes, language_values = pd.factorize(languages, use_na_sentinel=False)
    _, first_row, row_code = np.unique(text_codes * len(language_values) + language_codes,
                                       return_index=True, return_inverse=True)
    results = classifier.classify_many(texts["text"].iloc[first_row], languages.iloc[first_row])
    is_negative = np.array([r.sentiment == "negative" for r in results], dtype=bool)[row_code]
    negative = texts.assign(topic=np.array([r.topics[0] for r in results], dtype=object)[row_code],
                            open_complaint=is_open.reindex(texts.index).fillna(False).to_numpy()
                            & (texts["feedback_type"] == "complaint").to_numpy())[is_negative]
    for dim, col in dims.items():
        # a negative text counts once per dimension any of its topics belongs to
        in_dimension = np.array([any(classifier.dimension(t) == dim for t in r.topics) for r in results], dtype=bool)
        f[col] = _count(negative[in_dimension[row_code][is_negative]], ids)
    latest = negative.sort_values(["customer_id", "t_created"], kind="stable").groupby("customer_id").last()
    f["latest_negative_topic"] = latest["topic"].reindex(ids).astype(object).where(
        latest["topic"].reindex(ids).notna(), None)
    f["latest_negative_unresolved"] = latest["open_complaint"].astype(float).reindex(ids).fillna(0.0)


def _profile_features(f: pd.DataFrame, profiles: pd.DataFrame | None, ids: pd.Index, c: float) -> None:
    if profiles is None:
        f["age_years"] = np.nan
        f["city_tier"] = np.nan
        f["gender"] = None
        f["income_band"] = None
        return
    known = profiles[(profiles["t_created"] < c) & among(profiles["customer_id"], ids)]
    latest = known.sort_values(["customer_id", "t_updated"], kind="stable").groupby("customer_id").last()
    latest = latest.reindex(ids)
    f["age_years"] = (c - latest["t_birth"]) / 365.25
    f["city_tier"] = latest["city_tier"]
    f["gender"] = latest["gender"]
    f["income_band"] = latest["income_band"]


def churn_labels(inputs: Inputs, cutoff: date, churn_days: int, customers: pd.Index) -> pd.Series:
    """1 if the customer has no completed sale in [cutoff, cutoff + churn_days), else 0."""
    c = days(cutoff)
    sales = completed_sales(inputs.transactions)
    window = sales[(sales["t"] >= c) & (sales["t"] < c + churn_days)]
    bought = customers.isin(window["customer_id"].unique())
    return pd.Series((~bought).astype(int), index=customers, name="churned")


def future_activity(inputs: Inputs, cutoff: date, horizon_days: int, customers: pd.Index) -> pd.DataFrame:
    """Completed orders and net spend (sales minus refunds) per customer in [cutoff, cutoff + horizon)."""
    c = days(cutoff)
    tx = inputs.transactions
    window = tx[(tx["t"] >= c) & (tx["t"] < c + horizon_days) & (tx["status"] == "completed")]
    out = pd.DataFrame(index=customers)
    out["orders"] = _count(window[window["transaction_type"] == "sale"], customers)
    out["spend"] = _sum(window, "net_amount", customers).fillna(0.0)
    return out


def labelled_frame(inputs: Inputs, cutoffs: list[date] | tuple[date, ...], churn_days: int) -> pd.DataFrame:
    """Features and churn labels stacked over cutoffs: columns customer_id, cutoff, FEATURES, churned.

    The population at each cutoff: customers with a completed sale in the ``churn_days`` before it.
    """
    parts = []
    for cutoff in cutoffs:
        feats = compute_features(inputs, cutoff, churn_days)
        feats["churned"] = churn_labels(inputs, cutoff, churn_days, feats.index)
        parts.append(feats.reset_index().assign(cutoff=cutoff))
    frame = pd.concat(parts, ignore_index=True)
    return frame[["customer_id", "cutoff", *FEATURES, "churned"]]
