"""The dashboard in a real browser: Voila serves notebooks/dashboard.ipynb, headless Chromium drives it.

One walk through the product, as a person would do it: generate a tiny dataset, launch a tiny CPU
run and watch its curves and progress, cancel a second run, compare before/after, export. Each
step leaves a screenshot in docs/screenshots/. Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
VOILA = Path(sys.executable).with_name("voila")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (make browser-deps installs it)"),
    pytest.mark.timeout(900),  # the walk trains twice and its first job renders the replay lines
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    # Wait for the TCP port, not a GET: a GET of the page would start a kernel (KNOWN-TRAPS).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"voila did not open port {port} in {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("ocrtrain-home")
    port = _free_port()
    env = {**os.environ, "OCRTRAIN_HOME": str(home)}
    log = open(home / "voila.log", "wb")
    proc = subprocess.Popen(
        [str(VOILA), "notebooks/dashboard.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--MappingKernelManager.cull_idle_timeout=600", "--MappingKernelManager.cull_interval=60"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/", home
    finally:
        from ocrtrain.runs import Run, cancel

        for run_dir in (home / "runs").glob("*"):  # jobs outlive the server: stop ours
            try:
                if Run(run_dir).is_active():
                    cancel(run_dir, wait=True, timeout=60)
            except Exception:
                pass
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> None:
    # Voila scrolls inside its own container, so a "full page" shot stops at the viewport:
    # grow the viewport to the workbench's height for the picture, then restore it.
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.evaluate("window.scrollTo(0, 0); document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
    bottom = page.evaluate("document.querySelector('.ocrtrain-workbench').getBoundingClientRect().bottom")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(bottom) + 30)})
    time.sleep(0.5)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def open_tab(page, title: str) -> None:
    page.locator(".lm-TabBar-tab", has_text=title).click()


def set_field(page, scope: str, field: str, value) -> None:
    box = page.locator(f"{scope} .ocrtrain-field-{field}").first
    if isinstance(value, bool):
        checkbox = box.locator("input[type=checkbox]")
        if checkbox.is_checked() != value:
            checkbox.click()
        return
    select = box.locator("select")
    if select.count():
        select.select_option(label=str(value))
        return
    entry = box.locator("input")
    for _ in range(3):
        entry.fill(str(value))
        entry.press("Tab")  # number fields sync on change (blur / Enter)
        time.sleep(0.3)
        if entry.input_value() == str(value):
            return
    raise AssertionError(f"{scope} {field} does not keep {value!r}")


def set_text(page, selector: str, value: str) -> None:
    field = page.locator(f"{selector} input").first
    field.fill(value)
    field.press("Tab")


def wait_until(predicate, timeout: float = 120, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s")


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

