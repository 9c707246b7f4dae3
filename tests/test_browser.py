"""The dashboard in a real browser: Voila serves notebooks/dashboard.ipynb, headless Chromium drives it.

One walk through the product, as a person would do it: generate a tiny dataset, launch a tiny CPU
run and watch its curves and progress, cancel a second run, compare before/after, export. Each
step leaves a screenshot in docs/screenshots/ (or $OCRTRAIN_TEST_SHOTS). Served by `ocrtrain dashboard`,
as a user starts it. Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import re

import pytest

from browser_support import cancel_active_runs, chromium_page, needs_chromium, open_tab, serve_dashboard, \
    set_field, set_text, shot, wait_until

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(900),  # the walk trains twice and its first job renders the replay lines
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("ocrtrain-home")
    with serve_dashboard(home, home.parent / f"{home.name}-dashboard.log") as url:
        try:
            yield url, home
        finally:
            cancel_active_runs(home)  # jobs outlive the server: stop ours


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        yield page


def progress_state(page) -> dict:
    span = page.locator(".ocrtrain-run-progress-text span[data-state]")
    if not span.count():
        return {}
    return {"state": span.get_attribute("data-state"), "step": int(span.get_attribute("data-step") or 0),
            "max_steps": int(span.get_attribute("data-max-steps") or 0)}


def curve_points(page) -> int:
    """Points of the train-loss line (the first trace of the first subplot) in the live SVG."""
    path = page.locator(".ocrtrain-curves .scatterlayer .trace").first.locator("path.js-line")
    if not path.count():
        return 0
    d = path.first.get_attribute("d") or ""
    return len(re.findall(r"[ML]", d))


def val_points(page) -> int:
    """The most markers any validation trace draws in the live SVG (step 0 + each validation)."""
    counts = page.locator(".ocrtrain-curves .scatterlayer .trace").evaluate_all(
        "traces => traces.map(t => t.querySelectorAll('path.point').length)")
    return max(counts or [0])


def test_walk_from_word_list_to_export(server, page):
    url, home = server
    page.goto(url)
    page.wait_for_selector(".ocrtrain-workbench .ocrtrain-generate")
    assert page.locator(".lm-TabBar-tab").count() == 6
    assert not page.locator(".jp-OutputArea-output pre:has-text('Traceback')").count()

    # 1. Dataset: a tiny synthetic dataset from the built-in corpus, previewed, generated, audited.
    set_field(page, ".ocrtrain-dataset", "count", 60)
    page.locator(".ocrtrain-form-synthconfig .ocrtrain-section-split .jupyter-widget-Collapse-header").click()
    set_field(page, ".ocrtrain-form-synthconfig .ocrtrain-section-split", "test_fraction", 0.25)
    page.locator(".ocrtrain-preview").click()
    wait_until(lambda: page.locator(".ocrtrain-preview-item img").count() == 8, timeout=60)
    shot(page, "01-dataset-preview")
    set_text(page, ".ocrtrain-dataset-name", "tiny")
    page.locator(".ocrtrain-generate").click()
    page.wait_for_selector(".ocrtrain-audit-summary h4", timeout=120_000)
    assert "wrote tiny" in page.locator(".ocrtrain-generate-status").inner_text()
    assert "not in english_g2" in page.locator(".ocrtrain-audit-summary").inner_text()
    page.wait_for_selector(".ocrtrain-audit-charts .js-plotly-plot")
    shot(page, "02-dataset-audit")
    manifest = home / "datasets" / "tiny" / "manifest.json"
    assert manifest.is_file() and '"total": 60' in manifest.read_text()

    # 2. Train: a tiny CPU run launched from the form; the page switches to the Monitor.
    open_tab(page, "2 · Train")
    for field, value in {"warmup_steps": 0, "max_steps": 6, "batch_size": 4, "device": "cpu"}.items():
        set_field(page, ".ocrtrain-train", field, value)
    # The whole model trains (CPU recipe off): steps slow enough for the curve to be seen growing.
    page.locator(".ocrtrain-train .jupyter-widget-Collapse-header", has_text="Advanced").click()
    set_field(page, ".ocrtrain-train", "cpu_recipe", False)
    set_text(page, ".ocrtrain-run-name", "tiny-cpu")
    shot(page, "03-train-form")
    page.locator(".ocrtrain-launch").click()
    page.wait_for_selector(".ocrtrain-monitor", state="visible")
    counts = set()
    wait_until(lambda: (counts.add(curve_points(page)) or max(counts) >= 2), timeout=180)
    shot(page, "04-monitor-running")
    wait_until(lambda: (counts.add(curve_points(page)) or progress_state(page).get("state") == "finished"),
               timeout=240)
    final = progress_state(page)
    assert final["step"] == final["max_steps"] == 6
    wait_until(lambda: curve_points(page) == 6, timeout=20)
    # The finished run's validation curves are drawn with their last point (step 0 and step 6),
    # not only the origin's (updates sent before a figure's view exists were dropped).
    wait_until(lambda: val_points(page) >= 2, timeout=20)
    assert len({c for c in counts if c}) >= 2, f"the curve never grew while watched: {counts}"
    assert "finished" in page.locator(".ocrtrain-runs-table").inner_text()
    shot(page, "05-monitor-finished")

    # 3. A second run, canceled from the Monitor.
    open_tab(page, "2 · Train")
    set_field(page, ".ocrtrain-train", "max_steps", 500)
    set_text(page, ".ocrtrain-run-name", "to-cancel")
    page.locator(".ocrtrain-launch").click()
    wait_until(lambda: page.locator(".ocrtrain-run-select select").input_value().endswith("to-cancel"))
    wait_until(lambda: page.locator(".ocrtrain-cancel-run").is_enabled(), timeout=30)
    page.locator(".ocrtrain-cancel-run").click()
    wait_until(lambda: progress_state(page).get("state") == "canceled", timeout=120)
    # The canceled run's figure is a new one; its step-0 validation is drawn before the picture
    # (the state text arrives first: a shot taken then showed empty axes).
    from ocrtrain.runs import Run

    if Run(home / "runs" / "to-cancel").metrics("val"):
        wait_until(lambda: val_points(page) >= 1, timeout=60)
    shot(page, "06-monitor-canceled")

    # 4. Compare: origin vs the finished run on the test split, gallery and charts.
    open_tab(page, "4 · Compare")
    page.locator(".ocrtrain-compare .ocrtrain-run-picker select").select_option(label="tiny-cpu")
    page.locator(".ocrtrain-compare-run").click()
    page.wait_for_selector(".ocrtrain-gallery table img", timeout=180_000)
    assert "before: english_g2" in page.locator(".ocrtrain-compare-metrics").inner_text()
    page.wait_for_selector(".ocrtrain-compare-charts .js-plotly-plot")
    shot(page, "07-compare")

    # 5. Export: the bundle, the parity check against easyocr.Reader, the download link.
    open_tab(page, "5 · Export")
    page.locator(".ocrtrain-export .ocrtrain-run-picker select").select_option(label="tiny-cpu")
    set_text(page, ".ocrtrain-export-name", "tiny_receipts")
    page.locator(".ocrtrain-export-parity-limit input").fill("8")
    page.locator(".ocrtrain-export-parity-limit input").press("Tab")
    page.locator(".ocrtrain-export-run").click()
    page.wait_for_selector(".ocrtrain-export-download a[download='tiny_receipts.zip']", timeout=180_000)
    assert "parity on" in page.locator(".ocrtrain-parity").inner_text()
    assert "easyocr.Reader" in page.locator(".ocrtrain-snippet").inner_text()
    shot(page, "08-export")
    bundle = home / "runs" / "tiny-cpu" / "export"
    assert all((bundle / f"tiny_receipts{s}").is_file() for s in (".pth", ".yaml", ".py"))

