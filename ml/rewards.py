"""Reward eligibility: who gets which reward on an as-of date (table ``ml.reward_eligibility``).

Rules are data (``ml/reward_rules.yml``). A run:

1. lists candidates per rule from ``marts.customers``, ``marts.loyalty_balances``,
   ``marts.loyalty_tier_events``, ``ml.churn_scores`` and ``ml.clv_predictions``;
2. drops every candidate without consent for the rule's channel (absolute: no row at all);
3. computes expected value = churn_probability x expected_spend_12m x uplift - cost, where a customer
   without a churn score / CLV prediction (latest scoring date <= as_of) counts as 0 probability / 0 spend;
4. keeps one reward per customer (highest expected value; ties: rule order in the file);
5. assigns a reproducible control group (sha256 of salt | customer_id | as_of -> [0, 1) < share): kept with
   ``is_control = true``, not contacted, no budget spent;
6. funds the other rows greedily by expected value (ties: customer_id) while the cost fits the budget;
   a row that does not fit is excluded, cheaper rows further down may still fit.

The table is rewritten per as_of_date (delete that date, insert, one transaction), so a rerun for the same
date leaves the same table.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from loyalist.contracts import CONSENT_CHANNELS
from ml import store
from ml.data import among, read_frame, table_columns
from ml.partitions import in_partition

log = logging.getLogger(__name__)

DEFAULT_RULES = Path(__file__).with_name("reward_rules.yml")
TABLE = "ml.reward_eligibility"
COLUMNS = ["customer_id", "as_of_date", "reward_type", "offer", "channel", "reason", "cost", "expected_value",
           "expires_on", "is_control"]
CANDIDATE_COLUMNS = ["customer_id", "reward_type", "offer", "channel", "reason", "cost", "expires_on"]

CHANNELS = set(CONSENT_CHANNELS)  # each is a consent column marts.customers.consent_<channel>
TOP_KEYS = {"budget_cny", "control_group", "uplift", "rules"}
CONTROL_KEYS = {"share", "salt"}
RULE_KEYS = {"reward_type", "offer", "channel", "cost", "expiry_days", "eligibility"}
# reward_type -> (eligibility keys, offer placeholders)
RULE_SPECS: dict[str, tuple[set[str], set[str]]] = {
    "birthday_gift": ({"birthday_within_days"}, {"birthday"}),
    "points_nudge": ({"min_points_balance", "inactive_days", "expiring_within_days"},
                     {"points_balance", "points_expire_on"}),
    "tier_upgrade": ({"upgraded_within_days"}, {"to_tier", "from_tier"}),
    "win_back": ({"min_churn_probability", "value_tiers", "min_expected_spend_12m"}, set()),
    "category_coupon": ({"lifecycle_stages"}, {"category"}),
}


@dataclass(frozen=True)
class Rule:
    reward_type: str
    offer: str
    channel: str
    cost: float
    expiry_days: int
    eligibility: dict[str, Any]


@dataclass(frozen=True)
class Rules:
    budget_cny: float
    control_share: float
    control_salt: str
    uplift: dict[str, float]
    rules: list[Rule] = field(default_factory=list)


def _check_keys(what: str, got: Any, allowed: set[str], path: Path) -> dict:
    if not isinstance(got, dict):
        raise ValueError(f"{path}: {what} must be a mapping, got {type(got).__name__}")
    unknown, missing = set(got) - allowed, allowed - set(got)
    if unknown:
        raise ValueError(f"{path}: {what} has unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")
    if missing:
        raise ValueError(f"{path}: {what} lacks keys {sorted(missing)}")
    return got


def _number(what: str, value: Any, path: Path, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{path}: {what} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{path}: {what} = {value} is outside [{low}, {high if high is not None else 'inf'}]")
    return float(value)


def load_rules(path: Path = DEFAULT_RULES) -> Rules:
    """Read and validate the rules file; any problem raises ValueError naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read reward rules ({exc})") from exc
    top = _check_keys("the file", raw, TOP_KEYS, path)
    control = _check_keys("control_group", top["control_group"], CONTROL_KEYS, path)
    share = _number("control_group.share", control["share"], path, 0.0, 1.0)
    if not isinstance(control["salt"], str) or not control["salt"]:
        raise ValueError(f"{path}: control_group.salt must be a non-empty string")
    uplift_raw = top["uplift"]
    if not isinstance(uplift_raw, dict):
        raise ValueError(f"{path}: uplift must be a mapping reward_type -> number")
    unknown_uplift = set(uplift_raw) - set(RULE_SPECS)
    if unknown_uplift:
        raise ValueError(f"{path}: uplift has unknown reward types {sorted(unknown_uplift)}")
    uplift = {k: _number(f"uplift.{k}", v, path, 0.0, 1.0) for k, v in uplift_raw.items()}
    if not isinstance(top["rules"], list) or not top["rules"]:
        raise ValueError(f"{path}: rules must be a non-empty list")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, entry in enumerate(top["rules"]):
        name = f"rules[{i}]"
        entry = _check_keys(name, entry, RULE_KEYS, path)
        kind = entry["reward_type"]
        if kind not in RULE_SPECS:
            raise ValueError(f"{path}: {name}.reward_type {kind!r} is unknown (known: {sorted(RULE_SPECS)})")
        if kind in seen:
            raise ValueError(f"{path}: {name}.reward_type {kind!r} appears twice")
        seen.add(kind)
        if kind not in uplift:
            raise ValueError(f"{path}: uplift lacks reward type {kind!r}")
        if entry["channel"] not in CHANNELS:
            raise ValueError(f"{path}: {name}.channel {entry['channel']!r} is unknown (allowed: {sorted(CHANNELS)})")
        eligibility_keys, placeholders = RULE_SPECS[kind]
        eligibility = _check_keys(f"{name}.eligibility", entry["eligibility"], eligibility_keys, path)
        if not isinstance(entry["offer"], str) or not entry["offer"].strip():
            raise ValueError(f"{path}: {name}.offer must be a non-empty text")
        try:
            entry["offer"].format(**{p: "x" for p in placeholders})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{path}: {name}.offer uses an unknown placeholder {exc} "
                             f"(allowed: {sorted(placeholders)})") from exc
        expiry = entry["expiry_days"]
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry < 0:
            raise ValueError(f"{path}: {name}.expiry_days must be a whole number >= 0")
        rules.append(Rule(kind, entry["offer"], entry["channel"], _number(f"{name}.cost", entry["cost"], path),
                          expiry, dict(eligibility)))
    return Rules(_number("budget_cny", top["budget_cny"], path), share, control["salt"], uplift, rules)


