"""The run report in a real browser: Debian's headless Chromium driven by Playwright, offline, via file://.

Fails (never skips) when Chromium is missing: .ci/run installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loyalist.config import PROJECT_ROOT

CHROMIUM = os.environ.get("LOYALIST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_report_renders_every_chart_offline_without_errors(reported_run, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors, failed, requested = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("request", lambda r: requested.append(r.url))
    page.goto(reported_run.report.as_uri(), wait_until="load")
    page.wait_for_function("window.Plotly !== undefined && document.querySelectorAll('.chart').length > 0")

    charts = page.eval_on_selector_all(".chart", """els => els.map(e => ({
        id: e.querySelector('.plotly-graph-div') && e.querySelector('.plotly-graph-div').id,
        svgs: e.querySelectorAll('svg.main-svg').length,
        marks: e.querySelectorAll('.trace, .sankey, .hm, image').length,
        width: e.getBoundingClientRect().width}))""")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)

    assert errors == [], errors
    assert failed == [], failed
    assert requested == [reported_run.report.as_uri()], "the report must load nothing besides itself"
    # Every section with data draws its charts: RFM (2), lifecycle (3), churn (3), feedback (1), rewards (1),
    # run health (2).
    assert len(charts) >= 12, charts
    for chart in charts:
        assert chart["svgs"] >= 1 and chart["marks"] >= 1 and chart["width"] > 200, chart
    body = page.inner_text("body")
    for heading in ("Headline as of 2025-03-31", "RFM segments", "Lifecycle", "Churn risk", "Feedback",
                    "Rewards and audiences", "Run health", "Detailed documentation"):
        assert heading in body
    # Chinese feedback text reaches the page as text (the font stack has CJK fallbacks; see the screenshot).
    assert any("\u4e00" <= ch <= "\u9fff" for ch in page.inner_text("#feedback"))
    page.close()


def test_report_links_open_dbt_docs_and_gx_data_docs(reported_run, browser):
    page = browser.new_page()
    page.goto(reported_run.report.as_uri())
    hrefs = page.eval_on_selector_all("#docs a", "els => els.map(a => a.href)")
    assert len(hrefs) == 2
    for href in hrefs:
        assert href.startswith("file://") and Path(href.removeprefix("file://")).exists(), href
    # dbt's static page carries its manifest and catalog inside: it shows our models and columns from file://.
    page.goto(hrefs[0] + "#!/model/model.loyalist.customers")
    page.wait_for_function("document.body.innerText.includes('lifecycle_stage')", timeout=30_000)
    page.close()
