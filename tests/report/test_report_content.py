"""What the run report says, checked against the warehouse it was built from (no browser needed)."""

from __future__ import annotations

import re
from dataclasses import replace

import duckdb

from loyalist import pipeline, runlog
from loyalist.pipeline import published_path
from loyalist.report import write_report
from loyalist.report.data import ACTIVE_STAGES

from .conftest import AS_OF


def _text(path) -> str:
    return path.read_text(encoding="utf-8")


def test_report_is_one_self_contained_file_per_run(reported_run):
    report = reported_run.report
    assert report.name == f"run-{AS_OF}.html"
    html = _text(report)
    assert _text(report.with_name("latest.html")) == html
    assert '<meta charset="utf-8">' in html
    assert html.count("Plotly.newPlot") >= 12
    # plotly.js inline exactly once, and nothing fetched from elsewhere
    assert len(re.findall(r"<script[^>]*\bsrc=", html)) == 0
    assert len(re.findall(r"<link[^>]*\bhref=", html)) == 0
    assert html.count("plotly.js v") <= 2  # the library banner, once (plus its licence header)


def test_headline_numbers_match_the_published_warehouse(reported_run):
    html = _text(reported_run.report)
    with duckdb.connect(str(published_path(reported_run.settings)), read_only=True) as con:
        customers, active = con.execute(
            "select count(*) filter (where not is_prospect), count(*) filter (where lifecycle_stage in "
            "(select unnest(?))) from marts.customers", [list(ACTIVE_STAGES)]).fetchone()
        loaded = con.execute("select sum(rows_loaded) from raw._load_manifest where batch_id = 'report-test'"
                             ).fetchone()[0]
        scored = con.execute("select count(*) from ml.churn_scores").fetchone()[0]
    assert f'<div class="kpi-value">{customers:,}</div>' in html
    assert f'<div class="kpi-value">{active:,}</div>' in html
    assert f'<div class="kpi-value">{loaded:,}</div>' in html
    assert f"Scored {scored:,} customers as of {AS_OF}" in html
    assert "ROC AUC" in html and "recency baseline" in html


def test_run_health_shows_validations_and_step_durations(reported_run):
    html = _text(reported_run.report)
    steps = [s["step"] for s in runlog.latest_run(reported_run.settings)]
    assert steps[:8] == ["ingest", "validate_raw", "classify_feedback", "dbt_build", "score", "rewards",
                         "validate_outputs", "publish"]
    assert "dbt_docs" in steps
    assert "raw_orders" in html and "marts_customers" in html  # GX suites of this run, by name
    assert re.search(r'kpi-value">\d+ passed / 0 failed<', html)


def test_topics_and_audience_sizes_come_from_the_marts_and_the_definitions(reported_run):
    """The topic chart sums marts.feedback_topics_monthly; audience sizes are the exports' own counts."""
    from loyalist.audiences.export import audience_sizes
    from loyalist.report import data

    html = _text(reported_run.report)
    with duckdb.connect(str(published_path(reported_run.settings)), read_only=True) as con:
        top = con.execute(f"""
            select topic, sum(feedback_items) from marts.feedback_topics_monthly
            where feedback_month >= date_trunc('month', date '{AS_OF}') - interval {data.TOPIC_MONTHS - 1} month
            group by 1 order by 2 desc, 1 limit 1""").fetchone()
        sizes = audience_sizes(reported_run.settings, con)
    assert top is not None and top[1] > 0
    assert re.search(rf"<td>{re.escape(top[0])}</td><td>[^<]*</td><td[^>]*>{int(top[1]):,}</td>", html), top
    assert "No classified feedback" not in html and "No audience definitions" not in html
    assert len(sizes) >= 3  # the example definitions in audiences/
    for row in sizes.itertuples():
        assert row.audience in html
        if row.members is not None and row.members == row.members:  # not NaN: counted
            cells = rf"<td>{re.escape(row.audience)}</td><td>{row.channel}</td><td[^>]*>{int(row.members):,}</td>"
            assert re.search(cells, html), row


def test_an_empty_warehouse_gives_a_report_that_says_so(reported_run, tmp_path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    report = write_report(reported_run.settings, empty, tmp_path / "reports")
    assert report.name == "run-empty.html"
    assert "no marts.customers yet" in _text(report)


def test_the_report_step_rebuilds_dbt_docs_only_when_the_project_changes(reported_run):
    settings = reported_run.settings
    docs = settings.data_dir / "docs" / "dbt" / "static_index.html"
    before = docs.stat().st_mtime_ns
    assert pipeline.write_run_report(settings, AS_OF) == reported_run.report
    assert docs.stat().st_mtime_ns == before  # same project, target and warehouse: docs kept
    assert pipeline.dbt_project_fingerprint(replace(settings, dbt_target="postgres")) != \
        pipeline.dbt_project_fingerprint(settings)