# ---------------------------------------------------------------------------------------------- inputs


def _latest_scores(con: duckdb.DuckDBPyConnection, table: str, column: str, as_of: date) -> str:
    """SQL: each customer's ``column`` from their latest scoring date <= as_of (no rows when the table is missing)."""
    if not table_columns(con, "ml", table):
        return f"select cast(null as varchar) as customer_id, cast(null as double) as {column} where false"
    return (f"select customer_id, {column} from ml.{table} where as_of_date <= date '{as_of.isoformat()}' "
            f"qualify row_number() over (partition by customer_id order by as_of_date desc) = 1")


def load_customers(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """marts.customers with the latest churn probability and expected 12-month spend (missing -> 0), by customer_id.

    One query, joined in DuckDB and read through Arrow: at 1M customers, reading the customers with
    ``.df()`` and merging the two score tables into them in pandas took 4.9 s, this 1.1-1.7 s.
    """
    # fetchall: a result left unfinished (fetchone) would keep DuckDB from starting read_frame's query
    snapshot = con.execute("select min(as_of_date), max(as_of_date) from marts.customers").fetchall()[0]
    if snapshot[0] is not None and (snapshot[0] != as_of or snapshot[1] != as_of):
        raise ValueError(f"marts.customers is built as of {snapshot[0]}..{snapshot[1]}, not {as_of}: "
                         "run the dbt build for that date first")
    out = read_frame(con, f"""
        select customers.customer_id, customers.birthday, customers.consent_email, customers.consent_sms,
               customers.consent_ads, customers.value_tier, customers.lifecycle_stage, customers.preferred_category,
               churn.churn_probability, clv.expected_spend_12m
        from marts.customers as customers
        left join ({_latest_scores(con, "churn_scores", "churn_probability", as_of)}) as churn
            on churn.customer_id = customers.customer_id
        left join ({_latest_scores(con, "clv_predictions", "expected_spend_12m", as_of)}) as clv
            on clv.customer_id = customers.customer_id
        order by customers.customer_id""")
    out["churn_probability"] = out["churn_probability"].fillna(0.0).astype(float)
    out["expected_spend_12m"] = out["expected_spend_12m"].fillna(0.0).astype(float)
    for channel in CHANNELS:
        out[f"consent_{channel}"] = out[f"consent_{channel}"].fillna(False).astype(bool)
    return out


# ---------------------------------------------------------------------------------------------- rules


def _candidates(rule: Rule, as_of: date, frame: pd.DataFrame, reasons: list[str], offers: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": frame["customer_id"].astype(str).to_numpy(),
        "reward_type": rule.reward_type, "offer": offers, "channel": rule.channel, "reason": reasons,
        "cost": rule.cost, "expires_on": as_of + timedelta(days=rule.expiry_days),
    }, columns=CANDIDATE_COLUMNS)


