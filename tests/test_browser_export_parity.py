"""The Export tab's parity check in a real browser (issue 14, point 7: progress on export and parity).

`ocrtrain dashboard` serves a work folder holding a finished 2-step CPU run on a dataset whose test
split has over 96 drawn lines. Headless Chromium exports with the parity check against the real
easyocr.Reader and watches the page itself while it runs: the bar and its text must stand at a
batch in the middle ("parity 32/64 lines", rate and ETA, the bar half full) before the end
("64/64 ... took", a full green bar, the parity table). A second export is canceled from the page
after its first batch: it stops before the end and says so, the bundle stays and no report is saved.
parity_check reports once per ReadConfig.batch_size (32) lines, hence 64 and 96 lines.
Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import re
import time

import pytest

from browser_support import chromium_page, needs_chromium, open_tab, serve_dashboard, set_text, wait_until
from conftest import draw_line, png_bytes, sample_labels

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(480),
]

BATCH = 32

# One call per poll: the bar's width and style, its text, the status line and the Cancel button.
STATE_JS = """() => {
    const root = document.querySelector('.ocrtrain-export');
    if (!root) return null;
    const bar = root.querySelector('.ocrtrain-export-progress .progress-bar');
    const text = root.querySelector('.ocrtrain-export-progress-text');
    const status = root.querySelector('.ocrtrain-status');
    const cancel = root.querySelector('.ocrtrain-export-cancel');
    return {width: bar ? parseFloat(bar.style.width) : null, bar: bar ? bar.className : '',
            text: text ? text.innerText : '', status: status ? status.innerText : '',
            cancel: cancel ? !cancel.disabled : null};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ocrtrain.dataset import DatasetWriter, SplitConfig
    from ocrtrain.train import TrainConfig, fit

    home = tmp_path_factory.mktemp("parity-home")
    # Most lines in test (the parity split), enough in train for two steps of batch 4.
    with DatasetWriter(home / "datasets" / "lines", SplitConfig(val_fraction=0.05, test_fraction=0.8, split_seed=3),
                       source={"kind": "test-drawn"}) as writer:
        for i, label in enumerate(sample_labels(140, seed=7)):
            writer.add(png_bytes(draw_line(label)), label, sample=f"line-{i}")
    config = TrainConfig(max_steps=2, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=0,
                         freeze_feature_extractor=True, device="cpu", keep_checkpoints=1)
    fit(config, home / "datasets" / "lines", home / "runs" / "tiny")
    with serve_dashboard(home, home.parent / f"{home.name}-dashboard.log") as url:
        yield url, home


@pytest.fixture(scope="module")
def page(server):
    url, _home = server
    with chromium_page(timeout_ms=120_000) as page:
        page.goto(url, timeout=240_000)
        page.wait_for_selector(".ocrtrain-workbench", timeout=240_000)
        open_tab(page, "5 · Export")
        page.wait_for_selector(".ocrtrain-export-parity-on input[type=checkbox]")
        yield page


def _start(page, name: str, limit: int) -> None:
    # The only run, and its own dataset as the parity data (Dropdown values are their labels in the page).
    assert page.locator(".ocrtrain-export .ocrtrain-run-picker select").first.input_value().startswith("tiny")
    assert page.locator(".ocrtrain-export .ocrtrain-dataset-select select").input_value().startswith("lines ")
    assert page.locator(".ocrtrain-export-parity-on input[type=checkbox]").is_checked()
    set_text(page, ".ocrtrain-export-name", name)
    limit_box = page.locator(".ocrtrain-export-parity-limit input")
    limit_box.fill(str(limit))
    limit_box.press("Tab")
    time.sleep(0.5)  # the kernel takes the values before the click
    page.locator(".ocrtrain-export-run").click()


def _watch(page, until, timeout: float = 300) -> list[dict]:
    """Poll the page (every 0.2 s; a batch takes seconds) until `until(state)`, returning every distinct
    state seen (on a loaded 2-core machine one export with parity took 200 s)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(STATE_JS)
        if state and (not seen or state != seen[-1]):
            seen.append(state)
        if state and until(state):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s; states seen: {seen}")


def _report_count(home) -> int:
    from ocrtrain.runfolder import list_reports

    return len(list_reports(home / "runs" / "tiny", "parity"))


def test_parity_progress_advances_in_the_page_then_the_result_shows(server, page):
    _url, home = server
    before = _report_count(home)
    _start(page, "parity_live", 2 * BATCH)
    # The end: the last event's text, then done() turns the bar green (or a failure turns it red).
    seen = _watch(page, lambda s: ("took" in s["text"] and "success" in s["bar"]) or "danger" in s["bar"])
    middle = [s for s in seen if f"parity {BATCH}/{2 * BATCH} lines" in s["text"]]
    assert middle, f"no state at batch {BATCH} of {2 * BATCH} was shown: {seen}"
    assert "lines/s" in middle[0]["text"] and "ETA" in middle[0]["text"], middle[0]
    # The text comes a message before the bar's value: some state of that batch shows the half-full bar.
    half = [s for s in middle if s["width"] == pytest.approx(50, abs=1)]
    assert half and half[0]["cancel"] is True, middle
    widths = [s["width"] for s in seen if s["width"] is not None and "parity" in s["text"]]
    assert widths == sorted(widths) and widths[-1] == pytest.approx(100, abs=0.5), seen  # it only moves forward
    final = seen[-1]
    assert f"parity {2 * BATCH}/{2 * BATCH} lines" in final["text"] and "took" in final["text"], final
    assert "success" in final["bar"], final
    page.wait_for_selector(".ocrtrain-export-download a[download='parity_live.zip']", timeout=60_000)
    parity = page.locator(".ocrtrain-parity").inner_text()
    assert f"parity on {2 * BATCH} test lines" in parity and "easyocr.Reader" in parity, parity
    wait_until(lambda: page.evaluate(STATE_JS)["cancel"] is False, timeout=20)
    assert "exported parity_live" in page.evaluate(STATE_JS)["status"]
    assert _report_count(home) == before + 1


def test_cancel_from_the_page_stops_the_parity_check_and_says_so(server, page):
    _url, home = server
    before = _report_count(home)
    total = 3 * BATCH
    _start(page, "parity_cancel", total)
    _watch(page, lambda s: f"parity {BATCH}/{total} lines" in s["text"])
    page.locator(".ocrtrain-export-cancel").click()
    seen = _watch(page, lambda s: "canceled after" in s["text"] or "took" in s["text"])
    final = seen[-1]
    read = re.search(rf"parity canceled after (\d+)/{total} lines", final["text"])
    assert read and BATCH <= int(read.group(1)) < total, final  # stopped after the current batch
    assert "warning" in final["bar"] and final["width"] < 100, final
    page.wait_for_selector(".ocrtrain-export-download a[download='parity_cancel.zip']", timeout=60_000)
    status = page.evaluate(STATE_JS)["status"]
    assert f"canceled after {read.group(1)} of {total} lines" in status and "not saved" in status, status
    assert "canceled: partial" in page.locator(".ocrtrain-parity").inner_text()
    assert all((home / "runs" / "tiny" / "export" / f"parity_cancel{s}").is_file() for s in (".pth", ".yaml", ".py"))
    assert _report_count(home) == before  # a partial check is not the run's parity report
