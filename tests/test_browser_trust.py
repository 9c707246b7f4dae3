"""Dashboard trust in a real browser (issue 14): curves really drawn, guardrails and delete.

`ocrtrain dashboard` serves notebooks/dashboard.ipynb over a work folder that already holds a finished run
(a real 6-step CPU job) and a second run to throw away; headless Chromium checks the drawn SVG
(points on the lines, not only data in the widget model), after switching tabs too, that a long
Launch asks before starting, that disabled buttons look disabled, and that Delete asks first; then,
on a run that is training, that the curves are drawn after a page reload mid-run and keep growing,
and are drawn again after the run is canceled and resumed from the page (both went blank before).
Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from browser_support import cancel_active_runs, chromium_page, needs_chromium, open_tab, serve_dashboard, \
    set_field, wait_until

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(400),
]

TINY = {"max_steps": 6, "warmup_steps": 0, "batch_size": 4, "device": "cpu", "val_interval": 2, "val_limit": 4,
        "workers": 0, "freeze_feature_extractor": True, "keep_checkpoints": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_dataset):
    from ocrtrain.runs import launch
    from ocrtrain.train import TrainConfig

    home = tmp_path_factory.mktemp("trust-home")
    shutil.copytree(tiny_dataset, home / "datasets" / "tiny")
    run = launch(TrainConfig.from_dict(TINY), home / "datasets" / "tiny", runs_root=home / "runs", name="drawn")
    assert run.wait(timeout=240)["state"] == "finished", run.status().get("error")
    shutil.copytree(run.path, home / "runs" / "junk")
    os.utime(run.path)  # "drawn" is the newest finished run
    with serve_dashboard(home, home.parent / f"{home.name}-dashboard.log") as url:
        try:
            yield url, home
        finally:
            cancel_active_runs(home)


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        yield page


def drawn_points(page) -> dict[str, int]:
    """Points drawn per trace of the Monitor's figure, read from the rendered SVG: vertices of each
    line path plus marker points, keyed by the legend's trace names."""
    return page.evaluate("""() => {
        const out = {};
        const plot = document.querySelector('.ocrtrain-curves .js-plotly-plot');
        if (!plot || !plot.data) return out;
        const traces = plot.querySelectorAll('.scatterlayer .trace');
        traces.forEach((g, i) => {
            const name = (plot.data[i] || {}).name || String(i);
            const line = g.querySelector('path.js-line');
            const d = line ? (line.getAttribute('d') || '') : '';
            const vertices = (d.match(/[ML]/g) || []).length;
            const markers = g.querySelectorAll('path.point').length;
            out[name] = Math.max(vertices, markers);
        });
        return out;
    }""")


def cer_points(page) -> int:
    points = drawn_points(page)
    return points.get("CER", points.get("CER · val", 0))


def test_curves_are_drawn_after_tab_switches_and_guardrails_hold(server, page):
    from ocrtrain.runs import Run

    url, home = server
    val_rows = [r for r in Run(home / "runs" / "drawn").metrics("val") if r.get("val_set") in (None, "val")]
    train_rows = Run(home / "runs" / "drawn").metrics("train")
    page.goto(url)
    page.wait_for_selector(".ocrtrain-workbench .ocrtrain-generate")

    # Monitor: the finished run's curves are drawn (SVG), as many points as rows.
    open_tab(page, "3 · Monitor")
    page.locator(".ocrtrain-run-select select").select_option(label="drawn")
    wait_until(lambda: drawn_points(page).get("train loss", 0) == len(train_rows), timeout=60)
    wait_until(lambda: cer_points(page) == len(val_rows), timeout=30)
    info = page.locator(".ocrtrain-run-info").inner_text()
    assert f"validation set: {val_rows[-1]['n']} lines" in info
    assert "%" in page.locator(".ocrtrain-curves .js-plotly-plot").inner_text()
    # A finished run cannot be canceled: the button is disabled and looks it.
    cancel = page.locator(".ocrtrain-cancel-run")
    assert cancel.is_disabled()
    assert float(cancel.evaluate("b => getComputedStyle(b).opacity")) < 0.6

    # Away and back: still drawn, not empty axes.
    open_tab(page, "2 · Train")
    page.wait_for_selector(".ocrtrain-launch", state="visible")
    open_tab(page, "3 · Monitor")
    wait_until(lambda: drawn_points(page).get("train loss", 0) == len(train_rows), timeout=30)
    open_tab(page, "4 · Compare")
    open_tab(page, "3 · Monitor")
    wait_until(lambda: cer_points(page) == len(val_rows), timeout=30)

    # Train: a run of 10^9 steps asks for confirmation instead of launching.
    open_tab(page, "2 · Train")
    set_field(page, ".ocrtrain-train", "max_steps", 1_000_000_000)
    page.locator(".ocrtrain-launch").click()
    wait_until(lambda: "Confirm launch" in page.locator(".ocrtrain-launch").inner_text(), timeout=30)
    assert "no time estimate" in page.locator(".ocrtrain-train .ocrtrain-warn").inner_text()
    assert sorted(p.name for p in (home / "runs").iterdir() if not p.name.startswith(".")) == ["drawn", "junk"]
    set_field(page, ".ocrtrain-train", "max_steps", 6)  # a change of the form withdraws the question
    wait_until(lambda: "Launch training" in page.locator(".ocrtrain-launch").inner_text(), timeout=30)

    # Monitor: Delete asks first, then removes the run folder and its row.
    open_tab(page, "3 · Monitor")
    page.locator(".ocrtrain-run-select select").select_option(label="junk")
    page.locator(".ocrtrain-run-delete").click()
    wait_until(lambda: "Confirm delete" in page.locator(".ocrtrain-run-delete").inner_text(), timeout=30)
    assert (home / "runs" / "junk").is_dir()
    page.locator(".ocrtrain-run-delete").click()
    wait_until(lambda: not (home / "runs" / "junk").exists(), timeout=30)
    wait_until(lambda: "junk" not in page.locator(".ocrtrain-runs-table").inner_text(), timeout=30)
    assert re.search(r"deleted run junk", page.locator(".ocrtrain-run-actions-status").inner_text())
    time.sleep(0.2)
    assert drawn_points(page).get("train loss", 0) == len(train_rows)  # the shown run is "drawn" again



