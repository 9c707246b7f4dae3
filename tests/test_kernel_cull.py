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
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# As tests/test_browser.py launches it (KNOWN-TRAPS), plus a DevTools port to attach Playwright.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
# Seconds; the CLI checks every min(60, cull_idle) s. Above the page load (the kernel has no page then).
CULL_IDLE = 40

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (make browser-deps installs it)"),
    pytest.mark.timeout(600),
]

LONG_RUN = {"max_steps": 2000, "warmup_steps": 0, "batch_size": 2, "device": "cpu", "val_interval": 1000,
            "val_limit": 2, "workers": 0, "freeze_feature_extractor": True, "keep_checkpoints": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    # The TCP port, not a GET: a GET of the page would start a kernel (KNOWN-TRAPS).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing opened port {port} in {timeout} s")


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


def _stop_group(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)


@pytest.fixture
def running(tmp_path, tiny_dataset):
    """A work folder with a real run in progress and `ocrtrain dashboard` serving it with a short cull."""
    from ocrtrain.runs import Run, cancel, launch
    from ocrtrain.train import TrainConfig

    home = tmp_path / "home"
    shutil.copytree(tiny_dataset, home / "datasets" / "tiny")
    run = launch(TrainConfig.from_dict(LONG_RUN), home / "datasets" / "tiny", runs_root=home / "runs", name="busy")
    port = _free_port()
    log_path = tmp_path / "dashboard.log"
    log = open(log_path, "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCRTRAIN_DOWNLOADS")}
    server = subprocess.Popen([sys.executable, "-m", "ocrtrain", "dashboard", "--port", str(port), "--home", str(home),
                               "--cull-idle", str(CULL_IDLE)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        _wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}/", server, Path(run.path), log_path
    finally:
        _stop_group(server)
        log.close()
        if Run(run.path).is_active():
            cancel(run.path, wait=True, timeout=60)


def test_a_killed_browser_leaves_no_kernel_behind(running, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, server, run, log_path = running
    cdp = _free_port()
    browser_proc = subprocess.Popen([str(CHROMIUM), *CHROMIUM_ARGS, f"--remote-debugging-port={cdp}",
                                     f"--user-data-dir={tmp_path / 'chromium'}", "about:blank"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_port(cdp, browser_proc, timeout=60)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.connect_over_cdp(f"http://127.0.0.1:{cdp}")
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
    finally:
        if browser_proc.poll() is None:
            os.killpg(browser_proc.pid, signal.SIGKILL)
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
