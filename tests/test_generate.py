"""The sample generator: deterministic, and realistic enough to give the models real work."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pytest

from loyalist.contracts import ENTITIES
from loyalist.generate import GeneratorConfig, generate

from .conftest import TINY


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.csv")):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tiny_landing_master, tmp_path):
    generate(TINY, tmp_path / "again")
    assert _digest(tmp_path / "again") == _digest(tiny_landing_master)
    generate(GeneratorConfig(customers=400, days=60, seed=8, end_date=TINY.end_date), tmp_path / "other")
    assert _digest(tmp_path / "other") != _digest(tiny_landing_master)


def test_writes_daily_partitions_with_contract_headers(tiny_landing_master):
    days = sorted(p.name for p in (tiny_landing_master / "orders").iterdir())
    assert days[0] == f"dt={TINY.start_date}" and days[-1] == f"dt={TINY.end_date}"
    for entity in ENTITIES:
        files = list((tiny_landing_master / entity).rglob("*.csv"))
        assert files, entity
        header = files[0].read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",")
        assert header == ENTITIES[entity].column_names


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A larger sample (3k customers, one year), queried with DuckDB straight from the CSVs."""
    out = tmp_path_factory.mktemp("sample")
    generate(GeneratorConfig(customers=3000, days=365, seed=3, end_date=date(2025, 12, 31), dirty_rate=0), out)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for entity in ("orders", "customers", "feedback"):
        con.execute(f"create view {entity} as select * from read_csv('{out}/{entity}/*/*.csv', "
                    "hive_partitioning = false, auto_detect = true)")
    return con


def test_purchase_rates_are_heterogeneous_and_some_people_never_buy(sample):
    per_account = sample.execute("""
        select c.source_system, c.source_customer_id, count(o.order_id) as n
        from (select distinct source_system, source_customer_id from customers) c
        left join orders o using (source_system, source_customer_id) group by all""").df()
    assert (per_account.n == 0).mean() > 0.1  # prospects and unused accounts
    buyers = per_account[per_account.n > 0].n
    assert buyers.std() / buyers.mean() > 0.8  # over-dispersed, not Poisson with one rate


def test_weekly_pattern_and_singles_day_peak(sample):
    by_dow = sample.execute("""select isodow(ordered_at + interval 8 hour) >= 6 as weekend, count(*) / count(distinct
        cast(ordered_at + interval 8 hour as date)) as per_day from orders group by 1 order by 1""").fetchall()
    assert by_dow[1][1] > 1.2 * by_dow[0][1]
    nov11, median_day = sample.execute("""
        with d as (select cast(ordered_at as date) as day, count(*) n from orders group by 1)
        select (select n from d where day = date '2025-11-11'), median(n) from d""").fetchone()
    assert nov11 > 2.5 * median_day


def test_same_person_appears_in_several_systems_with_differently_written_phones(sample):
    multi = sample.execute("""
        select right(regexp_replace(phone, '[^0-9]', '', 'g'), 11) as mobile,
               count(distinct source_system) as systems, count(distinct phone) as spellings
        from customers where phone is not null group by 1 having count(distinct source_system) > 1""").df()
    assert len(multi) > 300
    assert (multi.spellings > 1).mean() > 0.3
    noisy_email = sample.execute("select count(*) from customers where email <> lower(trim(email))").fetchone()[0]
    assert noisy_email > 50


def test_complainers_drop_out_more_often(sample):
    """Churn shows in behaviour: among accounts that bought equally often in May-June, those who
    complained then are less likely to buy again in August-September (frequency-stratified)."""
    strata = sample.execute("""
        with recent as (select source_system, source_customer_id, least(count(*), 6) as orders_band
                        from orders where ordered_at >= '2025-05-01' and ordered_at < '2025-07-01' group by all),
             complained as (select distinct source_system, source_customer_id from feedback
                            where feedback_type = 'complaint'
                              and created_at >= '2025-05-01' and created_at < '2025-07-01'),
             later as (select distinct source_system, source_customer_id from orders
                       where ordered_at >= '2025-08-01' and ordered_at < '2025-10-01')
        select orders_band, c.source_customer_id is not null as complained, count(*) as accounts,
               avg((later.source_customer_id is not null)::int) as still_buying
        from recent left join complained c using (source_system, source_customer_id)
        left join later using (source_system, source_customer_id) group by all""").df()
    wide = strata.pivot(index="orders_band", columns="complained", values=["accounts", "still_buying"]).dropna()
    weights = wide[("accounts", True)]
    gap = ((wide[("still_buying", True)] - wide[("still_buying", False)]) * weights).sum() / weights.sum()
    assert gap < -0.05


def test_feedback_is_bilingual_and_complaints_get_resolved(sample):
    langs = dict(sample.execute("select language, count(*) from feedback group by 1").fetchall())
    assert langs["zh"] > langs["en"] > 0
    resolved = sample.execute("""select count(*) from feedback where feedback_type = 'complaint'
        and status = 'resolved' and resolved_at >= created_at""").fetchone()[0]
    assert resolved > 10


def test_some_resolved_complaints_are_reopened_and_some_resolved_again(sample):
    """A reopen is a resolved version followed by a later open version of the same feedback_id."""
    reopened, resolved_again = sample.execute("""
        with v as (select feedback_id, status, updated_at,
                          lag(status) over (partition by feedback_id order by updated_at) as previous,
                          row_number() over (partition by feedback_id order by updated_at desc) as newest
                   from feedback where feedback_type = 'complaint'),
        reopened as (select distinct feedback_id from v where status = 'open' and previous = 'resolved')
        select count(*), count(*) filter (where feedback_id in (select feedback_id from v
                                                                 where newest = 1 and status = 'resolved'))
        from reopened""").fetchone()
    complaints = sample.execute("select count(distinct feedback_id) from feedback "
                                "where feedback_type = 'complaint'").fetchone()[0]
    assert 0.01 * complaints < reopened < 0.15 * complaints
    assert 0 < resolved_again < reopened


def test_chunked_parallel_generation_equals_sequential_and_ids_stay_unique(tmp_path):
    cfg = GeneratorConfig(customers=250, days=20, seed=9, end_date=date(2025, 1, 20), chunk_size=100)
    generate(cfg, tmp_path / "seq", workers=1)
    generate(cfg, tmp_path / "par", workers=2)
    assert _digest(tmp_path / "seq") == _digest(tmp_path / "par")
    assert len(list((tmp_path / "seq" / "orders").rglob("orders-002.csv"))) > 0  # three chunks written
    con = duckdb.connect()
    for entity, key in (("orders", "order_id"), ("feedback", "feedback_id || updated_at"),
                        ("customers", "source_system || source_customer_id || updated_at")):
        total, distinct = con.execute(f"select count(*), count(distinct {key}) from read_csv("
                                      f"'{tmp_path}/seq/{entity}/*/*.csv', hive_partitioning = false)").fetchone()
        assert total == distinct, entity
    phones = con.execute(f"""select count(distinct right(regexp_replace(phone, '[^0-9]', '', 'g'), 11)),
        count(distinct substr(source_customer_id, 2)) from read_csv('{tmp_path}/seq/customers/*/*.csv',
        hive_partitioning = false) where source_system = 'pos' and phone is not null""").fetchone()
    assert phones[0] == phones[1]  # one mobile per person, none shared across chunks