def last_drawn_step(page, name: str = "train loss") -> int:
    """The step under the last vertex of trace `name`'s line in the rendered SVG (0 when nothing is
    drawn). Plotly drops nearly collinear vertices from a long line, but never its end."""
    return page.evaluate("""(name) => {
        const plot = document.querySelector('.ocrtrain-curves .js-plotly-plot');
        if (!plot || !plot.data || !plot._fullLayout) return 0;
        const i = plot.data.findIndex(t => t.name === name);
        const g = i < 0 ? null : plot.querySelectorAll('.scatterlayer .trace')[i];
        const line = g ? g.querySelector('path.js-line') : null;
        const nums = ((line && line.getAttribute('d')) || '').match(/-?[0-9.]+(e-?[0-9]+)?/g) || [];
        if (nums.length < 4) return 0;
        const axis = plot._fullLayout[(plot._fullData[i].xaxis || 'x').replace('x', 'xaxis')];
        return Math.round(axis.p2d(parseFloat(nums[nums.length - 2])));
    }""", name)


def plot_identity(page) -> int:
    """A number naming the Monitor's plot element now (0 when there is none): it changes when the
    figure is replaced by a new one instead of updated in place."""
    return page.evaluate("""() => {
        const plot = document.querySelector('.ocrtrain-curves .js-plotly-plot');
        if (!plot) return 0;
        if (!plot.ocrtrainId) plot.ocrtrainId = (window.ocrtrainPlots = (window.ocrtrainPlots || 0) + 1);
        return plot.ocrtrainId;
    }""")


def last_train_step(run_dir) -> int:
    from ocrtrain.runs import Run

    rows = Run(run_dir).metrics("train")
    return rows[-1]["step"] if rows else 0


def show_run(page, url: str, name: str, reload: bool = False) -> None:
    page.reload() if reload else page.goto(url)
    page.wait_for_selector(".ocrtrain-workbench .ocrtrain-generate")
    open_tab(page, "3 · Monitor")
    page.locator(".ocrtrain-run-select select").select_option(label=name)


@pytest.mark.timeout(900)  # two job start-ups on a loaded machine
def test_curves_are_drawn_after_a_reload_mid_run_and_after_a_resume(server, page):
    from ocrtrain.runs import cancel, launch
    from ocrtrain.train import TrainConfig

    url, home = server
    config = TrainConfig.from_dict({**TINY, "max_steps": 1000, "val_interval": 3})
    run = launch(config, home / "datasets" / "tiny", runs_root=home / "runs", name="live")
    try:
        # Past the other run's last step, so that a step drawn is this run's.
        past = TINY["max_steps"] + 2
        wait_until(lambda: last_train_step(run.path) >= past, timeout=300)
        show_run(page, url, "live")
        wait_until(lambda: last_drawn_step(page) >= past, timeout=60)

        # A reload mid-run: a new kernel, a new figure; drawn at once, and growing with the run,
        # updated in place (a figure replaced at every poll on a slow page lagged ever further behind).
        show_run(page, url, "live", reload=True)
        seen = last_train_step(run.path)
        wait_until(lambda: last_drawn_step(page) >= seen, timeout=60)
        plot = plot_identity(page)
        seen = last_drawn_step(page)
        wait_until(lambda: last_drawn_step(page) >= seen + 6, timeout=120)
        assert plot_identity(page) == plot, "the figure was replaced while the run trained"
        assert cer_points(page) >= 1  # step 0 at least

        # Canceled, then resumed from the page: the curves are drawn again and keep growing.
        cancel(run.path, wait=True, timeout=180)
        stopped = last_train_step(run.path)
        wait_until(lambda: page.locator(".ocrtrain-resume-run").is_enabled(), timeout=60)
        wait_until(lambda: last_drawn_step(page) == stopped, timeout=60)
        page.locator(".ocrtrain-resume-run").click()
        wait_until(lambda: last_train_step(run.path) > stopped + 1, timeout=300)
        wait_until(lambda: last_drawn_step(page) > stopped + 1, timeout=60)
        assert cer_points(page) >= 1
        assert "running" in page.locator(".ocrtrain-runs-table").inner_text()
    finally:
        if run.is_active():
            cancel(run.path, wait=True, timeout=120)
