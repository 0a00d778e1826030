"""Audience definitions: YAML files in ``audiences/``, validated against a closed catalogue of fields.

A definition names fields from ``FIELDS`` (never columns or SQL) and operators from ``OPERATORS``;
values are type-checked and, for categorical fields, checked against the known values. Anything else
is a ``DefinitionError`` naming the file and the key. The query builder (``query.py``) turns a
validated definition into SQL whose identifiers all come from this module and whose values are all
bound parameters, so nothing a definition says reaches the warehouse as SQL text.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from loyalist.audiences.constants import (  # noqa: F401 (re-exported)
    AUDIENCES_DIR,
    CHANNELS,
    FORMAT_CHANNEL,
    FORMATS,
    audience_names,
)
from loyalist.config import DBT_PROJECT_DIR

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,62}$")

TOP_KEYS = {"name", "description", "owner", "channel", "filters", "auto_export"}
REQUIRED_KEYS = {"name", "description", "owner", "channel", "filters"}


class DefinitionError(ValueError):
    """An audience definition is invalid; the message names the file and what is wrong."""


def _seed_values(seed: str, column: str) -> frozenset[str]:
    with (DBT_PROJECT_DIR / "seeds" / f"{seed}.csv").open(encoding="utf-8") as fh:
        return frozenset(row[column] for row in csv.DictReader(fh))


def _risk_bands() -> frozenset[str]:
    from ml.config import RISK_BANDS

    return frozenset(name for name, _ in RISK_BANDS)


def _reward_types() -> frozenset[str]:
    from ml.rewards import RULE_SPECS

    return frozenset(RULE_SPECS)


@dataclass(frozen=True)
class Field:
    """One filterable attribute: ``sql`` is a fixed expression over the query's table aliases."""

    name: str
    sql: str
    kind: str  # text | int | number | bool
    table: str  # the relation it needs (for the join and for the "not published yet" error)
    description: str
    values: frozenset[str] | None = None  # closed set of allowed values (categorical fields)


# Aliases: c = marts.customers, s = marts.customer_segments, ch = latest ml.churn_scores,
# cl = latest ml.clv_predictions, rw = ml.reward_eligibility of the as-of date (control group excluded).
def _catalogue() -> dict[str, Field]:
    cust, seg = "marts.customers", "marts.customer_segments"
    fields = [
        Field("city", "c.city", "text", cust, "City of the latest profile"),
        Field("city_tier", "c.city_tier", "int", cust, "City tier 1 (largest) to 5"),
        Field("gender", "c.gender", "text", cust, "F | M | U", frozenset({"F", "M", "U"})),
        Field("age", "c.age", "int", cust, "Age in years on the as-of date"),
        Field("age_band", "c.age_band", "text", cust, "Age band (seed age_bands)",
              _seed_values("age_bands", "age_band")),
        Field("birth_month", "c.birth_month", "int", cust, "Month of birth 1-12"),
        Field("birthday_this_month", "(c.birth_month = month(cast({as_of} as date)))", "bool", cust,
              "Birthday falls in the month of the as-of date"),
        Field("lifecycle_stage", "c.lifecycle_stage", "text", cust, "Current lifecycle stage",
              _seed_values("lifecycle_stages", "lifecycle_stage")),
        Field("rfm_segment", "c.rfm_segment", "text", cust, "Named RFM segment (seed rfm_segments)",
              _seed_values("rfm_segments", "rfm_segment")),
        Field("value_tier", "c.value_tier", "text", cust, "Pareto value tier", frozenset({"high", "mid", "low"})),
        Field("customer_level", "c.customer_level", "text", cust, "potential | new | loyal | super_fan",
              frozenset({"potential", "new", "loyal", "super_fan"})),
        Field("loyalty_tier", "c.loyalty_tier", "text", cust, "Loyalty tier (seed loyalty_tiers)",
              _seed_values("loyalty_tiers", "loyalty_tier")),
        Field("preferred_category", "c.preferred_category", "text", cust, "Category of most purchased lines"),
        Field("preferred_channel", "c.preferred_channel", "text", cust, "Sales channel of most orders",
              frozenset({"store", "web", "app", "wechat", "other"})),
        Field("needs_segment", "c.needs_segment", "text", cust, "'<category>-focused' or 'multi-category'"),
        Field("is_prospect", "c.is_prospect", "bool", cust, "No completed sale yet"),
        Field("is_loyalty_member", "c.is_loyalty_member", "bool", cust, "Has a loyalty account"),
        Field("orders_count", "c.orders_count", "int", cust, "Completed sales, ever"),
        Field("revenue", "c.revenue", "number", cust, "Net revenue, ever (CNY)"),
        Field("points_balance", "c.points_balance", "int", cust, "Loyalty points balance"),
        Field("open_complaints", "c.open_complaints", "int", cust, "Open complaints"),
        Field("consent_email", "c.consent_email", "bool", cust, "Email consent (the channel's consent always applies)"),
        Field("consent_sms", "c.consent_sms", "bool", cust, "SMS consent (the channel's consent always applies)"),
        Field("consent_ads", "c.consent_ads", "bool", cust, "Ads consent (the channel's consent always applies)"),
        Field("days_since_last_order", "date_diff('day', cast(c.last_order_at as date), cast({as_of} as date))",
              "int", cust, "Whole days since the last completed sale (null for prospects)"),
        Field("recency_days", "s.recency_days", "int", seg, "RFM recency in days"),
        Field("frequency", "s.frequency", "int", seg, "Completed sales in the RFM window"),
        Field("monetary", "s.monetary", "number", seg, "Net revenue in the RFM window"),
        Field("churn_probability", "ch.churn_probability", "number", "ml.churn_scores",
              "Calibrated churn probability (latest scoring on or before the as-of date)"),
        Field("churn_risk_band", "ch.risk_band", "text", "ml.churn_scores", "high | medium | low", _risk_bands()),
        Field("expected_spend_12m", "cl.expected_spend_12m", "number", "ml.clv_predictions",
              "Predicted spend in the next 12 months (CLV, CNY)"),
        Field("expected_orders_12m", "cl.expected_orders_12m", "number", "ml.clv_predictions",
              "Predicted orders in the next 12 months"),
        Field("reward_type", "rw.reward_type", "text", "ml.reward_eligibility",
              "Reward the customer is eligible for on the as-of date (control group never included)", _reward_types()),
    ]
    return {f.name: f for f in fields}