def days_to_birthday(birthday: str | None, as_of: date) -> int | None:
    """Days from as_of to the next 'MM-DD' birthday (0 = today); 29 February counts as 28 February off leap years."""
    if not isinstance(birthday, str) or len(birthday) != 5:
        return None
    month, day = int(birthday[:2]), int(birthday[3:])
    for year in (as_of.year, as_of.year + 1):
        try:
            nxt = date(year, month, day)
        except ValueError:  # 29 February in a non-leap year
            nxt = date(year, month, day - 1)
        if nxt >= as_of:
            return (nxt - as_of).days
    return None


def birthday_gift(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame, rule: Rule, as_of: date) -> pd.DataFrame:
    within = int(rule.eligibility["birthday_within_days"])
    # once per distinct birthday (at most 366 of them), not once per customer
    days = customers["birthday"].map({b: days_to_birthday(b, as_of) for b in customers["birthday"].dropna().unique()})
    hit = customers[days.notna() & (days <= within)]
    d = days[hit.index].astype(int)
    reasons = [f"birthday {b} is today" if n == 0 else f"birthday {b} is in {n} days"
               for b, n in zip(hit["birthday"], d, strict=True)]
    return _candidates(rule, as_of, hit, reasons, [rule.offer.format(birthday=b) for b in hit["birthday"]])


def _dates(values: pd.Series) -> list[date | None]:
    """A date column as Python dates (None where missing), converted as a whole, not row by row."""
    return [None if pd.isna(d) else d for d in pd.to_datetime(values).dt.date]


def points_nudge(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame, rule: Rule, as_of: date) -> pd.DataFrame:
    p = rule.eligibility
    inactive_since = as_of - timedelta(days=int(p["inactive_days"]))
    expiring_by = as_of + timedelta(days=int(p["expiring_within_days"]))
    hit = con.execute(
        "select customer_id, points_balance, last_activity_date, points_expire_on from marts.loyalty_balances "
        "where points_balance >= ? and (last_activity_date <= ? or points_expire_on <= ?) order by customer_id",
        [p["min_points_balance"], inactive_since, expiring_by]).df()
    hit = hit[among(hit["customer_id"], pd.Index(customers["customer_id"]))]
    reasons, offers = [], []
    for balance, last, expire_on in zip(hit["points_balance"].tolist(), _dates(hit["last_activity_date"]),
                                        _dates(hit["points_expire_on"]), strict=True):
        why = [f"{balance} points unused"]
        if last is not None and last <= inactive_since:
            why.append(f"no earn or redeem since {last} ({(as_of - last).days} days)")
        if expire_on is not None and expire_on <= expiring_by:
            why.append(f"points expire on {expire_on}")
        reasons.append(", ".join(why))
        offers.append(rule.offer.format(points_balance=balance, points_expire_on=expire_on or "-"))
    return _candidates(rule, as_of, hit, reasons, offers)


def tier_upgrade(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame, rule: Rule, as_of: date) -> pd.DataFrame:
    since = as_of - timedelta(days=int(rule.eligibility["upgraded_within_days"]))
    hit = con.execute(
        "select customer_id, event_date, from_tier, to_tier from marts.loyalty_tier_events "
        "where event_type = 'upgrade' and event_date > ? and event_date <= ? "
        "qualify row_number() over (partition by customer_id order by event_date desc) = 1 order by customer_id",
        [since, as_of]).df()
    hit = hit[among(hit["customer_id"], pd.Index(customers["customer_id"]))]
    reasons = [f"upgraded from {r.from_tier} to {r.to_tier} on {pd.Timestamp(r.event_date).date()}"
               for r in hit.itertuples()]
    offers = [rule.offer.format(to_tier=r.to_tier, from_tier=r.from_tier) for r in hit.itertuples()]
    return _candidates(rule, as_of, hit, reasons, offers)


