"""Builders for tiny hand-made inputs of the ML features (times as ISO strings, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ml.data import Inputs


def t(iso: str) -> float:
    """ISO time (UTC if no offset) -> days since the epoch, the unit of every ``t`` column."""
    ts = datetime.fromisoformat(iso)
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.timestamp() / 86400.0


def transactions(*rows: dict) -> pd.DataFrame:
    """Rows with customer_id, at (ISO), net_amount; optional type, status, channel, discount, points, order_id."""
    out = []
    for i, r in enumerate(rows):
        net = float(r["net_amount"])
        discount = float(r.get("discount", 0.0))
        out.append({
            "customer_id": r["customer_id"], "order_id": r.get("order_id", f"O{i}"), "t": t(r["at"]),
            "transaction_type": r.get("type", "refund" if net < 0 else "sale"),
            "status": r.get("status", "completed"), "channel": r.get("channel", "web"),
            "gross_amount": net + discount, "discount_amount": discount, "net_amount": net,
            "points_earned": float(r.get("points_earned", 0)), "points_redeemed": float(r.get("points_redeemed", 0)),
        })
    return pd.DataFrame(out)


def feedback(*rows: dict) -> pd.DataFrame:
    """Rows with customer_id, type, created (ISO); optional score, status, resolved, updated, responded, text,
    language."""
    out = []
    for r in rows:
        out.append({
            "customer_id": r["customer_id"], "feedback_type": r["type"], "score": float(r.get("score", np.nan)),
            "status": r.get("status"), "t_created": t(r["created"]),
            "t_resolved": t(r["resolved"]) if r.get("resolved") else np.nan,
            "t_updated": t(r.get("updated", r["created"])),
            "t_first_response": t(r["responded"]) if r.get("responded") else np.nan,
            "text": r.get("text"), "language": r.get("language"),
        })
    return pd.DataFrame(out)


def inputs(tx: pd.DataFrame, fb: pd.DataFrame | None = None, **other) -> Inputs:
    return Inputs(transactions=tx, feedback=fb, **other)


def weekly_orders(customer_id: str, first: str, count: int, every_days: int = 7, amount: float = 100.0) -> list[dict]:
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    return [{"customer_id": customer_id, "at": (start + pd.Timedelta(days=every_days * k)).isoformat(),
             "net_amount": amount} for k in range(count)]