FIELDS: dict[str, Field] = _catalogue()

# operator -> (SQL template with {x} = field expression and ? = bound value, value shape)
OPERATORS: dict[str, tuple[str, str]] = {
    "eq": ("{x} = ?", "scalar"),
    "ne": ("{x} <> ?", "scalar"),
    "in": ("{x} in ({params})", "list"),
    "not_in": ("{x} not in ({params})", "list"),
    "gt": ("{x} > ?", "scalar"),
    "gte": ("{x} >= ?", "scalar"),
    "lt": ("{x} < ?", "scalar"),
    "lte": ("{x} <= ?", "scalar"),
    "between": ("{x} between ? and ?", "pair"),
    "is_null": ("({x} is null) = ?", "bool"),
}
KIND_OPERATORS = {
    "text": {"eq", "ne", "in", "not_in", "is_null"},
    "int": {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_null"},
    "number": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "is_null"},
    "bool": {"eq", "is_null"},
}


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Audience:
    name: str
    description: str
    owner: str
    channel: str
    conditions: tuple[Condition, ...]
    auto_export_formats: tuple[str, ...] = ()
    source: Path | None = None
    definition_sha256: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def tables(self) -> set[str]:
        unknown = [c.field for c in self.conditions if c.field not in FIELDS]
        if unknown:  # only reachable by building an Audience by hand, past the validation
            raise DefinitionError(f"unknown fields {unknown}")
        return {FIELDS[c.field].table for c in self.conditions}


def _check_value(where: str, f: Field, op: str, value: Any) -> Any:
    """Return the value in the shape the SQL template binds, or raise DefinitionError."""
    shape = OPERATORS[op][1]
    if shape == "bool":
        if not isinstance(value, bool):
            raise DefinitionError(f"{where}: '{op}' takes true or false, got {value!r}")
        return value
    if shape == "list":
        if not isinstance(value, list) or not value:
            raise DefinitionError(f"{where}: '{op}' takes a non-empty list, got {value!r}")
        return [_scalar(where, f, v) for v in value]
    if shape == "pair":
        if not isinstance(value, list) or len(value) != 2:
            raise DefinitionError(f"{where}: 'between' takes a list [low, high], got {value!r}")
        return [_scalar(where, f, v) for v in value]
    return _scalar(where, f, value)


