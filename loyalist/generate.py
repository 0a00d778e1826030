"""Seeded, vectorised sample-data generator for a Chinese omni-channel retailer.

The generative model is documented in docs/sample_data.md; keep the two in step. In short:

* Persons arrive over time (a stock of existing members plus seasonal acquisition); some never buy
  (prospects). Each person has demographics, a latent satisfaction, a category affinity, a discount
  sensitivity and accounts in one to four source systems (POS card, web, app, WeChat) whose keys
  overlap (phone in several formats, email with case/whitespace noise).
* Buying follows a BG/NBD-like process: a heterogeneous purchase rate (Gamma) while "alive", a
  heterogeneous lifetime (exponential with a Gamma-distributed hazard), modulated by yearly
  seasonality, shopping festivals and the day of the week. In the last weeks before dropping out a
  person buys less and complains more, so churn is predictable from behaviour but not trivially.
  Some dropped-out persons come back (reactivation).
* Orders carry line items (category affinity plus co-purchase pairs), channel, payment method,
  discount, loyalty points; some are cancelled or later refunded.
* Feedback: NPS surveys, post-order CSAT, reviews and complaints (open -> resolved updates), in
  Chinese and English, whose tone follows the person's satisfaction.
* Consent per channel at signup, with opt-outs over time.

Output: one CSV per entity per UTC day at ``<out>/<entity>/dt=YYYY-MM-DD/<entity>.csv``.
Everything is drawn from one ``numpy.random.Generator(seed)``: the same arguments give the same bytes.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from loyalist.contracts import ENTITIES

log = logging.getLogger(__name__)

EPOCH = np.datetime64("1970-01-01T00:00:00", "s")

CITIES = [  # (city, tier, weight)
    ("上海", 1, 9), ("北京", 1, 8), ("广州", 1, 6), ("深圳", 1, 6),
    ("成都", 2, 5), ("杭州", 2, 5), ("武汉", 2, 4), ("南京", 2, 4), ("西安", 2, 3), ("重庆", 2, 4),
    ("苏州", 2, 3), ("长沙", 2, 3), ("青岛", 3, 2), ("厦门", 3, 2), ("昆明", 3, 2), ("合肥", 3, 2),
    ("洛阳", 4, 1), ("桂林", 4, 1), ("绵阳", 4, 1), ("赣州", 5, 1), ("曲靖", 5, 1),
]
CATEGORIES = ["skincare", "makeup", "fragrance", "haircare", "bodycare", "mens", "baby", "wellness"]
# Co-purchase structure: buying the key makes the value likely to be in the same basket.
COMPLEMENTS = {"skincare": "makeup", "makeup": "skincare", "haircare": "bodycare", "bodycare": "haircare",
               "fragrance": "bodycare", "mens": "haircare", "baby": "bodycare", "wellness": "skincare"}
CATEGORY_PRICE = {"skincare": 260, "makeup": 180, "fragrance": 520, "haircare": 90, "bodycare": 70,
                  "mens": 150, "baby": 120, "wellness": 200}
BRANDS = ["Lumière", "雪域", "Aurora", "本草堂", "Nordic Pure", "Kiyomi", "花间集", "Verde"]
INCOME_BANDS = ["<5k", "5k-10k", "10k-20k", "20k-40k", ">40k"]
EDUCATION = ["high_school", "college", "bachelor", "master_plus"]
SIGNUP_CHANNELS = ["store", "web", "app", "wechat"]
SYSTEM_OF_CHANNEL = {"store": "pos", "web": "web", "app": "app", "wechat": "wechat"}
PAYMENTS = ["wechat_pay", "alipay", "unionpay_card", "credit_card", "cash"]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "杰", "娟", "涛", "明", "超", "秀英", "晓燕", "俊"]
PINYIN = ["wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "yang", "yan", "jie", "juan", "tao", "ming"]

# Feedback text bank: (topic, sentiment, zh, en). Topics map to the 4C model in the marts.
TEXTS = [
    ("delivery", -1, "物流太慢了，等了一个星期才到", "Delivery was far too slow, took a week"),
    ("delivery", -1, "快递包装破损，产品漏了", "The parcel arrived damaged and the bottle leaked"),
    ("delivery", 1, "发货很快，第二天就收到了", "Fast shipping, arrived the next day"),
    ("price", -1, "价格太贵了，比别的平台贵不少", "Too expensive compared with other shops"),
    ("price", -1, "优惠券用不了，感觉被骗", "The coupon would not apply, feels like a trick"),
    ("price", 1, "活动价很划算，会再买", "Great value during the promotion, will buy again"),
    ("product_quality", -1, "用了过敏，质量有问题", "Gave me a rash, quality problem"),
    ("product_quality", -1, "和描述不符，效果很差", "Not as described, poor results"),
    ("product_quality", 1, "质量很好，用着很舒服", "Excellent quality, feels great on the skin"),
    ("service_attitude", -1, "客服态度很差，不理人", "Customer service was rude and ignored me"),
    ("service_attitude", 1, "店员很热情，介绍得很专业", "Staff were friendly and really knowledgeable"),
    ("payment", -1, "付款失败了好几次", "Payment failed several times"),
    ("app_website", -1, "小程序老是闪退，下单很麻烦", "The app keeps crashing at checkout"),
    ("app_website", 1, "小程序很好用，下单方便", "The app is easy to use, ordering is simple"),
    ("returns", -1, "退货流程太复杂，退款很慢", "Returns are complicated and the refund is slow"),
    ("returns", 1, "退换货很顺利，点赞", "Return went smoothly, thumbs up"),
]


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 20_000
    days: int = 365
    end_date: date = date(2025, 12, 31)  # last day with data (inclusive)
    seed: int = 42
    # Persons are generated in independent chunks (own random stream each) so memory stays bounded
    # and chunks can run in parallel; the output is the same whatever the number of workers.
    chunk_size: int = 50_000
    prospect_share: float = 0.15
    orders_per_year: float = 60.0  # mean purchase rate of a live customer (Gamma-spread)
    dirty_rate: float = 0.0005  # share of order rows deliberately broken, to exercise quarantine

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)


# --------------------------------------------------------------------------------------------------
# Calendar: the day weight w(d) drives every arrival process (orders, signups).
# --------------------------------------------------------------------------------------------------
def day_weights(start: date, days: int) -> np.ndarray:
    """Relative activity per day: yearly wave, weekend lift, shopping festivals, Spring Festival dip."""
    dates = np.arange(np.datetime64(start), np.datetime64(start) + days)
    doy = (dates - dates.astype("datetime64[Y]")).astype(int)
    weekday = (dates.astype(int) + 3) % 7  # 0 = Monday
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    w = 1.0 + 0.12 * np.sin(2 * np.pi * (doy - 80) / 365.25)
    w *= np.select([weekday >= 5, weekday == 4], [1.35, 1.1], 0.92)
    festivals = {(11, 11): 4.0, (11, 10): 1.8, (12, 12): 2.2, (6, 18): 2.5, (3, 8): 1.6, (5, 20): 1.4}
    for (m, d), lift in festivals.items():
        w *= np.where((month == m) & (dom == d), lift, 1.0)
    w *= np.where((month == 2) & (dom <= 12), 0.6, 1.0)  # Spring Festival holiday lull (approx.)
    w *= np.where((month == 1) & (dom >= 15), 1.25, 1.0)  # pre-festival gift buying
    return w / w.mean()


def _sample_days(rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling of event times in [lo, hi) (fractional days) under day weights ``cum``."""
    def cum_at(t: np.ndarray) -> np.ndarray:
        i = np.clip(np.floor(t).astype(int), 0, len(cum) - 2)
        return cum[i] + (cum[i + 1] - cum[i]) * (t - i)

    target = cum_at(lo) + rng.random(len(lo)) * (cum_at(hi) - cum_at(lo))
    i = np.clip(np.searchsorted(cum, target, side="right") - 1, 0, len(cum) - 2)
    frac = (target - cum[i]) / np.maximum(cum[i + 1] - cum[i], 1e-12)
    return i + frac