def win_back(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame, rule: Rule, as_of: date) -> pd.DataFrame:
    p = rule.eligibility
    at_risk = customers["churn_probability"] >= float(p["min_churn_probability"])
    by_tier = customers["value_tier"].isin(list(p["value_tiers"]))
    by_clv = customers["expected_spend_12m"] >= float(p["min_expected_spend_12m"])
    hit = customers[at_risk & (by_tier | by_clv)]
    reasons = []
    for r in hit.itertuples():
        why = f"churn probability {r.churn_probability:.2f}"
        why += f", {r.value_tier} value tier" if r.value_tier in p["value_tiers"] else ""
        why += f", expected 12-month spend {r.expected_spend_12m:.0f} CNY" if r.expected_spend_12m >= float(
            p["min_expected_spend_12m"]) else ""
        reasons.append(why)
    return _candidates(rule, as_of, hit, reasons, [rule.offer] * len(hit))


def category_coupon(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame, rule: Rule,
                    as_of: date) -> pd.DataFrame:
    stages = list(rule.eligibility["lifecycle_stages"])
    hit = customers[customers["preferred_category"].notna() & customers["lifecycle_stage"].isin(stages)]
    # half the customers at 1M: the texts as column operations, each offer formatted once per category
    reasons = (hit["lifecycle_stage"] + " customer, buys mostly " + hit["preferred_category"]).tolist()
    categories = hit["preferred_category"]
    offers = categories.map({c: rule.offer.format(category=c) for c in categories.unique()}).tolist()
    return _candidates(rule, as_of, hit, reasons, offers)


RULE_FUNCTIONS: dict[str, Callable[[duckdb.DuckDBPyConnection, pd.DataFrame, Rule, date], pd.DataFrame]] = {
    "birthday_gift": birthday_gift,
    "points_nudge": points_nudge,
    "tier_upgrade": tier_upgrade,
    "win_back": win_back,
    "category_coupon": category_coupon,
}


# ---------------------------------------------------------------------------------------------- selection


def _customer_rows(candidates: pd.DataFrame, customers: pd.DataFrame) -> np.ndarray:
    """Each candidate's row in ``customers`` (-1 for an unknown customer); customer ids must be unique.

    One hash lookup instead of a pandas merge: at 1M customers, the consent filter's merge (with the
    check that customers are unique) took 3.4 s for 750k candidates.
    """
    index = pd.Index(customers["customer_id"])
    if not index.is_unique:
        repeated = index[index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"marts.customers holds customer_id(s) {repeated} more than once: "
                         "one row per customer expected")
    return index.get_indexer(candidates["customer_id"])


def _at(values: pd.Series, rows: np.ndarray, missing: Any) -> np.ndarray:
    """``values`` (missing ones as ``missing``) at positions ``rows``, ``missing`` where a row is -1."""
    filled = values.fillna(missing).to_numpy()
    return np.where(rows >= 0, filled[np.maximum(rows, 0)] if len(filled) else missing, missing)