def _scalar(where: str, f: Field, value: Any) -> Any:
    ok = {
        "text": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[f.kind]
    if not ok:
        raise DefinitionError(f"{where}: {f.name} is {f.kind}, got {value!r}")
    if f.values is not None and value not in f.values:
        raise DefinitionError(f"{where}: unknown value {value!r} for {f.name} (allowed: {sorted(f.values)})")
    return value


def _conditions(where: str, filters: Any) -> tuple[Condition, ...]:
    if not isinstance(filters, dict) or not filters:
        raise DefinitionError(f"{where}: filters must be a non-empty mapping field -> condition")
    out = []
    for name, spec in filters.items():
        if name not in FIELDS:
            raise DefinitionError(f"{where}: unknown field {name!r} (known: {', '.join(sorted(FIELDS))})")
        f = FIELDS[name]
        # Shorthand: `field: value` means eq, `field: [a, b]` means in.
        if not isinstance(spec, dict):
            spec = {"in": spec} if isinstance(spec, list) else {"eq": spec}
        if not spec:
            raise DefinitionError(f"{where}: {name} has no condition")
        for op, value in spec.items():
            if op not in OPERATORS:
                raise DefinitionError(f"{where}: unknown operator {op!r} for {name} (known: {', '.join(OPERATORS)})")
            if op not in KIND_OPERATORS[f.kind]:
                raise DefinitionError(f"{where}: operator {op!r} does not apply to {f.kind} field {name} "
                                      f"(use: {', '.join(sorted(KIND_OPERATORS[f.kind]))})")
            out.append(Condition(name, op, _check_value(f"{where}: {name}.{op}", f, op, value)))
    return tuple(out)


def _text(where: str, raw: dict, key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def parse_definition(raw: Any, source: str = "<definition>") -> Audience:
    """Validate one parsed YAML document; every problem is a DefinitionError naming ``source``."""
    if not isinstance(raw, dict):
        raise DefinitionError(f"{source}: an audience definition must be a mapping")
    unknown, missing = set(raw) - TOP_KEYS, REQUIRED_KEYS - set(raw)
    if unknown:
        raise DefinitionError(f"{source}: unknown keys {sorted(map(str, unknown))} (allowed: {sorted(TOP_KEYS)})")
    if missing:
        raise DefinitionError(f"{source}: missing keys {sorted(missing)}")
    name = raw["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise DefinitionError(f"{source}: name must be snake_case letters/digits (3-63 chars), got {name!r}")
    channel = raw["channel"]
    if channel not in CHANNELS:
        raise DefinitionError(f"{source}: unknown channel {channel!r} (allowed: {', '.join(CHANNELS)})")
    formats = _auto_export(source, raw.get("auto_export"), channel)
    canonical = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False)
    return Audience(
        name=name, description=_text(source, raw, "description"), owner=_text(source, raw, "owner"),
        channel=channel, conditions=_conditions(source, raw["filters"]), auto_export_formats=formats,
        definition_sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(), raw=raw,
    )


def _auto_export(source: str, value: Any, channel: str) -> tuple[str, ...]:
    if value in (None, False):
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DefinitionError(f"{source}: auto_export must be a list of formats ({', '.join(FORMATS)}) or false")
    for fmt in value:
        check_format(fmt, channel, source)
    return tuple(value)


def check_format(fmt: str, channel: str, where: str) -> None:
    """A platform format only goes to its own channel's consenters (Mailchimp = email, ad platforms = ads)."""
    if fmt not in FORMATS:
        raise DefinitionError(f"{where}: unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    needed = FORMAT_CHANNEL.get(fmt)
    if needed and needed != channel:
        raise DefinitionError(f"{where}: format {fmt} sends to the {needed} channel, but the audience's channel "
                              f"is {channel} (its consent is what counts)")


def load_file(path: Path) -> Audience:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DefinitionError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from exc
    audience = parse_definition(raw, str(path))
    if audience.name != path.stem:
        raise DefinitionError(f"{path}: name {audience.name!r} must match the file name {path.stem!r}")
    return Audience(**{**audience.__dict__, "source": path})


def load_all(directory: Path = AUDIENCES_DIR) -> dict[str, Audience]:
    """Every ``*.yml`` definition in ``directory`` by name (the first invalid one raises)."""
    return {a.name: a for a in (load_file(p) for p in sorted(directory.glob("*.yml")))}


def load(name: str, directory: Path = AUDIENCES_DIR) -> Audience:
    if not NAME_RE.match(name or ""):
        raise DefinitionError(f"invalid audience name {name!r}")
    path = directory / f"{name}.yml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yml"))) or "none"
        raise DefinitionError(f"no audience named {name!r} in {directory} (known: {known})")
    return load_file(path)


def as_of_param(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise DefinitionError(f"as-of date must be YYYY-MM-DD, got {value!r}") from exc
