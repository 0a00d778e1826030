"""Plotly figures of the run report: one small function per chart, data in, figure out (no I/O)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Latin first, then CJK fallbacks on every platform (Linux: Noto/WenQuanYi, macOS: PingFang, Windows: YaHei),
# so Chinese feedback text and topic names render wherever the file is opened.
FONT_STACK = ('-apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans CJK SC", "Noto Sans SC", '
              '"Source Han Sans SC", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Zen Hei", '
              '"WenQuanYi Micro Hei", sans-serif')
BLUE, ORANGE, GREY, GREEN, RED = "#2563eb", "#f97316", "#9ca3af", "#16a34a", "#dc2626"
SERIES = {"model": BLUE, "recency": ORANGE, "heuristic": GREY}
STAGE_COLOURS = {"prospect": "#cbd5e1", "new": "#93c5fd", "active": "#2563eb", "loyal": "#1e3a8a",
                 "at_risk": "#f59e0b", "churned": "#dc2626", "reactivated": "#16a34a"}


def _layout(fig: go.Figure, title: str, height: int = 360, **kwargs) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 15}}, height=height,
                      margin={"l": 60, "r": 20, "t": 50, "b": 50}, font={"family": FONT_STACK, "size": 12},
                      paper_bgcolor="white", plot_bgcolor="#f8fafc", legend={"orientation": "h", "y": -0.18},
                      **kwargs)
    return fig


def rfm_segments(segments: pd.DataFrame) -> go.Figure:
    ordered = segments.sort_values("customers")
    fig = go.Figure(go.Bar(x=ordered["customers"], y=ordered["segment"], orientation="h", marker_color=BLUE,
                           text=ordered["customers"], textposition="auto"))
    return _layout(fig, "Customers per RFM segment", xaxis_title="customers")


def rfm_heatmap(grid: pd.DataFrame) -> go.Figure:
    pivot = grid.pivot_table(index="r_score", columns="f_score", values="customers", fill_value=0).sort_index()
    fig = go.Figure(go.Heatmap(z=pivot.to_numpy(), x=[str(c) for c in pivot.columns],
                               y=[str(r) for r in pivot.index], colorscale="Blues", text=pivot.to_numpy(),
                               texttemplate="%{text}", hovertemplate="R %{y} × F %{x}: %{z} customers"
                                                                     "<extra></extra>"))
    return _layout(fig, "Recency × frequency (customers per score cell)", xaxis_title="frequency score (5 = most)",
                   yaxis_title="recency score (5 = most recent)")


def lifecycle_funnel(funnel: pd.DataFrame, month_label: str) -> go.Figure:
    # Bars in funnel order (seed lifecycle_stages): later stages are not subsets of earlier ones, so a
    # narrowing funnel shape would mislead; the conversion rates are in the table below the charts.
    fig = go.Figure(go.Bar(x=funnel["customers"], y=funnel["lifecycle_stage"], orientation="h",
                           marker_color=[STAGE_COLOURS.get(s, GREY) for s in funnel["lifecycle_stage"]],
                           text=funnel["customers"], textposition="auto"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"Lifecycle funnel: customers per stage ({month_label})", xaxis_title="customers")


def lifecycle_trend(trend: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for stage, part in trend.sort_values("stage_order").groupby("lifecycle_stage", sort=False):
        fig.add_trace(go.Bar(x=part["month"], y=part["customers"], name=stage,
                             marker_color=STAGE_COLOURS.get(stage, GREY)))
    return _layout(fig, "Lifecycle stages at each month end", barmode="stack", yaxis_title="customers")


def lifecycle_sankey(flows: pd.DataFrame, since: date) -> go.Figure:
    # Sources on the left ("from …"), targets on the right ("to …"): a stage can be both without cycles.
    order = list(STAGE_COLOURS)
    left = sorted(flows["from_stage"].unique(), key=lambda s: (order.index(s) if s in order else len(order), s))
    right = sorted(flows["to_stage"].unique(), key=lambda s: (order.index(s) if s in order else len(order), s))
    labels = [f"from {s}" for s in left] + [f"to {s}" for s in right]
    colours = [STAGE_COLOURS.get(s, GREY) for s in left + right]
    fig = go.Figure(go.Sankey(
        node={"label": labels, "color": colours, "pad": 14, "thickness": 16},
        link={"source": [left.index(s) for s in flows["from_stage"]],
              "target": [len(left) + right.index(s) for s in flows["to_stage"]],
              "value": flows["customers"].tolist(), "color": "rgba(37, 99, 235, 0.25)"}))
    return _layout(fig, f"Stage-to-stage moves since {since:%Y-%m}", height=420)


def churn_histogram(scores: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Histogram(x=scores["churn_probability"], xbins={"start": 0, "end": 1, "size": 0.05},
                                 marker_color=BLUE))
    return _layout(fig, "Churn probability of scored customers", xaxis_title="churn probability",
                   yaxis_title="customers", bargap=0.05)


def _series(evaluation: pd.DataFrame, prefix: str) -> pd.DataFrame:
    rows = evaluation[evaluation.index.str.startswith(prefix)].sort_index()
    return rows[[c for c in SERIES if c in rows.columns]]


def calibration(evaluation: pd.DataFrame) -> go.Figure:
    predicted = _series(evaluation, "calibration_predicted_")
    observed = _series(evaluation, "calibration_observed_")
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                               line={"dash": "dot", "color": "#64748b"}))
    for name in predicted.columns:
        fig.add_trace(go.Scatter(x=predicted[name].to_numpy(), y=observed[name].to_numpy(), mode="lines+markers",
                                 name=name if name == "model" else f"{name} baseline",
                                 line={"color": SERIES[name]}))
    return _layout(fig, "Calibration: predicted vs observed churn (tenths of customers)",
                   xaxis_title="mean predicted probability", yaxis_title="observed churn rate",
                   xaxis_range=[0, 1], yaxis_range=[0, 1])


def lift(evaluation: pd.DataFrame) -> go.Figure:
    lifts = _series(evaluation, "lift_decile_")
    deciles = [str(int(m.rsplit("_", 1)[1])) for m in lifts.index]
    fig = go.Figure()
    for name in lifts.columns:
        fig.add_trace(go.Bar(x=deciles, y=lifts[name].to_numpy(), name=name if name == "model" else f"{name} baseline",
                             marker_color=SERIES[name]))
    fig.add_hline(y=1, line_dash="dot", line_color="#64748b")
    return _layout(fig, "Lift by score decile (1 = highest scores)", barmode="group", xaxis_title="decile",
                   yaxis_title="churn rate / overall rate")


def feedback_trend(trend: pd.DataFrame) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=trend["month"], y=trend["nps"], name="NPS", mode="lines+markers",
                             connectgaps=True, line={"color": BLUE}), secondary_y=False)
    fig.add_trace(go.Scatter(x=trend["month"], y=trend["csat"], name="CSAT % satisfied", mode="lines+markers",
                             connectgaps=True, line={"color": ORANGE}), secondary_y=True)
    fig.update_yaxes(title_text="NPS (−100..100)", range=[-100, 100], secondary_y=False)
    fig.update_yaxes(title_text="CSAT (% 4–5 of 5)", range=[0, 100], secondary_y=True)
    return _layout(fig, "NPS and CSAT per month")


def topics(frame: pd.DataFrame, months: int) -> go.Figure:
    ordered = frame.sort_values("mentions")
    labels = ordered["topic"].astype(str) + " (" + ordered["dimension"].astype(str) + ")"
    fig = go.Figure([go.Bar(x=ordered["negative"].fillna(0), y=labels, orientation="h", name="negative",
                            marker_color=RED),
                     go.Bar(x=ordered["mentions"] - ordered["negative"].fillna(0), y=labels, orientation="h",
                            name="neutral or positive", marker_color=ORANGE)])
    return _layout(fig, f"Top feedback topics, 4C dimension in brackets (last {months} months)", barmode="stack",
                   xaxis_title="feedback items")


def rewards(frame: pd.DataFrame) -> go.Figure:
    fig = go.Figure([go.Bar(x=frame["reward_type"], y=frame["contacted"], name="contacted", marker_color=BLUE),
                     go.Bar(x=frame["reward_type"], y=frame["control"], name="control group (not contacted)",
                            marker_color=GREY)])
    return _layout(fig, "Rewards in the latest run", barmode="group", yaxis_title="customers")


def audiences(frame: pd.DataFrame) -> go.Figure:
    frame = frame[frame["members"].notna()]
    fig = go.Figure(go.Bar(x=frame["audience"], y=frame["members"], marker_color=GREEN))
    return _layout(fig, "Audience sizes", yaxis_title="members")


def load_health(frame: pd.DataFrame) -> go.Figure:
    fig = go.Figure([go.Bar(x=frame["entity"], y=frame["loaded"], name="loaded", marker_color=GREEN),
                     go.Bar(x=frame["entity"], y=frame["quarantined"], name="quarantined", marker_color=RED)])
    return _layout(fig, "Rows loaded and quarantined in the latest batch", barmode="group", yaxis_type="log",
                   yaxis_dtick=1, yaxis_title="rows (log scale)")


def durations(steps: pd.DataFrame) -> go.Figure:
    colours = {"success": GREEN, "skipped": GREY, "failed": RED}
    # numbered, so a retried step shows as two bars instead of one stacked bar
    labels = [f"{i}. {step}" for i, step in enumerate(steps["step"], start=1)]
    fig = go.Figure(go.Bar(x=steps["seconds"], y=labels, orientation="h",
                           marker_color=[colours.get(s, GREY) for s in steps["status"]],
                           text=[f"{s:.1f}s" for s in steps["seconds"]], textposition="auto"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Step durations of the latest run", xaxis_title="seconds", height=320)
