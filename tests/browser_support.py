"""What the browser tests share: headless Chromium, a dashboard served on a free port (the way
`ocrtrain dashboard` serves it, or a plain ``voila`` on the repository's notebook), a page, and the
page actions every walk uses (open a tab, fill a form field, wait, take a screenshot).

The server runs in its own process group, so stopping it stops its kernels too; jobs the page
launched outlive the server and are canceled by :func:`cancel_active_runs`. Chromium is started by
playwright (:func:`chromium_page`) or, for a test that kills it like a crash, as a process of its
own that playwright attaches to (:func:`chromium_process`). Screenshots go to
docs/screenshots/ unless ``OCRTRAIN_TEST_SHOTS`` names another folder (a run that should leave the
committed pictures alone).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

__all__ = ["ROOT", "CHROMIUM", "CHROMIUM_ARGS", "SHOTS", "VOILA", "needs_chromium", "free_port", "wait_for_port",
           "server_group", "serving", "dashboard_server", "serve_dashboard", "serve_voila", "cancel_active_runs",
           "chromium_page", "chromium_process", "open_tab", "set_field", "set_text", "wait_until", "shot"]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("OCRTRAIN_TEST_SHOTS") or ROOT / "docs" / "screenshots")
VOILA = Path(sys.executable).with_name("voila")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="/usr/bin/chromium is missing (make browser-deps installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60, what: str = "voila") -> None:
    # Wait for the TCP port, not a GET: a GET of the page would start a kernel (KNOWN-TRAPS).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not open port {port} in {timeout} s")


def _stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process group of `proc`, SIGKILL after `timeout` s; a group already gone is fine
    (a server that died on start must fail the test with its own error, not ProcessLookupError)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def server_group(command: Sequence[str], port: int, log_path: Path, env: dict, cwd: Optional[Path] = None,
                 timeout: float = 60, what: str = "voila") -> Iterator[subprocess.Popen]:
    """Run the server `command` (listening on `port`) in its own process group with its output in
    `log_path`; yield the process once the port is open; then stop the group (SIGKILL after 20 s)."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for_port(port, proc, timeout, what)
        yield proc
    finally:
        _stop_group(proc)
        log.close()


@contextlib.contextmanager
def serving(command: Sequence[str], port: int, log_path: Path, env: dict, cwd: Optional[Path] = None,
            timeout: float = 60, what: str = "voila") -> Iterator[str]:
    """:func:`server_group`, yielding the server's URL instead of its process."""
    with server_group(command, port, log_path, env, cwd=cwd, timeout=timeout, what=what):
        yield f"http://127.0.0.1:{port}/"


@contextlib.contextmanager
def dashboard_server(home: Optional[Path], log_path: Path, ocrtrain: Sequence[str] = (sys.executable, "-m", "ocrtrain"),
                     env: Optional[dict] = None, cwd: Optional[Path] = None, timeout: float = 90,
                     options: Sequence[str] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """``ocrtrain dashboard --port PORT [--home HOME] OPTIONS`` as a user starts it (its voila.py,
    template and served downloads), yielding its URL and process (whose children are the kernels);
    `home` None leaves the home to `env` (``OCRTRAIN_HOME``). The kernels' download settings come
    from the dashboard, not from this process's environment."""
    port = free_port()
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCRTRAIN_DOWNLOADS")}
    command = [*ocrtrain, "dashboard", "--port", str(port), *(["--home", str(home)] if home else []), *options]
    with server_group(command, port, log_path, env, cwd=cwd, timeout=timeout, what="ocrtrain dashboard") as proc:
        yield f"http://127.0.0.1:{port}/", proc


@contextlib.contextmanager
def serve_dashboard(home: Optional[Path], log_path: Path, ocrtrain: Sequence[str] = (sys.executable, "-m", "ocrtrain"),
                    env: Optional[dict] = None, cwd: Optional[Path] = None, timeout: float = 90,
                    options: Sequence[str] = ()) -> Iterator[str]:
    """:func:`dashboard_server`, yielding only the URL."""
    with dashboard_server(home, log_path, ocrtrain, env=env, cwd=cwd, timeout=timeout, options=options) as (url, _):
        yield url


@contextlib.contextmanager
def serve_voila(home: Path, log_path: Path, cull_idle: int = 600, cull_interval: int = 60) -> Iterator[str]:
    """A plain ``voila notebooks/dashboard.ipynb`` (no ocrtrain config) with ``OCRTRAIN_HOME=home``."""
    port = free_port()
    command = [str(VOILA), "notebooks/dashboard.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
               f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
               f"--MappingKernelManager.cull_interval={cull_interval}"]
    with serving(command, port, log_path, {**os.environ, "OCRTRAIN_HOME": str(home)}, cwd=ROOT) as url:
        yield url


def cancel_active_runs(home: Path) -> None:
    """Cancel the jobs still active under HOME/runs (they outlive the server that launched them)."""
    from ocrtrain.runs import Run, cancel

    for run_dir in (home / "runs").glob("*"):
        try:
            if Run(run_dir).is_active():
                cancel(run_dir, wait=True, timeout=60)
        except Exception:  # a teardown must not hide the test's own failure
            pass


@contextlib.contextmanager
def chromium_page(width: int = 1360, height: int = 1000, timeout_ms: int = 60_000, **context_options):
    """A page of a fresh headless Chromium (playwright), closed afterwards; `context_options` go to
    ``browser.new_context`` (e.g. ``accept_downloads=True``)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_process(user_data_dir: Path, timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """Headless Chromium as a process of its own (its own group, so a test can SIGKILL it like a
    crash), yielding its DevTools URL (for playwright's ``connect_over_cdp``) and the process, which
    is killed afterwards if it is still alive."""
    cdp = free_port()
    proc = subprocess.Popen([str(CHROMIUM), *CHROMIUM_ARGS, f"--remote-debugging-port={cdp}",
                             f"--user-data-dir={user_data_dir}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(cdp, proc, timeout, what="chromium")
        yield f"http://127.0.0.1:{cdp}", proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


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
