"""The input contract: every landing entity, its columns, types and which are required.

This module is the single source of truth for what a landing file (CSV or Parquet) must contain.
Ingestion casts and checks rows against it, the dbt sources mirror it, and `docs/input_contract.md`
is generated from it (`loyalist contract`), so the three can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type the raw value is cast to
    required: bool = False
    description: str = ""
    # Extra SQL predicate (on the cast value, named by the column) that a valid row satisfies.
    check: str | None = None
    # SQL expression used when the column is absent or empty (over the other cast columns). A column
    # with a default is optional even if downstream needs a value: minimal logs stay loadable.
    default: str | None = None


@dataclass(frozen=True)
class Entity:
    name: str
    description: str
    columns: tuple[Column, ...]
    # Business key: within one landing file a key may appear only once (the later rows are quarantined).
    key: tuple[str, ...]
    # Column holding the event/change time; rows later than the batch end (+ tolerance) are quarantined.
    event_time: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


SOURCE_SYSTEMS = ("pos", "web", "app", "wechat", "crm")  # crm: a customer id from your own system
CHANNELS = ("store", "web", "app", "wechat", "other")
CONSENT_CHANNELS = ("email", "sms", "ads")
FEEDBACK_TYPES = ("nps", "csat", "review", "complaint")

_SYSTEM_LIST = ", ".join(f"'{s}'" for s in SOURCE_SYSTEMS)
_CHANNEL_LIST = ", ".join(f"'{s}'" for s in CHANNELS)

CUSTOMERS = Entity(
    name="customers",
    description="Customer profiles as each source system (POS membership, web, app, WeChat) knows them. "
    "A profile may be re-sent when it changes; the latest `updated_at` wins.",
    key=("source_system", "source_customer_id", "updated_at"),
    event_time="updated_at",
    columns=(
        Column("source_system", "VARCHAR", True, "pos | web | app | wechat",
               check=f"source_system in ({_SYSTEM_LIST})"),
        Column("source_customer_id", "VARCHAR", True, "Account id inside the source system"),
        Column("email", "VARCHAR", description="Email as typed (case and whitespace noise allowed)"),
        Column("phone", "VARCHAR", description="Phone in any common format (+86 138 0013 8000, 0086-138...)"),
        Column("loyalty_card_no", "VARCHAR", description="Store membership card number"),
        Column("wechat_id", "VARCHAR", description="WeChat mini-program union id"),
        Column("full_name", "VARCHAR"),
        Column("birth_date", "DATE"),
        Column("gender", "VARCHAR", description="F | M | U"),
        Column("city", "VARCHAR"),
        Column("city_tier", "INTEGER", check="city_tier between 1 and 5"),
        Column("income_band", "VARCHAR"),
        Column("education", "VARCHAR"),
        Column("signup_channel", "VARCHAR", check=f"signup_channel in ({_CHANNEL_LIST})"),
        Column("created_at", "TIMESTAMPTZ", True),
        Column("updated_at", "TIMESTAMPTZ", True),
    ),
)

ORDERS = Entity(
    name="orders",
    description="Sales and refunds. A refund is its own row (`transaction_type = 'refund'`, negative "
    "amounts) pointing at the sale it reverses. Only `source_customer_id`, `ordered_at` and "
    "`net_amount` are required: a bare transaction log (customer id, timestamp, amount) loads, "
    "with the defaults below.",
    key=("order_id",),
    event_time="ordered_at",
    columns=(
        Column("order_id", "VARCHAR", description="Unique transaction id",
               default="'gen-' || md5(concat_ws('|', source_customer_id, ordered_at, net_amount, _row_in_file))"),
        Column("source_system", "VARCHAR", description="System that recorded the order",
               check=f"source_system in ({_SYSTEM_LIST})", default="'crm'"),
        Column("source_customer_id", "VARCHAR", True, "Account id in that system"),
        Column("ordered_at", "TIMESTAMPTZ", True),
        Column("transaction_type", "VARCHAR", description="sale | refund",
               check="transaction_type in ('sale', 'refund')",
               default="case when net_amount < 0 then 'refund' else 'sale' end"),
        Column("original_order_id", "VARCHAR", description="For refunds: the sale being refunded"),
        Column("status", "VARCHAR", description="completed | cancelled",
               check="status in ('completed', 'cancelled')", default="'completed'"),
        Column("channel", "VARCHAR", description="store | web | app | wechat | other",
               check=f"channel in ({_CHANNEL_LIST})", default="'other'"),
        Column("store_id", "VARCHAR", description="Store for in-store orders"),
        Column("payment_method", "VARCHAR"),
        Column("gross_amount", "DECIMAL(14,2)", description="Before discount; negative for refunds",
               check="abs(gross_amount) < 1000000", default="net_amount + coalesce(discount_amount, 0)"),
        Column("discount_amount", "DECIMAL(14,2)", check="discount_amount >= 0", default="0"),
        Column("net_amount", "DECIMAL(14,2)", True, "Paid: gross - discount; negative for refunds",
               check="abs(net_amount) < 1000000 and (transaction_type = 'refund') = (net_amount < 0)"),
        Column("currency", "VARCHAR", description="ISO 4217", default="'CNY'"),
        Column("points_earned", "INTEGER", check="points_earned >= 0", default="0"),
        Column("points_redeemed", "INTEGER", check="points_redeemed >= 0", default="0"),
    ),
)

ORDER_ITEMS = Entity(
    name="order_items",
    description="Line items of sales orders.",
    key=("order_id", "line_no"),
    columns=(
        Column("order_id", "VARCHAR", True),
        Column("line_no", "INTEGER", True, check="line_no >= 1"),
        Column("product_id", "VARCHAR", True),
        Column("quantity", "INTEGER", True, check="quantity between 1 and 1000"),
        Column("unit_price", "DECIMAL(12,2)", True, check="unit_price >= 0 and unit_price < 1000000"),
        Column("discount_amount", "DECIMAL(12,2)", check="discount_amount >= 0"),
    ),
)

FEEDBACK = Entity(
    name="feedback",
    description="NPS answers, post-order CSAT, reviews and complaints. A complaint is re-sent when its "
    "status changes (open -> resolved); the latest `updated_at` wins.",
    key=("feedback_id", "updated_at"),
    event_time="updated_at",
    columns=(
        Column("feedback_id", "VARCHAR", True),
        Column("source_system", "VARCHAR", True, check=f"source_system in ({_SYSTEM_LIST})"),
        Column("source_customer_id", "VARCHAR", True),
        Column("feedback_type", "VARCHAR", True, "nps | csat | review | complaint",
               check="feedback_type in ('nps', 'csat', 'review', 'complaint')"),
        Column("order_id", "VARCHAR"),
        Column("score", "INTEGER", description="NPS 0-10, CSAT and review 1-5, empty for complaints",
               check="score between 0 and 10"),
        Column("text", "VARCHAR", description="Free text, Chinese or English"),
        Column("language", "VARCHAR", description="zh | en"),
        Column("channel", "VARCHAR"),
        Column("status", "VARCHAR", description="Complaints: open | resolved"),
        Column("created_at", "TIMESTAMPTZ", True),
        Column("first_response_at", "TIMESTAMPTZ"),
        Column("resolved_at", "TIMESTAMPTZ"),
        Column("updated_at", "TIMESTAMPTZ", True),
    ),
)

CONSENT_EVENTS = Entity(
    name="consent_events",
    description="Marketing consent grants and opt-outs per channel. The latest event per account and "
    "channel is the current state.",
    key=("source_system", "source_customer_id", "consent_channel", "event_at"),
    event_time="event_at",
    columns=(
        Column("source_system", "VARCHAR", True, check=f"source_system in ({_SYSTEM_LIST})"),
        Column("source_customer_id", "VARCHAR", True),
        Column("consent_channel", "VARCHAR", True, "email | sms | ads",
               check="consent_channel in ('email', 'sms', 'ads')"),
        Column("granted", "BOOLEAN", True),
        Column("event_at", "TIMESTAMPTZ", True),
    ),
)

PRODUCTS = Entity(
    name="products",
    description="Product catalogue (reference data; re-sent in full when it changes).",
    key=("product_id",),
    columns=(
        Column("product_id", "VARCHAR", True),
        Column("product_name", "VARCHAR", True),
        Column("category", "VARCHAR", True),
        Column("brand", "VARCHAR"),
        Column("list_price", "DECIMAL(12,2)", True, check="list_price >= 0"),
        Column("unit_cost", "DECIMAL(12,2)", check="unit_cost >= 0"),
    ),
)

STORES = Entity(
    name="stores",
    description="Physical stores (reference data).",
    key=("store_id",),
    columns=(
        Column("store_id", "VARCHAR", True),
        Column("store_name", "VARCHAR"),
        Column("city", "VARCHAR", True),
        Column("city_tier", "INTEGER", check="city_tier between 1 and 5"),
        Column("opened_on", "DATE"),
    ),
)

ENTITIES: dict[str, Entity] = {
    e.name: e for e in (CUSTOMERS, ORDERS, ORDER_ITEMS, FEEDBACK, CONSENT_EVENTS, PRODUCTS, STORES)
}


def contract_markdown() -> str:
    """Render the contract as Markdown (docs/input_contract.md is generated from this)."""
    lines = [
        "# Input contract",
        "",
        "Generated by `loyalist contract` from `loyalist/contracts.py`; do not edit by hand.",
        "",
        "Landing files live at `<landing>/<entity>/dt=YYYY-MM-DD/*.csv` (or `*.parquet`), one folder "
        "per UTC day. CSV files are UTF-8 with a header row; column order does not matter; extra "
        "columns are ignored (and reported); a missing required column fails the batch; an optional "
        "column may be left out. Timestamps "
        "are ISO 8601; a timestamp without an offset is read as UTC.",
        "",
        "A row that breaks a rule below is not dropped: it goes to `raw.<entity>__quarantine` "
        "with the reason and its original values.",
        "",
    ]
    for entity in ENTITIES.values():
        lines += [f"## `{entity.name}`", "", entity.description, "",
                  f"Business key: `{', '.join(entity.key)}`", "",
                  "| column | type | required | rule | description |", "|---|---|---|---|---|"]
        for c in entity.columns:
            rule = f"`{c.check}`" if c.check else ""
            required = "yes" if c.required else (f"no, default `{c.default}`" if c.default else "no")
            lines.append(f"| `{c.name}` | {c.type} | {required} | {rule} | {c.description} |")
        lines.append("")
    return "\n".join(lines)