def _weighted_mass(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    def cum_at(t: np.ndarray) -> np.ndarray:
        i = np.clip(np.floor(t).astype(int), 0, len(cum) - 2)
        return cum[i] + (cum[i + 1] - cum[i]) * (t - i)
    return cum_at(hi) - cum_at(lo)


# --------------------------------------------------------------------------------------------------
# Noise: one person, many spellings.
# --------------------------------------------------------------------------------------------------
def format_phones(rng: np.random.Generator, mobiles: np.ndarray) -> np.ndarray:
    """Write 11-digit mainland mobiles in the formats real systems hold."""
    s = mobiles.astype(str)
    a = (mobiles // 10**8).astype(str)
    b = np.char.zfill(((mobiles // 10**4) % 10**4).astype(str), 4)
    c = np.char.zfill((mobiles % 10**4).astype(str), 4)
    styles = [
        s,
        np.char.add("+86 ", np.char.add(a, np.char.add(" ", np.char.add(b, np.char.add(" ", c))))),
        np.char.add("0086-", np.char.add(a, np.char.add("-", np.char.add(b, np.char.add("-", c))))),
        np.char.add("+86", s),
        np.char.add(a, np.char.add("-", np.char.add(b, np.char.add("-", c)))),
        np.char.add("86 ", s),
    ]
    pick = rng.choice(len(styles), size=len(s), p=[0.45, 0.15, 0.1, 0.15, 0.1, 0.05])
    return np.choose(pick, styles)


def noisy_emails(rng: np.random.Generator, emails: np.ndarray) -> np.ndarray:
    out = emails.copy()
    up = rng.random(len(out)) < 0.15
    out[up] = np.char.upper(out[up])
    cap = (rng.random(len(out)) < 0.15) & ~up
    out[cap] = np.char.capitalize(out[cap])
    pad = rng.random(len(out)) < 0.08
    out[pad] = np.char.add(" ", np.char.add(out[pad], "  "))
    return out


# --------------------------------------------------------------------------------------------------
# Persons and their accounts.
# --------------------------------------------------------------------------------------------------
@dataclass
class Persons:
    n: int
    signup_t: np.ndarray  # fractional day index (negative = before the window)
    is_prospect: np.ndarray
    rate: np.ndarray  # orders per day while alive
    satisfaction: np.ndarray
    discount_affinity: np.ndarray
    category_pref: np.ndarray  # (n, n_categories)
    has_system: np.ndarray  # (n, 4) bool: pos, web, app, wechat
    channel_pref: np.ndarray  # (n, 4)
    city_idx: np.ndarray
    signup_channel: np.ndarray
    member_since: np.ndarray  # datetime64[s] account creation time
    offset: int = 0  # global index of this chunk's first person (ids are global, arrays local)
    chunk: int = 0


def make_persons(rng: np.random.Generator, cfg: GeneratorConfig, cum: np.ndarray, n: int, offset: int = 0,
                 chunk: int = 0) -> Persons:
    days = cfg.days
    existing = rng.random(n) < 0.35
    signup_t = np.where(
        existing,
        -rng.uniform(1, 3 * 365, n),
        _sample_days(rng, cum, np.zeros(n), np.full(n, float(days))),
    )
    rate = rng.gamma(shape=0.9, scale=cfg.orders_per_year / 365 / 0.9, size=n)
    satisfaction = rng.normal(0, 1, n)
    discount_affinity = rng.beta(2, 5, n)
    category_pref = rng.dirichlet(np.full(len(CATEGORIES), 0.4), size=n)
    signup_channel = rng.choice(4, size=n, p=[0.35, 0.2, 0.2, 0.25])
    # Accounts: the signup system always, others with channel-dependent probabilities.
    has_system = rng.random((n, 4)) < np.array([0.35, 0.3, 0.35, 0.45])
    has_system[np.arange(n), signup_channel] = True
    channel_pref = rng.dirichlet(np.full(4, 0.7), size=n) * has_system
    channel_pref[np.arange(n), signup_channel] += 0.5
    channel_pref /= channel_pref.sum(axis=1, keepdims=True)
    city_w = np.array([c[2] for c in CITIES], dtype=float)
    city_idx = rng.choice(len(CITIES), size=n, p=city_w / city_w.sum())
    start_s = np.datetime64(cfg.start_date).astype("datetime64[s]")
    member_since = start_s + (signup_t * 86400).astype("timedelta64[s]")
    return Persons(n, signup_t, rng.random(n) < cfg.prospect_share, rate, satisfaction, discount_affinity,
                   category_pref, has_system, channel_pref, city_idx, signup_channel, member_since, offset, chunk)


def account_ids(system: str, person_idx: np.ndarray) -> np.ndarray:
    """Source-system account id of a person (deterministic, looks like each system's own ids)."""
    prefix = {"pos": "C", "web": "W", "app": "A", "wechat": "o_"}[system]
    scrambled = (person_idx.astype(np.int64) * 7_919 + {"pos": 11, "web": 23, "app": 37, "wechat": 51}[system])
    return np.char.add(prefix, np.char.zfill(scrambled.astype(str), 10))


def customer_profiles(rng: np.random.Generator, cfg: GeneratorConfig, p: Persons) -> pa.Table:
    n = p.n
    idx = np.arange(n)
    gidx = p.offset + idx
    # 13x..19x mobiles, unique across chunks: a multiplicative permutation of the global index.
    mobiles = 13_000_000_000 + (gidx.astype(np.int64) * 2_654_435_761 + cfg.seed) % 6_999_999_999
    gender = rng.choice(np.array(["F", "M", "U"]), size=n, p=[0.6, 0.38, 0.02])
    age_days = (rng.gamma(6, 5.5, n) + 16).clip(17, 80) * 365.25
    start_s = np.datetime64(cfg.start_date)
    birth = (start_s - age_days.astype("timedelta64[D]")).astype("datetime64[D]")
    tier = np.array([c[1] for c in CITIES])[p.city_idx]
    income = np.clip(np.round(rng.normal(3.2 - 0.35 * tier, 1.0)), 0, 4).astype(int)
    edu = np.clip(np.round(rng.normal(2.2 - 0.2 * tier + 0.2 * income, 0.8)), 0, 3).astype(int)
    surname = rng.choice(np.array(SURNAMES), n)
    given = rng.choice(np.array(GIVEN), n)
    pinyin = rng.choice(np.array(PINYIN), n)
    email_base = np.char.add(np.char.add(pinyin, "."), np.char.add(gidx.astype(str), "@"))
    emails = np.char.add(email_base, rng.choice(np.array(["qq.com", "163.com", "gmail.com", "126.com"]), n))
    # 10% of people use a second email address in one of their systems: only the phone links those.
    alt_email = np.char.add(np.char.add(pinyin, np.char.add("_", gidx.astype(str))), "@outlook.com")

    tables = []
    systems = ["pos", "web", "app", "wechat"]
    for s_i, system in enumerate(systems):
        rows = idx[p.has_system[:, s_i]]
        k = len(rows)
        if k == 0:
            continue
        # Accounts other than the signup one are opened some time after the signup.
        lag_days = np.where(p.signup_channel[rows] == s_i, 0.0, rng.exponential(120, k))
        created = p.member_since[rows] + (lag_days * 86400).astype("timedelta64[s]")
        email = noisy_emails(rng, np.where(rng.random(k) < 0.1, alt_email[rows], emails[rows]))
        has_email = rng.random(k) < {"pos": 0.35, "web": 1.0, "app": 0.6, "wechat": 0.1}[system]
        has_phone = rng.random(k) < {"pos": 0.97, "web": 0.55, "app": 0.95, "wechat": 0.7}[system]
        phone = format_phones(rng, mobiles[rows])
        has_bday = rng.random(k) < {"pos": 0.8, "web": 0.4, "app": 0.7, "wechat": 0.3}[system]
        # Other systems often store the membership card / WeChat id the person bound to them.
        binds_card = (system == "pos") | (p.has_system[rows, 0] & (rng.random(k) < {
            "pos": 1.0, "web": 0.1, "app": 0.5, "wechat": 0.4}[system]))
        binds_wechat = (system == "wechat") | (p.has_system[rows, 3] & (rng.random(k) < {
            "pos": 0.2, "web": 0.0, "app": 0.3, "wechat": 1.0}[system]))
        tables.append(pa.table({
            "source_system": pa.array([system] * k),
            "source_customer_id": account_ids(system, p.offset + rows),
            "email": pa.array(email, mask=~has_email),
            "phone": pa.array(phone, mask=~has_phone),
            "loyalty_card_no": pa.array(account_ids("pos", p.offset + rows), mask=~binds_card),
            "wechat_id": pa.array(np.char.add("ou_", account_ids("wechat", p.offset + rows)), mask=~binds_wechat),
            "full_name": np.char.add(surname[rows], given[rows]),
            "birth_date": pa.array(birth[rows], mask=~has_bday),
            "gender": gender[rows],
            "city": np.array([c[0] for c in CITIES])[p.city_idx[rows]],
            "city_tier": tier[rows],
            "income_band": np.array(INCOME_BANDS)[income[rows]],
            "education": np.array(EDUCATION)[edu[rows]],
            "signup_channel": np.array(SIGNUP_CHANNELS)[p.signup_channel[rows]],
            "created_at": created,
            "updated_at": created,
            "_person": rows,
        }))
    profiles = pa.concat_tables(tables)
    # Some profiles are re-sent later with a changed city (a move): staging must keep the latest.
    moved = rng.random(len(profiles)) < 0.05
    upd = profiles.filter(pa.array(moved))
    later = rng.uniform(5, 200, len(upd)) * 86400
    new_city = rng.choice(len(CITIES), len(upd))
    upd = upd.set_column(upd.schema.get_field_index("updated_at"), "updated_at",
                         pa.array(upd["updated_at"].to_numpy() + later.astype("timedelta64[s]")))
    upd = upd.set_column(upd.schema.get_field_index("city"), "city",
                         pa.array(np.array([c[0] for c in CITIES])[new_city]))
    upd = upd.set_column(upd.schema.get_field_index("city_tier"), "city_tier",
                         pa.array(np.array([c[1] for c in CITIES])[new_city]))
    # Accounts opened, or changes made, after the last day are not known yet.
    end_s = np.datetime64(cfg.end_date + timedelta(days=1)).astype("datetime64[s]")
    out = pa.concat_tables([profiles, upd])
    return out.filter(pc.less(out["updated_at"], pa.scalar(end_s)))


# --------------------------------------------------------------------------------------------------
# Orders: episodes of activity -> order times -> baskets.
# --------------------------------------------------------------------------------------------------
FADE_DAYS = 60.0
FADE_FACTOR = 0.35


def activity_segments(rng: np.random.Generator, cfg: GeneratorConfig, p: Persons):
    """Per person: one or two live episodes, each split into a normal and a fading segment.

    Returns (person, lo, hi, rate, fading) arrays of segments, in fractional days of the window.
    """
    n, horizon = p.n, float(cfg.days)
    # Mean lifetime ~ 400 days; unhappy people leave sooner (the feedback signal of churn).
    hazard = rng.gamma(shape=1.2, scale=1 / 400 / 1.2, size=n) * np.exp(-0.35 * p.satisfaction)
    life1 = rng.exponential(1 / hazard)
    start1 = p.signup_t
    end1 = start1 + life1
    comes_back = rng.random(n) < 0.2
    start2 = end1 + rng.uniform(90, 240, n)
    end2 = start2 + rng.exponential(1 / hazard)
    person = np.concatenate([np.arange(n), np.arange(n)[comes_back]])
    lo = np.concatenate([start1, start2[comes_back]])
    hi = np.concatenate([end1, end2[comes_back]])
    keep = ~p.is_prospect[person]
    person, lo, hi = person[keep], lo[keep], hi[keep]
    fade_start = np.maximum(lo, hi - FADE_DAYS)
    seg_person = np.concatenate([person, person])
    seg_lo = np.concatenate([lo, fade_start])
    seg_hi = np.concatenate([fade_start, hi])
    fading = np.concatenate([np.zeros(len(person), bool), np.ones(len(person), bool)])
    seg_lo, seg_hi = np.clip(seg_lo, 0, horizon), np.clip(seg_hi, 0, horizon)
    ok = seg_hi > seg_lo
    rate = p.rate[seg_person] * np.where(fading, FADE_FACTOR, 1.0)
    return seg_person[ok], seg_lo[ok], seg_hi[ok], rate[ok], fading[ok]


def make_orders(rng: np.random.Generator, cfg: GeneratorConfig, p: Persons, cum: np.ndarray,
                products: pa.Table, stores: pa.Table):
    seg_person, seg_lo, seg_hi, seg_rate, seg_fading = activity_segments(rng, cfg, p)
    counts = rng.poisson(seg_rate * _weighted_mass(cum, seg_lo, seg_hi))
    person = np.repeat(seg_person, counts)
    fading = np.repeat(seg_fading, counts)
    t = _sample_days(rng, cum, np.repeat(seg_lo, counts), np.repeat(seg_hi, counts))
    order = np.lexsort((t, person))
    person, fading, t = person[order], fading[order], t[order]
    n_orders = len(person)

    # Channel among the person's systems; store orders happen in daytime, online peaks at night.
    cp = p.channel_pref[person].cumsum(axis=1)
    ch = (rng.random(n_orders)[:, None] > cp).sum(axis=1).clip(0, 3)
    local_hour = np.where(ch == 0, rng.normal(15, 3, n_orders), rng.normal(20, 3.5, n_orders)) % 24
    day = np.floor(t)
    seconds = (day * 86400 + (local_hour - 8) * 3600 + rng.uniform(0, 3600, n_orders)).astype(np.int64)
    start_s = np.datetime64(cfg.start_date).astype("datetime64[s]")
    ordered_at = start_s + seconds.astype("timedelta64[s]")
    # Keep times inside the window after the UTC+8 shift.
    end_s = np.datetime64(cfg.end_date + timedelta(days=1)).astype("datetime64[s]") - np.timedelta64(1, "s")
    ordered_at = np.clip(ordered_at, start_s, end_s)

    # Baskets: 1 + Poisson items by category affinity, plus a complementary item sometimes.
    n_items = 1 + rng.poisson(0.7, n_orders)
    item_order = np.repeat(np.arange(n_orders), n_items)
    item_person = person[item_order]
    cat_cum = p.category_pref[item_person].cumsum(axis=1)
    cat = (rng.random(len(item_order))[:, None] > cat_cum).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    first_item = np.r_[True, item_order[1:] != item_order[:-1]]
    add_comp = first_item & (rng.random(len(item_order)) < 0.3)
    comp_cat = np.array([CATEGORIES.index(COMPLEMENTS[c]) for c in CATEGORIES])[cat[add_comp]]
    item_order = np.concatenate([item_order, item_order[add_comp]])
    cat = np.concatenate([cat, comp_cat])
    resort = np.argsort(item_order, kind="stable")
    item_order, cat = item_order[resort], cat[resort]

    prod_cat = np.array([CATEGORIES.index(c) for c in products["category"].to_pylist()])
    prod_price = products["list_price"].to_numpy().astype(float)
    by_cat = [np.flatnonzero(prod_cat == c) for c in range(len(CATEGORIES))]
    zipf_rank = np.minimum(rng.zipf(1.6, len(item_order)) - 1, 24)
    product_idx = np.array([by_cat[c][0] for c in range(len(CATEGORIES))])[cat] + zipf_rank
    quantity = 1 + (rng.random(len(item_order)) < 0.2) + (rng.random(len(item_order)) < 0.05)
    unit_price = prod_price[product_idx]
    line_gross = unit_price * quantity

    day_of_window = np.clip(day.astype(int), 0, cfg.days - 1)
    festival_day = _festival_mask(cfg.start_date, cfg.days)[day_of_window]
    disc_rate = np.where(
        rng.random(n_orders) < p.discount_affinity[person] * np.where(festival_day, 1.8, 0.6),
        rng.choice([0.05, 0.1, 0.15, 0.2, 0.3], n_orders), 0.0)
    line_disc = np.round(line_gross * disc_rate[item_order], 2)
    gross = np.bincount(item_order, weights=line_gross, minlength=n_orders)
    discount = np.bincount(item_order, weights=line_disc, minlength=n_orders)
    net = np.round(gross - discount, 2)

    status_cancel = rng.random(n_orders) < 0.025
    member = p.has_system[person, 0] | p.has_system[person, 2]  # POS card or app = loyalty member
    earned = np.where(member & ~status_cancel, np.floor(net), 0).astype(np.int64)
    earned_before = np.zeros(n_orders, np.int64)
    # Exclusive cumulative points per person (orders are sorted by person, time).
    csum = np.cumsum(earned)
    first = np.r_[True, person[1:] != person[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n_orders), 0))
    earned_before = csum - earned - np.where(group_start > 0, csum[group_start - 1], 0)
    wants_redeem = member & ~status_cancel & (rng.random(n_orders) < 0.12)
    prev_redeems = _group_cumcount(wants_redeem, group_start)
    redeem = np.where(wants_redeem & (earned_before >= 500 * (prev_redeems + 1)), 500, 0)

    systems = np.array(["pos", "web", "app", "wechat"])
    system = systems[ch]
    src_id = np.empty(n_orders, dtype=object)
    for s_i, s in enumerate(systems):
        m = ch == s_i
        src_id[m] = account_ids(s, p.offset + person[m])
    city_store = _stores_by_city(stores)
    store = np.where(ch == 0, np.array([city_store.get(int(c), "S001") for c in range(len(CITIES))])
                     [p.city_idx[person]], None)
    pay = rng.choice(len(PAYMENTS), n_orders, p=[0.45, 0.3, 0.1, 0.1, 0.05])
    pay = np.where((ch != 0) & (pay == 4), 0, pay)  # no cash online

    order_id = chunk_ids("O", p.chunk, np.arange(1, n_orders + 1))
    orders = {
        "order_id": order_id, "source_system": system, "source_customer_id": src_id,
        "ordered_at": ordered_at, "transaction_type": np.full(n_orders, "sale"),
        "original_order_id": np.full(n_orders, None), "status": np.where(status_cancel, "cancelled", "completed"),
        "channel": np.array(SIGNUP_CHANNELS)[ch], "store_id": store,
        "payment_method": np.array(PAYMENTS)[pay], "gross_amount": np.round(gross, 2),
        "discount_amount": np.round(discount, 2), "net_amount": net, "currency": np.full(n_orders, "CNY"),
        "points_earned": earned, "points_redeemed": redeem,
    }
    line_no = _group_cumcount(np.ones(len(item_order), bool), np.maximum.accumulate(
        np.where(np.r_[True, item_order[1:] != item_order[:-1]], np.arange(len(item_order)), 0))) + 1
    items = {
        "order_id": order_id[item_order], "line_no": line_no, "product_id": products["product_id"].to_numpy(
            zero_copy_only=False)[product_idx], "quantity": quantity, "unit_price": unit_price,
        "discount_amount": line_disc,
    }
    refunds = _refunds(rng, orders, status_cancel, p.satisfaction[person], end_s, p.chunk)
    return orders, items, refunds, person, fading


def _festival_mask(start: date, days: int) -> np.ndarray:
    w = day_weights(start, days)
    return w > np.quantile(w, 0.97)


def _group_cumcount(flag: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Number of earlier True flags within the same group (rows sorted by group)."""
    c = np.cumsum(flag)
    before = c - flag
    return before - np.where(group_start > 0, c[group_start - 1], 0)


def _stores_by_city(stores: pa.Table) -> dict[int, str]:
    names = [c[0] for c in CITIES]
    out: dict[int, str] = {}
    for sid, city in zip(stores["store_id"].to_pylist(), stores["city"].to_pylist(), strict=True):
        out.setdefault(names.index(city), sid)
    return out


def chunk_ids(prefix: str, chunk: int, numbers: np.ndarray) -> np.ndarray:
    """Ids unique across chunks: prefix, 3-digit chunk, 8-digit number within the chunk."""
    if len(numbers) == 0:
        return np.array([], dtype=str)
    return np.char.add(f"{prefix}{chunk:03d}", np.char.zfill(numbers.astype(str), 8))


def _refunds(rng, orders: dict, cancelled: np.ndarray, satisfaction: np.ndarray, end_s, chunk: int) -> dict:
    """Refund rows for ~4% of completed sales (more for unhappy customers), 1-20 days later."""
    n = len(cancelled)
    p_refund = 0.03 + 0.03 * (satisfaction < -1)
    pick = np.flatnonzero(~cancelled & (rng.random(n) < p_refund) & (orders["net_amount"] > 0))
    refunded_at = orders["ordered_at"][pick] + (rng.uniform(1, 20, len(pick)) * 86400).astype("timedelta64[s]")
    keep = refunded_at <= end_s
    pick, refunded_at = pick[keep], refunded_at[keep]
    share = np.where(rng.random(len(pick)) < 0.7, 1.0, 0.5)
    return {
        "order_id": chunk_ids("R", chunk, pick + 1),  # same number as the sale it refunds
        "source_system": orders["source_system"][pick], "source_customer_id": orders["source_customer_id"][pick],
        "ordered_at": refunded_at, "transaction_type": np.full(len(pick), "refund"),
        "original_order_id": orders["order_id"][pick], "status": np.full(len(pick), "completed"),
        "channel": orders["channel"][pick], "store_id": orders["store_id"][pick],
        "payment_method": orders["payment_method"][pick],
        "gross_amount": -np.round(orders["gross_amount"][pick] * share, 2),
        "discount_amount": np.round(orders["discount_amount"][pick] * share, 2),
        "net_amount": -np.round(orders["net_amount"][pick] * share, 2),
        "currency": np.full(len(pick), "CNY"),
        "points_earned": np.zeros(len(pick), np.int64), "points_redeemed": np.zeros(len(pick), np.int64),
    }


# --------------------------------------------------------------------------------------------------
# Reference data, feedback, consent.
# --------------------------------------------------------------------------------------------------
PRODUCTS_PER_CATEGORY = 25


def make_products(rng: np.random.Generator) -> pa.Table:
    n = PRODUCTS_PER_CATEGORY * len(CATEGORIES)
    cat = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    base = np.array([CATEGORY_PRICE[c] for c in CATEGORIES])[cat]
    price = np.round(base * rng.lognormal(0, 0.45, n) / 10) * 10 - 0.1
    brand = rng.choice(np.array(BRANDS), n)
    number = np.tile(np.arange(1, PRODUCTS_PER_CATEGORY + 1), len(CATEGORIES)).astype(str)
    return pa.table({
        "product_id": np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 4)),
        "product_name": np.char.add(np.char.add(brand, " "), np.char.add(np.array(CATEGORIES)[cat],
                                                                       np.char.add(" #", number))),
        "category": np.array(CATEGORIES)[cat],
        "brand": brand,
        "list_price": np.round(price, 2),
        "unit_cost": np.round(price * rng.uniform(0.3, 0.6, n), 2),
    })


def make_stores(rng: np.random.Generator, start: date) -> pa.Table:
    per_city = np.array([max(1, c[2] // 3) for c in CITIES])
    city = np.repeat(np.arange(len(CITIES)), per_city)
    n = len(city)
    opened = np.datetime64(start) - rng.integers(200, 3000, n).astype("timedelta64[D]")
    return pa.table({
        "store_id": np.char.add("S", np.char.zfill(np.arange(1, n + 1).astype(str), 3)),
        "store_name": np.char.add(np.array([c[0] for c in CITIES])[city],
                                  np.char.add(" 店 ", np.arange(1, n + 1).astype(str))),
        "city": np.array([c[0] for c in CITIES])[city],
        "city_tier": np.array([c[1] for c in CITIES])[city],
        "opened_on": opened,
    })


def _texts(rng: np.random.Generator, sentiment: np.ndarray, english: np.ndarray) -> np.ndarray:
    """Pick a text of the given sentiment sign (-1/+1) in the person's language."""
    bank_sent = np.array([t[1] for t in TEXTS])
    neg, pos = np.flatnonzero(bank_sent < 0), np.flatnonzero(bank_sent > 0)
    pick = np.where(sentiment < 0, neg[rng.integers(0, len(neg), len(sentiment))],
                    pos[rng.integers(0, len(pos), len(sentiment))])
    zh, en = np.array([t[2] for t in TEXTS]), np.array([t[3] for t in TEXTS])
    return np.where(english, en[pick], zh[pick])


def make_feedback(rng: np.random.Generator, cfg: GeneratorConfig, p: Persons, orders: dict,
                  person: np.ndarray, fading: np.ndarray) -> pa.Table:
    n = len(person)
    completed = orders["status"] == "completed"
    english = (rng.random(p.n) < 0.2)[person]
    mood = p.satisfaction[person] - 1.2 * fading + rng.normal(0, 0.8, n)
    end_s = np.datetime64(cfg.end_date + timedelta(days=1)).astype("datetime64[s]") - np.timedelta64(1, "s")
    parts = []

    def add(kind: str, mask: np.ndarray, score: np.ndarray | None, with_text: np.ndarray, delay_days: np.ndarray):
        idx = np.flatnonzero(mask)
        created = orders["ordered_at"][idx] + (delay_days[idx] * 86400).astype("timedelta64[s]")
        ok = created <= end_s
        idx, created = idx[ok], created[ok]
        # Complaints are negative by nature; other feedback follows the person's mood.
        sentiment = -np.ones(len(idx)) if kind == "complaint" else np.sign(mood[idx] + 1e-9)
        text = _texts(rng, sentiment, english[idx])
        parts.append({
            "source_system": orders["source_system"][idx], "source_customer_id": orders["source_customer_id"][idx],
            "feedback_type": np.full(len(idx), kind), "order_id": orders["order_id"][idx],
            "score": None if score is None else score[idx],
            "text": np.where(with_text[idx], text, None), "language": np.where(english[idx], "en", "zh"),
            "channel": orders["channel"][idx], "created_at": created, "mood": mood[idx],
        })

    csat = np.clip(np.round(3.9 + 0.8 * mood), 1, 5).astype(np.int64)
    add("csat", completed & (rng.random(n) < 0.08), csat, rng.random(n) < 0.3, rng.uniform(0, 3, n))
    add("review", completed & (rng.random(n) < 0.04), csat, np.ones(n, bool), rng.uniform(2, 15, n))
    p_complaint = np.where(fading, 0.07, 0.012) * np.where(p.satisfaction[person] < -1, 2.0, 1.0)
    add("complaint", rng.random(n) < p_complaint, None, np.ones(n, bool), rng.uniform(0, 10, n))
    # NPS: quarterly survey to people who bought in the 120 days before the wave.
    for wave_day in range(45, cfg.days, 91):
        wave_t = np.datetime64(cfg.start_date + timedelta(days=wave_day)).astype("datetime64[s]")
        recent = (orders["ordered_at"] < wave_t) & (orders["ordered_at"] >= wave_t - np.timedelta64(120 * 86400, "s"))
        last = np.flatnonzero(recent)
        # Orders are sorted by person then time: the last recent order of each person answers.
        _, last_pos = np.unique(person[last][::-1], return_index=True)
        respondent_orders = last[::-1][last_pos]
        respondent_orders = respondent_orders[rng.random(len(respondent_orders)) < 0.25]
        mask = np.zeros(n, bool)
        mask[respondent_orders] = True
        nps = np.clip(np.round(7.6 + 1.8 * mood), 0, 10).astype(np.int64)
        delay = np.zeros(n)
        delay[respondent_orders] = ((wave_t - orders["ordered_at"][respondent_orders]).astype(float) / 86400
                                   + rng.uniform(0, 5, len(respondent_orders)))
        add("nps", mask, nps, rng.random(n) < 0.4, delay)

    fb = {k: np.concatenate([part[k] if part[k] is not None else np.full(len(part["mood"]), -1)
                             for part in parts]) for k in parts[0]}
    m = len(fb["created_at"])
    score = pa.array(fb["score"], mask=fb["score"] < 0)
    is_complaint = fb["feedback_type"] == "complaint"
    first_resp = fb["created_at"] + (rng.exponential(10, m) * 3600).astype("timedelta64[s]")
    resolves = is_complaint & (rng.random(m) < 0.85)
    resolved = first_resp + (rng.exponential(3, m) * 86400).astype("timedelta64[s]")
    resolves &= resolved <= end_s
    feedback_id = chunk_ids("F", p.chunk, np.arange(1, m + 1))
    base = {
        "feedback_id": feedback_id, "source_system": fb["source_system"],
        "source_customer_id": fb["source_customer_id"], "feedback_type": fb["feedback_type"],
        "order_id": fb["order_id"], "score": score, "text": fb["text"], "language": fb["language"],
        "channel": fb["channel"], "created_at": fb["created_at"],
    }
    first_resp_ok = np.where(is_complaint & (first_resp <= end_s), first_resp, np.datetime64("NaT"))
    schema = naive_schema("feedback")  # explicit types: a chunk may have no complaint at all
    opened = pa.table({**base, "status": np.where(is_complaint, "open", None),
                       "first_response_at": pa.array(first_resp_ok, mask=np.isnat(first_resp_ok)),
                       "resolved_at": pa.array(np.full(m, np.datetime64("NaT", "s")), mask=np.ones(m, bool)),
                       "updated_at": fb["created_at"]}, schema=schema)
    closed = pa.table({**{k: (v.filter(pa.array(resolves)) if isinstance(v, pa.Array) else v[resolves])
                          for k, v in base.items()},
                       "status": np.full(resolves.sum(), "resolved"),
                       "first_response_at": first_resp[resolves], "resolved_at": resolved[resolves],
                       "updated_at": resolved[resolves]}, schema=schema)
    reopened, reclosed = _reopened_complaints(np.random.default_rng([cfg.seed, p.chunk + 1, REOPEN_STREAM]),
                                              closed, end_s, schema)
    return pa.concat_tables([opened, closed, reopened, reclosed])


# Reopens draw from their own random stream so that adding them changed no other row of any entity.
REOPEN_STREAM = 6
REOPEN_SHARE = 0.06  # of resolved complaints, the customer writes back and the complaint is open again
RE_RESOLVE_SHARE = 0.7  # of reopened complaints, resolved again (the rest stay open)


def _reopened_complaints(rng: np.random.Generator, closed: pa.Table, end_s: np.datetime64,
                         schema: pa.Schema) -> tuple[pa.Table, pa.Table]:
    """Re-sent versions of some resolved complaints: open again (days later), then often resolved again."""
    m = len(closed)
    resolved = closed["resolved_at"].to_numpy(zero_copy_only=False)
    reopened_at = resolved + (rng.uniform(0.1, 1, m) * rng.exponential(4, m) * 86400).astype("timedelta64[s]")
    again_at = reopened_at + (rng.exponential(2, m) * 86400).astype("timedelta64[s]")
    reopens = (rng.random(m) < REOPEN_SHARE) & (reopened_at <= end_s)
    re_resolves = reopens & (rng.random(m) < RE_RESOLVE_SHARE) & (again_at <= end_s)
    keep = [c for c in schema.names if c not in ("status", "resolved_at", "updated_at")]
    reopened = closed.filter(pa.array(reopens)).select(keep)
    reopened = pa.table({**{c: reopened[c] for c in keep}, "status": np.full(reopens.sum(), "open"),
                         "resolved_at": pa.array(np.full(reopens.sum(), np.datetime64("NaT", "s")),
                                                 mask=np.ones(reopens.sum(), bool)),
                         "updated_at": reopened_at[reopens]}, schema=schema)
    reclosed = closed.filter(pa.array(re_resolves)).select(keep)
    reclosed = pa.table({**{c: reclosed[c] for c in keep}, "status": np.full(re_resolves.sum(), "resolved"),
                         "resolved_at": again_at[re_resolves], "updated_at": again_at[re_resolves]}, schema=schema)
    return reopened, reclosed


def make_consent_events(rng: np.random.Generator, cfg: GeneratorConfig, p: Persons,
                        profiles: pa.Table) -> pa.Table:
    first = profiles
    person = first["_person"].to_numpy()
    created = first["created_at"].to_numpy()
    original = created == first["updated_at"].to_numpy()  # re-sent profiles carry no new consent
    has = {"email": ~np.asarray(first["email"].is_null()), "sms": ~np.asarray(first["phone"].is_null()),
           "ads": np.ones(len(person), bool)}
    end_s = np.datetime64(cfg.end_date + timedelta(days=1)).astype("datetime64[s]") - np.timedelta64(1, "s")
    parts = []
    for channel, p_grant in (("email", 0.6), ("sms", 0.5), ("ads", 0.4)):
        granted = has[channel] & original & (rng.random(len(person)) < p_grant)
        idx = np.flatnonzero(has[channel] & original)
        parts.append((idx, channel, granted[idx], created[idx]))
        # Opt-outs: unhappy people unsubscribe sooner.
        g = np.flatnonzero(granted)
        opt_out = created[g] + (rng.exponential(700 * np.exp(0.4 * p.satisfaction[person[g]])) * 86400
                                ).astype("timedelta64[s]")
        ok = opt_out <= end_s
        parts.append((g[ok], channel, np.zeros(ok.sum(), bool), opt_out[ok]))
    idx = np.concatenate([x[0] for x in parts])
    return pa.table({
        "source_system": first["source_system"].take(pa.array(idx)),
        "source_customer_id": first["source_customer_id"].take(pa.array(idx)),
        "consent_channel": np.concatenate([np.full(len(x[0]), x[1]) for x in parts]),
        "granted": np.concatenate([x[2] for x in parts]),
        "event_at": np.concatenate([x[3] for x in parts]),
    })


# --------------------------------------------------------------------------------------------------
# Dirty rows and writing.
# --------------------------------------------------------------------------------------------------
DIRTY_KINDS = ("negative_sale", "missing_customer", "bad_timestamp", "bad_amount", "duplicate")


def make_dirty(rng: np.random.Generator, orders: pa.Table, rate: float) -> pa.Table:
    """Return orders as strings with a few deliberately broken rows (for quarantine to catch)."""
    as_text = pa.table({c: pc.cast(orders[c], pa.string()) for c in orders.column_names if c != "_dt"})
    as_text = as_text.append_column("_dt", orders["_dt"])
    n = len(orders)
    k = int(n * rate)
    if k == 0:
        return as_text
    idx = np.sort(rng.choice(n, k, replace=False))
    kind = rng.integers(0, len(DIRTY_KINDS), k)
    cols = {c: as_text[c].to_numpy(zero_copy_only=False).astype(object) for c in
            ("net_amount", "source_customer_id", "ordered_at")}
    cols["net_amount"][idx[kind == 0]] = "-" + cols["net_amount"][idx[kind == 0]].astype(str)
    cols["source_customer_id"][idx[kind == 1]] = None
    cols["ordered_at"][idx[kind == 2]] = "31/02/2025 25:61"
    cols["net_amount"][idx[kind == 3]] = "12,5O"
    for c, v in cols.items():
        as_text = as_text.set_column(as_text.schema.get_field_index(c), c, pa.array(v, pa.string()))
    dup = idx[kind == 4]
    return pa.concat_tables([as_text, as_text.take(pa.array(dup))]).sort_by([("_dt", "ascending")])


def _with_partition(table: pa.Table, time_col: str, start: date) -> pa.Table:
    """Partition by UTC day of ``time_col``; anything before the window lands on its first day."""
    day = pc.cast(pc.cast(table[time_col], pa.timestamp("s")), pa.date32())
    day = pc.max_element_wise(day, pa.scalar(start, pa.date32()))
    return table.append_column("_dt", day)


_ARROW_TYPES = {"VARCHAR": pa.string(), "TIMESTAMPTZ": pa.timestamp("s", tz="UTC"), "INTEGER": pa.int64(),
                "DATE": pa.date32(), "BOOLEAN": pa.bool_()}


def arrow_schema(entity: str) -> pa.Schema:
    """Arrow schema of a landing entity, from the contract (decimals are written as float64)."""
    return pa.schema([(c.name, _ARROW_TYPES.get(c.type, pa.float64())) for c in ENTITIES[entity].columns])


def naive_schema(entity: str) -> pa.Schema:
    """The entity's Arrow schema with zone-less timestamps (the generator works in naive UTC)."""
    return pa.schema([f.with_type(pa.timestamp("s")) if pa.types.is_timestamp(f.type) else f
                      for f in arrow_schema(entity)])


def write_partitions(table: pa.Table, out: Path, entity: str, file_name: str | None = None) -> int:
    """Write one CSV per day into ``out/entity/dt=.../<file_name>``; return the number of files."""
    columns = ENTITIES[entity].column_names
    table = table.sort_by([("_dt", "ascending")])
    days = table["_dt"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, days[1:] != days[:-1], True])
    folder = out / entity
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        part = folder / f"dt={days[a]}"
        part.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table.slice(a, b - a).select(columns), part / (file_name or f"{entity}.csv"))
    return len(bounds) - 1


def _utc(table: pa.Table, cols: list[str]) -> pa.Table:
    for c in cols:
        i = table.schema.get_field_index(c)
        table = table.set_column(i, c, pc.cast(pc.cast(table[c], pa.timestamp("s")), pa.timestamp("s", tz="UTC")))
    return table


def _chunk_tables(cfg: GeneratorConfig, chunk: int, cum: np.ndarray, products: pa.Table,
                  stores: pa.Table) -> dict[str, pa.Table]:
    """Every per-person entity for one chunk of persons, from the chunk's own random stream."""
    rng = np.random.default_rng([cfg.seed, chunk + 1])
    offset = chunk * cfg.chunk_size
    persons = make_persons(rng, cfg, cum, min(cfg.chunk_size, cfg.customers - offset), offset, chunk)
    profiles = customer_profiles(rng, cfg, persons)
    orders, items, refunds, person, fading = make_orders(rng, cfg, persons, cum, products, stores)
    feedback = make_feedback(rng, cfg, persons, orders, person, fading)
    consents = make_consent_events(rng, cfg, persons, profiles)

    naive = naive_schema("orders")
    orders_t = pa.concat_tables([pa.table(orders, schema=naive), pa.table(refunds, schema=naive)])
    orders_t = _with_partition(_utc(orders_t, ["ordered_at"]), "ordered_at", cfg.start_date)
    items_t = pa.table(items).join(orders_t.select(["order_id", "_dt"]), "order_id")
    return {
        "customers": _with_partition(_utc(profiles.drop_columns(["_person"]), ["created_at", "updated_at"]),
                                     "updated_at", cfg.start_date),
        "orders": make_dirty(rng, orders_t, cfg.dirty_rate),
        "order_items": items_t,
        "feedback": _with_partition(_utc(feedback, ["created_at", "first_response_at", "resolved_at", "updated_at"]),
                                    "updated_at", cfg.start_date),
        "consent_events": _with_partition(_utc(consents, ["event_at"]), "event_at", cfg.start_date),
    }


def _write_chunk(cfg: GeneratorConfig, chunk: int, cum: np.ndarray, products: pa.Table, stores: pa.Table,
                 out: Path) -> dict[str, int]:
    counts = {}
    for entity, table in _chunk_tables(cfg, chunk, cum, products, stores).items():
        # Chunk 0 writes <entity>.csv, later chunks <entity>-<chunk>.csv beside it in the same partition.
        write_partitions(table, out, entity, f"{entity}.csv" if chunk == 0 else f"{entity}-{chunk:03d}.csv")
        counts[entity] = len(table)
    return counts


def chunk_count(cfg: GeneratorConfig) -> int:
    """How many chunks of ``cfg.chunk_size`` customers ``generate`` writes (for progress bars)."""
    return -(-cfg.customers // cfg.chunk_size)


def generate(cfg: GeneratorConfig, out: Path, workers: int = 1,
             on_chunk: Callable[[], None] | None = None) -> dict[str, int]:
    """Generate the whole sample into ``out`` (replacing earlier output); return rows per entity.

    ``on_chunk`` is called after each chunk of customers is written (in chunk order).
    """
    rng = np.random.default_rng(cfg.seed)
    cum = np.r_[0.0, np.cumsum(day_weights(cfg.start_date, cfg.days))]
    log.info("generating %s customers over %s days ending %s (seed %s)", cfg.customers, cfg.days,
             cfg.end_date, cfg.seed)
    products = make_products(rng)
    stores = make_stores(rng, cfg.start_date)
    for entity in ENTITIES:
        shutil.rmtree(out / entity, ignore_errors=True)
    write_partitions(products.append_column("_dt", pa.array([cfg.start_date] * len(products))), out, "products")
    write_partitions(stores.append_column("_dt", pa.array([cfg.start_date] * len(stores))), out, "stores")
    counts = {"products": len(products), "stores": len(stores)}
    chunks = range(chunk_count(cfg))
    results = []
    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_write_chunk, *zip(*[(cfg, c, cum, products, stores, out) for c in chunks],
                                                       strict=True)):
                results.append(result)
                if on_chunk:
                    on_chunk()
    else:
        for c in chunks:
            results.append(_write_chunk(cfg, c, cum, products, stores, out))
            if on_chunk:
                on_chunk()
    for chunk_counts in results:
        for entity, n in chunk_counts.items():
            counts[entity] = counts.get(entity, 0) + n
    for entity, n in counts.items():
        log.info("wrote %s rows of %s", f"{n:,}", entity)
    return counts
