"""A small published warehouse with the real mart schema (read from the dbt contracts), filled by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import yaml

from loyalist.config import DBT_PROJECT_DIR, Settings
from loyalist.pipeline import published_path
from ml.store import TABLES

MART_YAMLS = {
    "customers": DBT_PROJECT_DIR / "models" / "marts" / "core" / "_core__models.yml",
    "customer_segments": DBT_PROJECT_DIR / "models" / "marts" / "segmentation" / "_segmentation__models.yml",
}
AS_OF = date(2025, 3, 31)


def contract_columns(model: str) -> list[tuple[str, str]]:
    doc = yaml.safe_load(MART_YAMLS[model].read_text(encoding="utf-8"))
    spec = next(m for m in doc["models"] if m["name"] == model)
    return [(c["name"], c["data_type"]) for c in spec["columns"]]


def customer(i: int, **overrides) -> dict:
    """A plausible buyer; every consent granted unless overridden."""
    row = {
        "customer_id": f"C{i:016x}", "full_name": f"王{i}", "email_normalized": f"user{i}@example.com",
        "phone_e164": f"+86138{i:08d}", "city": "Shanghai", "city_tier": 1, "gender": "F", "age": 30,
        "birth_month": 3, "first_seen_at": "2024-01-01 00:00:00+00", "account_count": 1, "source_systems": "app",
        "orders_count": 3, "revenue": 300, "refunds_amount": 0, "is_prospect": False,
        "last_order_at": "2025-03-01 10:00:00+00", "lifecycle_stage": "active", "value_tier": "high",
        "preferred_category": "skincare", "preferred_channel": "wechat", "consent_email": True,
        "consent_sms": True, "consent_ads": True, "open_complaints": 0, "points_balance": 0,
        "is_loyalty_member": False, "as_of_date": AS_OF,
    }
    row.update(overrides)
    return row


def build_published(settings: Settings, customers: list[dict], churn: list[tuple[str, float, str]] = (),
                    path: Path | None = None) -> Path:
    """Write ``marts.customers``, ``marts.customer_segments`` and ``ml.churn_scores`` to the published path."""
    path = path or published_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema marts; create schema ml")
        for model in MART_YAMLS:
            cols = ", ".join(f'"{n}" {t}' for n, t in contract_columns(model))
            con.execute(f"create table marts.{model} ({cols})")
        con.execute(f"create table ml.churn_scores ({TABLES['churn_scores']})")
        for row in customers:
            names = list(row)
            con.execute(f"insert into marts.customers ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                        list(row.values()))
            con.execute("insert into marts.customer_segments (customer_id, recency_days, as_of_date) values (?, ?, ?)",
                        [row["customer_id"], 30, AS_OF])
        for cid, p, band in churn:
            con.execute("insert into ml.churn_scores values (?, ?, ?, ?, '', 'v1')", [cid, AS_OF, p, band])
    return path


def write_definition(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = yaml.safe_load(text)["name"]
    path = directory / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path
