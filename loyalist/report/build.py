"""Assemble the run report: one self-contained HTML file (inline CSS and plotly.js, no network needed).

``write_report(settings, database, out_dir)`` reads a warehouse (by default the published copy) and the
run log, and writes ``run-<as-of>.html`` plus ``latest.html`` into ``out_dir`` (``data/reports``).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from loyalist import runlog
from loyalist.config import Settings
from loyalist.report import charts, data
from loyalist.warehouse import connect

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"]}
VALIDATION_LINE = re.compile(r"^(?P<suite>[^:]+): (?P<status>passed|FAILED) \((?P<n>\d+) expectations\)")


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports"


def dbt_docs_dir(settings: Settings) -> Path:
    return settings.data_dir / "docs" / "dbt"


def gx_docs_index(settings: Settings) -> Path:
    from loyalist.pipeline import gx_project_root

    return gx_project_root(settings) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


@dataclass
class Page:
    """The report being built: sections of HTML, and a counter so every chart gets its own div id."""

    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, title, body)
    charts: int = 0

    def chart(self, fig) -> str:
        self.charts += 1
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{self.charts}",
                          config=PLOTLY_CONFIG)
        return f'<div class="chart">{div}</div>'

    def add(self, anchor: str, title: str, *parts: str) -> None:
        self.sections.append((anchor, title, "\n".join(p for p in parts if p)))


def _e(value) -> str:
    return html.escape(str(value))


def note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{_e(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            shown = "" if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) else (
                format(value, formats[column]) if column in formats else value)
            cls = ' class="num"' if isinstance(value, int | float) and not isinstance(value, bool) else ""
            cells.append(f"<td{cls}>{_e(shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</div>")


def kpi_cards(cards: list[tuple[str, str, str]]) -> str:
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><div class="kpi-label">{_e(label)}</div><div class="kpi-value">{_e(value)}</div>'
        f'<div class="kpi-note">{_e(sub)}</div></div>' for label, value, sub in cards) + "</div>"


def grid(*parts: str) -> str:
    return '<div class="grid">' + "".join(p for p in parts if p) + "</div>"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"¥{value:,.0f}"


def _overview(page: Page, wh: data.Warehouse, as_of: date, scores: pd.DataFrame | None,
              rewards: pd.DataFrame | None) -> None:
    k = data.kpis(wh, as_of)
    if k is None:
        page.add("overview", "Headline", note("marts.customers is not in this warehouse: no KPIs."))
        return
    cards = [
        ("Customers", f"{k.customers:,}", f"plus {k.prospects:,} prospects without a purchase"),
        ("Active customers", f"{k.active:,}",
         f"{k.active / k.customers:.0%} of customers (stages {', '.join(data.ACTIVE_STAGES)})" if k.customers
         else "no customers yet"),
        (f"Net revenue, last {data.KPI_WINDOW_DAYS} days", _money(k.revenue_window),
         f"{_money(k.revenue_lifetime)} since the first order"),
        (f"NPS, last {data.NPS_WINDOW_DAYS} days", "n/a" if k.nps is None else f"{k.nps:+.0f}",
         f"{k.nps_responses:,} NPS answers"),
    ]
    if scores is not None:
        high = int((scores["risk_band"] == "high").sum())
        cards.append(("High churn risk", f"{high:,}", f"{high / len(scores):.0%} of {len(scores):,} scored customers"))
    if rewards is not None:
        cards.append(("Rewards sent", f"{int(rewards['contacted'].sum()):,}",
                      f"{_money(float(rewards['cost'].fillna(0).sum()))} spent"))
    page.add("overview", f"Headline as of {as_of}", kpi_cards(cards))


def _segments(page: Page, wh: data.Warehouse) -> None:
    segments, grid_counts = data.rfm_segments(wh), data.rfm_grid(wh)
    if segments is None or grid_counts is None or not len(segments):
        page.add("segments", "RFM segments", note("RFM segments are not available in this warehouse."))
        return
    page.add("segments", "RFM segments",
             '<p class="lead">Who buys recently, often and much: the named segments marketing targets, and how '
             "customers spread over recency and frequency scores (top right = best).</p>",
             grid(page.chart(charts.rfm_segments(segments)), page.chart(charts.rfm_heatmap(grid_counts))))


def _lifecycle(page: Page, wh: data.Warehouse) -> None:
    funnel, trend, flows = data.lifecycle_funnel(wh), data.lifecycle_trend(wh), data.lifecycle_flows(wh)
    if funnel is None or not len(funnel):
        page.add("lifecycle", "Lifecycle", note("Lifecycle marts are not available in this warehouse."))
        return
    parts = [page.chart(charts.lifecycle_funnel(funnel, "latest month"))]
    if trend is not None and len(trend):
        parts.append(page.chart(charts.lifecycle_trend(trend)))
    sankey = (page.chart(charts.lifecycle_sankey(*flows)) if flows is not None and len(flows[0])
              else note("No stage-to-stage moves in the recent months."))
    conversions = funnel[funnel["conversion_rate"].notna()][["funnel_previous_stage", "lifecycle_stage",
                                                             "conversion_rate"]]
    conversions = conversions.rename(columns={"funnel_previous_stage": "from (end of previous month)",
                                              "lifecycle_stage": "to (end of latest month)"})
    page.add("lifecycle", "Lifecycle", grid(*parts), sankey,
             ("<h3>Month-over-month conversion from each stage's predecessor</h3>"
              + table(conversions, {"conversion_rate": ".1%"})) if len(conversions) else "")


def _churn(page: Page, scores: pd.DataFrame | None, evaluation: pd.DataFrame | None) -> None:
    if scores is None:
        page.add("churn", "Churn risk", note("No churn scores yet (scoring needs 3 × churn_after_days of history "
                                             "and a model that beats its baselines)."))
        return
    bands = scores["risk_band"].value_counts().reindex(["high", "medium", "low"]).fillna(0).astype(int)
    parts = [f'<p class="lead">Scored {len(scores):,} customers as of {scores["as_of_date"].iloc[0]:%Y-%m-%d}: '
             + ", ".join(f"{n:,} {band}" for band, n in bands.items()) + " risk.</p>",
             grid(page.chart(charts.churn_histogram(scores)))]
    if evaluation is not None and evaluation.index.str.startswith("calibration_").any():
        first = evaluation.iloc[0]
        auc = evaluation.loc["roc_auc"] if "roc_auc" in evaluation.index else None
        if auc is not None:
            parts.append(f'<p class="lead">Evaluation of model {_e(first["model_version"])} on the window from '
                         f'{first["evaluated_at_cutoff"]:%Y-%m-%d} ({int(first["n_customers"]):,} customers; '
                         f'{"promoted" if first["promoted"] else "not promoted"}): ROC AUC {auc["model"]:.3f} vs '
                         f'recency baseline {auc["recency"]:.3f} and heuristic {auc["heuristic"]:.3f}.</p>')
        parts.append(grid(page.chart(charts.calibration(evaluation)), page.chart(charts.lift(evaluation))))
    else:
        parts.append(note("No calibration points in ml.model_evaluations yet: they are written when the model is "
                          "next trained (weekly retrain, or the first scoring)."))
    page.add("churn", "Churn risk", *parts)


def _feedback(page: Page, wh: data.Warehouse, as_of: date) -> None:
    trend = data.feedback_trend(wh, as_of)
    parts = []
    if trend is not None and len(trend):
        parts.append(grid(page.chart(charts.feedback_trend(trend))))
    else:
        parts.append(note("No NPS or CSAT answers in this warehouse."))
    found = data.feedback_topics(wh, as_of)
    if found is not None and len(found):
        parts.append(grid(page.chart(charts.topics(found, data.TOPIC_MONTHS)),
                          table(found, {"mentions": ",.0f", "negative": ",.0f"})))
    else:
        parts.append(note("No classified feedback in this warehouse (marts.feedback_topics_monthly)."))
    comments = data.recent_comments(wh, as_of)
    if comments is not None and len(comments):
        parts.append("<h3>Latest unhappy feedback, verbatim</h3>" + table(comments))
    page.add("feedback", "Feedback", *parts)


def _rewards_and_audiences(page: Page, wh: data.Warehouse, rewards: pd.DataFrame | None,
                           settings: Settings) -> None:
    parts = []
    if rewards is not None:
        from ml.rewards import load_rules

        budget = load_rules().budget_cny
        spent = float(rewards["cost"].fillna(0).sum())
        parts.append(f'<p class="lead">Run of {rewards["as_of_date"].iloc[0]:%Y-%m-%d}: '
                     f'{int(rewards["contacted"].sum()):,} customers contacted, {int(rewards["control"].sum()):,} '
                     f"held out as control; {_money(spent)} of the {_money(budget)} budget spent "
                     f"({spent / budget:.0%}).</p>" if budget else "")
        parts.append(grid(page.chart(charts.rewards(rewards)),
                          table(rewards.drop(columns="as_of_date"), {"cost": ",.0f"})))
    else:
        parts.append(note("No reward eligibility in this warehouse."))
    found = data.audiences(wh, settings)
    if found is not None and found["members"].notna().any():
        parts.append(grid(page.chart(charts.audiences(found)), table(found, {"members": ",.0f"})))
    elif found is not None:
        parts.append("<h3>Audiences</h3>" + table(found, {"members": ",.0f"}))
    else:
        parts.append(note("No audience definitions (audiences/*.yml)."))
    page.add("rewards", "Rewards and audiences", *parts)


def _validations(steps: list[dict]) -> pd.DataFrame:
    rows = []
    for s in steps:
        if not s.get("step", "").startswith("validate"):
            continue
        lines = s.get("detail") if isinstance(s.get("detail"), list) else []
        if s.get("status") == "failed":
            rows.append({"step": s["step"], "suite": "(step failed)", "status": "FAILED", "expectations": None})
        for line in lines:
            m = VALIDATION_LINE.match(str(line))
            if m:
                rows.append({"step": s["step"], "suite": m["suite"], "status": m["status"],
                             "expectations": int(m["n"])})
    return pd.DataFrame(rows, columns=["step", "suite", "status", "expectations"])


def _health(page: Page, wh: data.Warehouse, steps: list[dict]) -> None:
    parts = []
    loads = data.load_health(wh)
    if loads is not None and len(loads):
        batch = loads["batch_id"].iloc[0]
        loaded, quarantined = int(loads["loaded"].sum()), int(loads["quarantined"].sum())
        validations = _validations(steps)
        passed = int((validations["status"] == "passed").sum())
        failed = int((validations["status"] == "FAILED").sum())
        seconds = sum(float(s.get("seconds") or 0) for s in steps)
        parts.append(kpi_cards([
            ("Rows loaded (latest batch)", f"{loaded:,}", f"batch {batch}"),
            ("Rows quarantined", f"{quarantined:,}",
             f"{quarantined / max(loaded + quarantined, 1):.2%} of rows read"),
            ("Validation suites", f"{passed} passed / {failed} failed" if len(validations) else "n/a",
             f"{int(validations['expectations'].fillna(0).sum()):,} expectations (GX)" if len(validations)
             else "no run log for this warehouse"),
            ("Pipeline time", f"{seconds:,.0f}s" if steps else "n/a", f"{len(steps)} steps logged"),
        ]))
        parts.append(grid(page.chart(charts.load_health(loads)),
                          table(loads.drop(columns="batch_id"))))
        reasons = data.quarantine_reasons(wh)
        if reasons is not None and len(reasons):
            parts.append("<h3>Most frequent quarantine reasons (all batches)</h3>" + table(reasons))
        if len(validations):
            parts.append("<h3>Validation results of this run</h3>" + table(validations))
    else:
        parts.append(note("No load manifest in this warehouse."))
    if steps:
        frame = pd.DataFrame([{"step": s["step"], "seconds": float(s.get("seconds") or 0),
                               "status": s.get("status", "")} for s in steps])
        parts.append(grid(page.chart(charts.durations(frame)),
                          table(frame.assign(started_at=[s.get("started_at", "")[:19] for s in steps]),
                                {"seconds": ".1f"})))
    else:
        parts.append(note("No run log found (data/runs/steps.jsonl): step durations are unknown."))
    page.add("health", "Run health", *parts)


def _links(report_dir: Path, settings: Settings) -> str:
    targets = [("dbt docs (models, columns, tests, lineage)", dbt_docs_dir(settings) / "static_index.html",
                "built by the report step with dbt docs generate --static"),
               ("GX Data Docs (validation results)", gx_docs_index(settings), "built by the validation steps")]
    items = []
    for label, target, how in targets:
        rel = Path(os.path.relpath(target, report_dir)).as_posix()
        state = "" if target.exists() else " — not built yet"
        items.append(f'<li><a href="{_e(rel)}">{_e(label)}</a> <span class="small">({_e(how)}{state})</span></li>')
    return "<ul>" + "".join(items) + "</ul>"


STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font-family: FONT; color: #0f172a; background: #f1f5f9; line-height: 1.45; }
header { background: #0f172a; color: white; padding: 18px 28px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; color: #cbd5e1; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 5; background: white; border-bottom: 1px solid #e2e8f0; padding: 8px 28px; }
nav a { margin-right: 16px; color: #2563eb; text-decoration: none; font-size: 14px; }
main { padding: 8px 28px 40px; max-width: 1400px; margin: 0 auto; }
section { background: white; border-radius: 10px; padding: 16px 20px; margin: 18px 0;
          box-shadow: 0 1px 2px rgba(15, 23, 42, 0.08); }
h2 { margin: 0 0 10px; font-size: 18px; } h3 { font-size: 14px; margin: 18px 0 6px; color: #334155; }
.lead { margin: 4px 0 10px; color: #334155; } .small { color: #64748b; font-size: 12px; }
.note { background: #fefce8; border-left: 4px solid #eab308; padding: 8px 12px; color: #713f12; margin: 10px 0; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.kpi { border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 14px; }
.kpi-label { font-size: 12px; color: #64748b; text-transform: uppercase; letter-spacing: .03em; }
.kpi-value { font-size: 26px; font-weight: 600; margin: 2px 0; } .kpi-note { font-size: 12px; color: #475569; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 14px; align-items: start; }
.chart { min-height: 200px; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { background: #f8fafc; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def render(page: Page, as_of: date | None, database: Path, links: str) -> str:
    nav = "".join(f'<a href="#{a}">{_e(t.split(" as of")[0])}</a>' for a, t, _ in page.sections)
    body = "".join(f'<section id="{a}"><h2>{_e(t)}</h2>{b}</section>' for a, t, b in page.sections)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Loyalist run report {_e(as_of or "")}</title>
<style>{STYLE.replace("FONT", charts.FONT_STACK)}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<header><h1>Loyalist run report — {_e(as_of or "no data")}</h1>
<p>Generated {generated} from {_e(database.name)} · {page.charts} charts</p></header>
<nav>{nav}<a href="#docs">Docs</a></nav>
<main>
{body}
<section id="docs"><h2>Detailed documentation</h2>{links}</section>
</main>
</body>
</html>
"""