def consent_filter(candidates: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Keep only rows whose customer consented to the row's channel (no consent / unknown customer -> dropped)."""
    if candidates.empty:
        return candidates
    rows = _customer_rows(candidates, customers)
    channels = candidates["channel"].to_numpy()
    ok = np.zeros(len(candidates), dtype=bool)
    for channel in pd.unique(channels):
        mine = channels == channel
        ok[mine] = _at(customers[f"consent_{channel}"], rows[mine], False).astype(bool)
    return candidates[ok]


def add_expected_value(candidates: pd.DataFrame, customers: pd.DataFrame, uplift: dict[str, float]) -> pd.DataFrame:
    """expected_value = churn_probability x expected_spend_12m x uplift(reward_type) - cost."""
    rows = _customer_rows(candidates, customers)
    p = pd.Series(_at(customers["churn_probability"], rows, 0.0).astype(float))
    spend = pd.Series(_at(customers["expected_spend_12m"], rows, 0.0).astype(float))
    out = candidates.reset_index(drop=True)
    out["expected_value"] = p * spend * out["reward_type"].map(uplift).astype(float) - out["cost"]
    return out


def best_per_customer(candidates: pd.DataFrame, rule_order: list[str]) -> pd.DataFrame:
    """One row per customer: highest expected value, ties broken by the rule's position in the file."""
    rank = candidates["reward_type"].map({k: i for i, k in enumerate(rule_order)})
    ordered = candidates.assign(_rank=rank).sort_values(["customer_id", "expected_value", "_rank"],
                                                        ascending=[True, False, True], kind="mergesort")
    return ordered.drop_duplicates("customer_id").drop(columns="_rank").reset_index(drop=True)


def control_fraction(salt: str, customer_id: str, as_of: date) -> float:
    """Deterministic number in [0, 1) from sha256(salt | customer_id | as_of)."""
    digest = hashlib.sha256(f"{salt}|{customer_id}|{as_of.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_control(rows: pd.DataFrame, share: float, salt: str, as_of: date) -> pd.DataFrame:
    flags = [control_fraction(salt, c, as_of) < share for c in rows["customer_id"]]
    return rows.assign(is_control=pd.Series(flags, index=rows.index, dtype=bool))


def apply_budget(rows: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Control rows stay; others are funded by expected value (desc, then customer_id) while cost fits."""
    treated = rows[~rows["is_control"]].sort_values(["expected_value", "customer_id"], ascending=[False, True],
                                                    kind="mergesort")
    keep, left = [], float(budget)
    for idx, cost in zip(treated.index, treated["cost"], strict=True):
        if cost <= left + 1e-9:
            keep.append(idx)
            left -= cost
    funded = rows.loc[keep]
    return pd.concat([funded, rows[rows["is_control"]]]).sort_values("customer_id").reset_index(drop=True)


def write_eligibility(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, as_of: date) -> int:
    """Replace the as_of_date slice of ml.reward_eligibility with ``frame`` in one transaction."""
    return store.replace_slice(con, "reward_eligibility", frame[COLUMNS], "as_of_date = ?", [as_of])


def reward_candidates(con: duckdb.DuckDBPyConnection, as_of: date, partition: int = 0, partitions: int = 1,
                      rules_path: Path = DEFAULT_RULES) -> pd.DataFrame:
    """Steps 1-5 for the customers of one hash partition: one best reward per customer, control flagged.

    Everything here depends on the customer alone, so partitions can run apart (read-only); the budget
    (step 6) is global and runs once over all partitions' rows in ``allocate``.
    """
    rules = load_rules(rules_path)
    customers = load_customers(con, as_of)
    customers = customers[in_partition(customers["customer_id"], partition, partitions)].reset_index(drop=True)
    parts = [RULE_FUNCTIONS[r.reward_type](con, customers, r, as_of) for r in rules.rules]
    candidates = pd.concat([p for p in parts if not p.empty] or [pd.DataFrame(columns=CANDIDATE_COLUMNS)],
                           ignore_index=True)
    candidates = consent_filter(candidates, customers)
    candidates = add_expected_value(candidates, customers, rules.uplift)
    best = best_per_customer(candidates, [r.reward_type for r in rules.rules])
    return assign_control(best, rules.control_share, rules.control_salt, as_of)


def allocate(con: duckdb.DuckDBPyConnection, as_of: date, best: pd.DataFrame,
             rules_path: Path = DEFAULT_RULES) -> dict:
    """Step 6 over all customers' best rows, then write ml.reward_eligibility for ``as_of``; return a summary.

    Summary keys: as_of_date, rows (written, control included), by_reward_type (contacted rows per reward type),
    control_count, control_by_reward_type, total_cost (contacted rows only), budget_cny, excluded_by_budget.
    """
    rules = load_rules(rules_path)
    # The same rows in the same order whatever the partitioning: the greedy budget then funds the same rows.
    best = best.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    final = apply_budget(best, rules.budget_cny)
    final["as_of_date"] = as_of
    final["cost"] = final["cost"].astype(float)
    final["expected_value"] = final["expected_value"].astype(float)
    final["is_control"] = final["is_control"].astype(bool)
    write_eligibility(con, final, as_of)
    treated = final[~final["is_control"]]
    summary = {
        "as_of_date": as_of,
        "rows": len(final),
        "by_reward_type": {k: int(v) for k, v in treated["reward_type"].value_counts().sort_index().items()},
        "control_count": int(final["is_control"].sum()),
        "control_by_reward_type": {k: int(v) for k, v in
                                   final.loc[final["is_control"], "reward_type"].value_counts().sort_index().items()},
        "total_cost": float(treated["cost"].sum()),
        "budget_cny": rules.budget_cny,
        "excluded_by_budget": int((~best["is_control"]).sum() - len(treated)),
    }
    log.info("%s: %s", TABLE, summary)
    return summary


def build_reward_eligibility(con: duckdb.DuckDBPyConnection, as_of: date, rules_path: Path = DEFAULT_RULES) -> dict:
    """Compute and write ml.reward_eligibility for ``as_of`` in one go (one partition); see ``allocate``."""
    return allocate(con, as_of, reward_candidates(con, as_of, rules_path=rules_path), rules_path)
