"""Reward eligibility (ml/rewards.py) on tiny hand-made DuckDB tables."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from ml.rewards import DEFAULT_RULES, build_reward_eligibility, control_fraction, days_to_birthday, load_rules

AS_OF = date(2025, 3, 31)


def customer(cid: str, **kw) -> dict:
    row = {"customer_id": cid, "as_of_date": AS_OF, "birthday": None, "consent_email": True, "consent_sms": True,
           "consent_ads": True, "value_tier": None, "lifecycle_stage": "churned", "preferred_category": None}
    row.update(kw)
    return row


def make_db(path: Path, customers: list[dict], balances: list[dict] = (), tier_events: list[dict] = (),
            churn: list[dict] = (), clv: list[dict] = ()) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create schema ml")
    con.execute("create table marts.customers (customer_id varchar, as_of_date date, birthday varchar, "
                "consent_email boolean, consent_sms boolean, consent_ads boolean, value_tier varchar, "
                "lifecycle_stage varchar, preferred_category varchar)")
    con.execute("create table marts.loyalty_balances (customer_id varchar, points_balance integer, "
                "last_activity_date date, points_expire_on date)")
    con.execute("create table marts.loyalty_tier_events (customer_id varchar, event_date date, event_type varchar, "
                "from_tier varchar, to_tier varchar)")
    con.execute("create table ml.churn_scores (customer_id varchar, as_of_date date, churn_probability double)")
    con.execute("create table ml.clv_predictions (customer_id varchar, as_of_date date, expected_spend_12m double)")
    for table, rows in [("marts.customers", customers), ("marts.loyalty_balances", balances),
                        ("marts.loyalty_tier_events", tier_events), ("ml.churn_scores", churn),
                        ("ml.clv_predictions", clv)]:
        if rows:
            frame = pd.DataFrame(list(rows))
            con.register("_rows", frame)
            con.execute(f"insert into {table} by name select * from _rows")
            con.unregister("_rows")
    return con


def write_rules(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    raw["control_group"]["share"] = 0.0
    for key, value in changes.items():
        raw[key] = value
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def rows(con) -> pd.DataFrame:
    return con.execute("select * from ml.reward_eligibility order by customer_id").df()


def only_rule(tmp_path: Path, reward_type: str, **overrides) -> Path:
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    raw["control_group"]["share"] = 0.0
    raw["rules"] = [r for r in raw["rules"] if r["reward_type"] == reward_type]
    raw["rules"][0]["eligibility"].update(overrides)
    path = tmp_path / f"{reward_type}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ------------------------------------------------------------------------------------------- rules


def test_default_rules_load():
    rules = load_rules()
    assert {r.reward_type for r in rules.rules} == {"birthday_gift", "points_nudge", "tier_upgrade", "win_back",
                                                     "category_coupon"}
    assert 0 < rules.control_share < 1


def test_birthday_gift(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [
        customer("A", birthday="04-03"),      # in 3 days
        customer("B", birthday="03-31"),      # today
        customer("C", birthday="04-20"),      # too far
        customer("D", birthday="03-30"),      # yesterday -> next year
        customer("E"),                        # unknown
    ])
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "birthday_gift", birthday_within_days=7))
    out = rows(con)
    assert list(out["customer_id"]) == ["A", "B"]
    assert set(out["reward_type"]) == {"birthday_gift"}
    assert out.loc[0, "reason"] == "birthday 04-03 is in 3 days"
    assert out.loc[0, "channel"] == "sms"
    assert out.loc[0, "expires_on"].date() == AS_OF + timedelta(days=30)


def test_days_to_birthday_wraps_year_and_leap_day():
    assert days_to_birthday("01-02", date(2025, 12, 30)) == 3
    assert days_to_birthday("02-29", date(2025, 2, 27)) == 1
    assert days_to_birthday(None, AS_OF) is None


def test_points_nudge(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [customer(c) for c in "ABCD"], balances=[
        {"customer_id": "A", "points_balance": 800, "last_activity_date": AS_OF - timedelta(days=120),
         "points_expire_on": AS_OF + timedelta(days=245)},                       # inactive
        {"customer_id": "B", "points_balance": 600, "last_activity_date": AS_OF - timedelta(days=10),
         "points_expire_on": AS_OF + timedelta(days=5)},                         # expiring soon
        {"customer_id": "C", "points_balance": 100, "last_activity_date": AS_OF - timedelta(days=300),
         "points_expire_on": AS_OF + timedelta(days=5)},                         # balance too small
        {"customer_id": "D", "points_balance": 900, "last_activity_date": AS_OF - timedelta(days=10),
         "points_expire_on": AS_OF + timedelta(days=355)},                       # active, not expiring
    ])
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "points_nudge"))
    out = rows(con)
    assert list(out["customer_id"]) == ["A", "B"]
    assert "no earn or redeem since" in out.loc[0, "reason"]
    assert "points expire on" in out.loc[1, "reason"]
    assert "800 points" in out.loc[0, "offer"]


def test_tier_upgrade(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [customer(c) for c in "ABCD"], tier_events=[
        {"customer_id": "A", "event_date": AS_OF - timedelta(days=3), "event_type": "upgrade", "from_tier": "silver",
         "to_tier": "gold"},
        {"customer_id": "B", "event_date": AS_OF - timedelta(days=40), "event_type": "upgrade", "from_tier": "bronze",
         "to_tier": "silver"},                                                   # too old
        {"customer_id": "C", "event_date": AS_OF - timedelta(days=2), "event_type": "downgrade", "from_tier": "gold",
         "to_tier": "silver"},                                                   # not an upgrade
        {"customer_id": "D", "event_date": AS_OF + timedelta(days=1), "event_type": "upgrade", "from_tier": "gold",
         "to_tier": "platinum"},                                                 # after as_of
    ])
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "tier_upgrade"))
    out = rows(con)
    assert list(out["customer_id"]) == ["A"]
    assert out.loc[0, "reason"] == "upgraded from silver to gold on 2025-03-28"
    assert "gold" in out.loc[0, "offer"]


def test_win_back(tmp_path):
    con = make_db(
        tmp_path / "w.duckdb",
        [customer("A", value_tier="high"), customer("B", value_tier="low"), customer("C", value_tier="low"),
         customer("D", value_tier="high"), customer("E", value_tier="mid")],
        churn=[{"customer_id": c, "as_of_date": AS_OF, "churn_probability": p}
               for c, p in [("A", 0.8), ("B", 0.9), ("C", 0.7), ("D", 0.3)]],   # E: no score -> 0
        clv=[{"customer_id": c, "as_of_date": AS_OF, "expected_spend_12m": s}
             for c, s in [("A", 500.0), ("B", 200.0), ("C", 3000.0), ("D", 9000.0), ("E", 9000.0)]],
    )
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "win_back"))
    out = rows(con).set_index("customer_id")
    assert sorted(out.index) == ["A", "C"]   # B low value, D not at risk, E unscored
    assert out.loc["A", "expected_value"] == pytest.approx(0.8 * 500 * 0.08 - 50)
    assert out.loc["C", "expected_value"] == pytest.approx(0.7 * 3000 * 0.08 - 50)
    assert "high value tier" in out.loc["A", "reason"]


def test_category_coupon(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [
        customer("A", preferred_category="shoes", lifecycle_stage="active"),
        customer("B", preferred_category="shoes", lifecycle_stage="churned"),
        customer("C", preferred_category=None, lifecycle_stage="active"),
    ])
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "category_coupon"))
    out = rows(con)
    assert list(out["customer_id"]) == ["A"]
    assert out.loc[0, "offer"] == "20 CNY off shoes - picked for you."
    assert out.loc[0, "channel"] == "ads"
    # missing scores -> expected value is minus the cost
    assert out.loc[0, "expected_value"] == pytest.approx(-20.0)


# ------------------------------------------------------------------------------------------- selection


def test_consent_is_absolute(tmp_path):
    high = {"value_tier": "high", "lifecycle_stage": "at_risk"}
    con = make_db(
        tmp_path / "w.duckdb",
        [customer("RICH", consent_sms=False, **high), customer("OK", **high)],
        churn=[{"customer_id": c, "as_of_date": AS_OF, "churn_probability": 0.99} for c in ["RICH", "OK"]],
        clv=[{"customer_id": "RICH", "as_of_date": AS_OF, "expected_spend_12m": 1e6},
             {"customer_id": "OK", "as_of_date": AS_OF, "expected_spend_12m": 1e3}],
    )
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "win_back"))
    assert list(rows(con)["customer_id"]) == ["OK"]


def test_one_reward_per_customer_highest_value(tmp_path):
    con = make_db(
        tmp_path / "w.duckdb",
        [customer("A", birthday="04-01", value_tier="high", preferred_category="tea", lifecycle_stage="active")],
        churn=[{"customer_id": "A", "as_of_date": AS_OF, "churn_probability": 0.9}],
        clv=[{"customer_id": "A", "as_of_date": AS_OF, "expected_spend_12m": 5000.0}],
    )
    build_reward_eligibility(con, AS_OF, write_rules(tmp_path))
    out = rows(con)
    assert len(out) == 1
    assert out.loc[0, "reward_type"] == "win_back"   # 0.9*5000*0.08-50 = 310 beats the others


def test_budget_respected_and_greedy(tmp_path):
    ids = ["A", "B", "C", "D"]
    spend = {"A": 1000.0, "B": 4000.0, "C": 2000.0, "D": 3000.0}
    con = make_db(
        tmp_path / "w.duckdb", [customer(c, value_tier="high") for c in ids],
        churn=[{"customer_id": c, "as_of_date": AS_OF, "churn_probability": 0.9} for c in ids],
        clv=[{"customer_id": c, "as_of_date": AS_OF, "expected_spend_12m": s} for c, s in spend.items()],
    )
    path = write_rules(tmp_path, budget_cny=120)   # room for two 50 CNY win-backs, not three
    summary = build_reward_eligibility(con, AS_OF, path)
    out = rows(con)
    assert sorted(out["customer_id"]) == ["B", "D"]   # the two highest expected values
    assert summary["total_cost"] == 100.0 <= 120
    assert summary["excluded_by_budget"] == 2
    assert summary["by_reward_type"] == {"win_back": 2}


def test_budget_skips_rows_that_do_not_fit_but_funds_cheaper_ones(tmp_path):
    con = make_db(
        tmp_path / "w.duckdb",
        [customer("W", value_tier="high"), customer("W2", value_tier="high"),
         customer("P", lifecycle_stage="active", preferred_category="tea")],
        churn=[{"customer_id": c, "as_of_date": AS_OF, "churn_probability": 0.9} for c in ["W", "W2", "P"]],
        clv=[{"customer_id": c, "as_of_date": AS_OF, "expected_spend_12m": s}
             for c, s in [("W", 5000.0), ("W2", 4000.0), ("P", 10.0)]],
    )
    summary = build_reward_eligibility(con, AS_OF, write_rules(tmp_path, budget_cny=75))
    out = rows(con)
    assert sorted(out["customer_id"]) == ["P", "W"]   # W2 (50) does not fit after W; P's 20 coupon does
    assert summary["total_cost"] == 70.0


def test_control_group_reproducible_and_share(tmp_path):
    n = 1000
    con = make_db(tmp_path / "w.duckdb", [customer(f"C{i:04d}", lifecycle_stage="active", preferred_category="tea")
                                          for i in range(n)])
    path = write_rules(tmp_path, control_group={"share": 0.1, "salt": "test-salt"}, budget_cny=10**9)
    summary = build_reward_eligibility(con, AS_OF, path)
    first = rows(con)
    assert len(first) == n
    assert 70 <= summary["control_count"] <= 130
    assert summary["total_cost"] == pytest.approx(20.0 * (n - summary["control_count"]))
    build_reward_eligibility(con, AS_OF, path)
    pd.testing.assert_frame_equal(first, rows(con))
    flagged = set(first.loc[first["is_control"], "customer_id"])
    assert flagged == {c for c in first["customer_id"] if control_fraction("test-salt", c, AS_OF) < 0.1}


def test_control_rows_do_not_use_budget(tmp_path):
    ids = [f"C{i:03d}" for i in range(200)]
    con = make_db(tmp_path / "w.duckdb", [customer(c, lifecycle_stage="active", preferred_category="tea")
                                          for c in ids])
    path = write_rules(tmp_path, control_group={"share": 0.5, "salt": "s"}, budget_cny=200)
    summary = build_reward_eligibility(con, AS_OF, path)
    out = rows(con)
    assert summary["total_cost"] == 200.0
    assert (~out["is_control"]).sum() == 10
    assert out["is_control"].sum() == summary["control_count"] > 50


def test_rerun_same_date_is_identical_and_other_dates_untouched(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [customer("A", birthday="04-02"), customer("B", lifecycle_stage="active",
                                                                                      preferred_category="tea")])
    path = write_rules(tmp_path)
    build_reward_eligibility(con, AS_OF, path)
    con.execute("insert into ml.reward_eligibility values ('OLD', date '2025-01-01', 'win_back', 'o', 'sms', 'r', "
                "50, 1, date '2025-01-22', false)")
    first = rows(con)
    build_reward_eligibility(con, AS_OF, path)
    pd.testing.assert_frame_equal(first, rows(con))
    assert len(first) == 3


def test_stale_customers_snapshot_is_refused(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [customer("A")])
    with pytest.raises(ValueError, match="not 2025-04-01"):
        build_reward_eligibility(con, AS_OF + timedelta(days=1), write_rules(tmp_path))


def test_empty_result_writes_empty_slice(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [customer("A")])
    summary = build_reward_eligibility(con, AS_OF, write_rules(tmp_path))
    assert summary["rows"] == 0 and summary["total_cost"] == 0.0
    assert rows(con).empty


# ------------------------------------------------------------------------------------------- invalid rules


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.update(budget=1), "unknown keys \\['budget'\\]"),
    (lambda r: r["rules"][0].update(channel="wechat"), "channel 'wechat' is unknown"),
    (lambda r: r["rules"][0].update(colour="red"), "unknown keys \\['colour'\\]"),
    (lambda r: r["rules"][0]["eligibility"].update(days=3), "unknown keys \\['days'\\]"),
    (lambda r: r["rules"][0].update(reward_type="free_car"), "reward_type 'free_car' is unknown"),
    (lambda r: r["control_group"].update(share=1.5), "control_group.share"),
    (lambda r: r["rules"][0].update(offer="Hi {name}"), "unknown placeholder"),
    (lambda r: r["rules"][0].pop("cost"), "lacks keys \\['cost'\\]"),
])
def test_invalid_rules_raise_clear_error(tmp_path, mutate, message):
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    mutate(raw)
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message):
        load_rules(path)


def test_unparseable_rules_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("rules: [unclosed")
    with pytest.raises(ValueError, match="cannot read reward rules"):
        load_rules(path)


def test_candidates_need_a_known_consenting_customer_and_missing_scores_count_as_zero():
    from ml.rewards import add_expected_value, consent_filter

    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C"], "consent_email": [True, None, False], "consent_sms": [True, True, True],
        "consent_ads": [False, False, False], "churn_probability": [0.5, None, 0.1],
        "expected_spend_12m": [100.0, 50.0, None]})
    candidates = pd.DataFrame({
        "customer_id": ["A", "B", "C", "Z", "A"], "channel": ["email", "email", "email", "email", "sms"],
        "reward_type": ["win_back"] * 4 + ["birthday_gift"], "cost": [10.0] * 5})

    kept = consent_filter(candidates, customers)
    # B's consent is unknown, C said no, Z is not a customer
    assert list(zip(kept["customer_id"], kept["channel"], strict=True)) == [("A", "email"), ("A", "sms")]

    valued = add_expected_value(candidates, customers, {"win_back": 0.1, "birthday_gift": 0.2})
    # churn probability x expected spend x uplift - cost; an unknown probability or spend counts as 0
    assert valued["expected_value"].tolist() == [0.5 * 100.0 * 0.1 - 10, -10.0, -10.0, -10.0, 0.5 * 100.0 * 0.2 - 10]
    assert valued["customer_id"].tolist() == ["A", "B", "C", "Z", "A"]

    with pytest.raises(ValueError, match=r"customer_id\(s\) \['A'\] more than once"):
        consent_filter(candidates, pd.concat([customers, customers.iloc[:1]]))


def test_birthdays_that_are_not_month_and_day_give_no_gift(tmp_path):
    con = make_db(tmp_path / "w.duckdb", [customer("OK", birthday="04-02"), customer("LONG", birthday="2000-04-02"),
                                          customer("NONE"), customer("EMPTY", birthday=""),
                                          customer("SAME", birthday="04-02")])
    build_reward_eligibility(con, AS_OF, only_rule(tmp_path, "birthday_gift"))
    out = rows(con)
    assert out["customer_id"].tolist() == ["OK", "SAME"]
    assert out["reason"].tolist() == ["birthday 04-02 is in 2 days"] * 2
