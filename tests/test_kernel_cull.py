"""A tab that dies without its unload beacon (a browser crash) must not leave its kernel alive for good.

`ocrtrain dashboard` (the real CLI) serves a work folder while a real training run is running, so
the Monitor tab keeps pushing progress to the page every poll. Headless Chromium opens the
dashboard and the Monitor tab, then the browser is killed with SIGKILL (no beacon, no shutdown
request): the server only sees the websocket drop. With a short --cull-idle the kernel process
must be gone within cull_idle + cull_interval (+ slack), although its polling thread still sends
widget updates. Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from browser_support import chromium_process, dashboard_server, needs_chromium

# Seconds; the CLI checks every min(60, cull_idle) s. Above the page load (the kernel has no page then).
CULL_IDLE = 40

pytestmark = [needs_chromium, pytest.mark.timeout(600)]

LONG_RUN = {"max_steps": 2000, "warmup_steps": 0, "batch_size": 2, "device": "cpu", "val_interval": 1000,
            "val_limit": 2, "workers": 0, "freeze_feature_extractor": True, "keep_checkpoints": 1}


def _kernels(server_pid: int) -> list[int]:
    """Pids of the kernel processes the server started (ipykernel children of the voila process)."""
    import psutil

    try:
        children = psutil.Process(server_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def running(tmp_path, tiny_dataset):
    """A work folder with a real run in progress and `ocrtrain dashboard` serving it with a short cull."""
    from ocrtrain.runs import Run, cancel, launch
    from ocrtrain.train import TrainConfig

    home = tmp_path / "home"
    shutil.copytree(tiny_dataset, home / "datasets" / "tiny")
    run = launch(TrainConfig.from_dict(LONG_RUN), home / "datasets" / "tiny", runs_root=home / "runs", name="busy")
    log_path = tmp_path / "dashboard.log"
    try:
        with dashboard_server(home, log_path, options=["--cull-idle", str(CULL_IDLE)]) as (url, server):
            yield url, server, Path(run.path), log_path
    finally:
        if Run(run.path).is_active():
            cancel(run.path, wait=True, timeout=60)


def test_a_killed_browser_leaves_no_kernel_behind(running, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, server, run, log_path = running
    with chromium_process(tmp_path / "chromium") as (cdp_url, browser_proc):
        with sync_api.sync_playwright() as p:
            browser = p.chromium.connect_over_cdp(cdp_url)
            page = browser.contexts[0].pages[0]
            page.set_default_timeout(120_000)
            page.goto(url, timeout=240_000)
            page.wait_for_selector(".ocrtrain-workbench", timeout=240_000)
            page.locator(".lm-TabBar-tab", has_text="3 · Monitor").click()
            # The Monitor follows the running run: its progress text changes while we watch.
            progress = page.locator(".ocrtrain-monitor")
            first = progress.inner_text()
            deadline = time.monotonic() + 90
            while progress.inner_text() == first and time.monotonic() < deadline:
                time.sleep(1)
            assert progress.inner_text() != first, "the Monitor did not update while the run was running"
            kernels = _kernels(server.pid)
            assert len(kernels) == 1, kernels
            # A crash: SIGKILL to the whole browser, so no beacon and no shutdown request are sent.
            os.killpg(browser_proc.pid, signal.SIGKILL)
            browser_proc.wait(timeout=30)
            killed_at = time.monotonic()
    from ocrtrain.runs import Run

    assert Run(run).state == "running"  # the run is still going, so the Monitor still had news to push
    limit = CULL_IDLE + min(60, CULL_IDLE) + 30
    while _kernels(server.pid) and time.monotonic() - killed_at < limit:
        time.sleep(1)
    gone_after = time.monotonic() - killed_at
    log = log_path.read_text(errors="replace")
    assert not _kernels(server.pid), (f"the kernel {kernels} is alive {gone_after:.0f} s after the browser died "
                                      f"(cull_idle {CULL_IDLE} s); server log tail:\n{log[-2000:]}")
    culled = [line for line in log.splitlines() if "Culling" in line]
    assert culled, log[-2000:]
    print(f"kernel gone {gone_after:.0f} s after the browser was killed (cull_idle {CULL_IDLE} s): {culled[-1]}")