def build_page(con, steps: list[dict], settings: Settings) -> tuple[Page, date | None]:
    wh = data.Warehouse(con)
    page = Page()
    as_of = data.as_of_date(wh)
    if as_of is None:
        page.add("overview", "Headline", note("This warehouse has no marts.customers yet: run the pipeline first."))
        _health(page, wh, steps)
        return page, None
    scores, rewards = data.churn_scores(wh), data.rewards(wh)
    _overview(page, wh, as_of, scores, rewards)
    _segments(page, wh)
    _lifecycle(page, wh)
    _churn(page, scores, data.churn_evaluation(wh))
    _feedback(page, wh, as_of)
    _rewards_and_audiences(page, wh, rewards, settings)
    _health(page, wh, steps)
    return page, as_of


def write_report(settings: Settings, database: Path | None = None, out_dir: Path | None = None) -> Path:
    """Write ``run-<as-of>.html`` and ``latest.html``; return the dated file's path."""
    from loyalist.pipeline import published_path

    database = Path(database) if database else published_path(settings)
    if not database.exists():
        raise FileNotFoundError(f"no warehouse at {database}: run the pipeline (loyalist run) first")
    out_dir = Path(out_dir) if out_dir else reports_dir(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    with connect(settings, database, read_only=True) as con:
        page, as_of = build_page(con, runlog.latest_run(settings), settings)
    text = render(page, as_of, database, _links(out_dir, settings))
    target = out_dir / f"run-{as_of or 'empty'}.html"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)  # readers never see half a report
    shutil.copyfile(target, out_dir / "latest.tmp")
    os.replace(out_dir / "latest.tmp", out_dir / "latest.html")
    return target
