"""Downloads as served files and a page that stays on this machine (issue 14, points 7 and 8).

`ocrtrain dashboard` (the real CLI, as `make dashboard` runs it) serves a work folder holding a
finished run (a real 6-step CPU job); headless Chromium prepares the checkpoint download on the
Compare tab and exports a bundle on the Export tab, and the links must be files Voila serves (not
data URIs) that download the real bytes with the right names and Content-Types. Every request
the page makes is recorded: none may go to another host. Leaving the page shuts its kernel down.
Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import io
import re
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from browser_support import chromium_page, needs_chromium, open_tab, serve_dashboard

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(500),
]

TINY = {"max_steps": 6, "warmup_steps": 0, "batch_size": 4, "device": "cpu", "val_interval": 3, "val_limit": 4,
        "workers": 0, "freeze_feature_extractor": True, "keep_checkpoints": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_dataset):
    from ocrtrain.runs import launch
    from ocrtrain.train import TrainConfig

    home = tmp_path_factory.mktemp("downloads-home")
    shutil.copytree(tiny_dataset, home / "datasets" / "tiny")
    run = launch(TrainConfig.from_dict(TINY), home / "datasets" / "tiny", runs_root=home / "runs", name="drawn")
    assert run.wait(timeout=300)["state"] == "finished", run.status().get("error")
    with serve_dashboard(home, home.parent / f"{home.name}-dashboard.log") as url:
        yield url, home, Path(run.path)


@pytest.fixture(scope="module")
def browsed(server):
    """The page, and every URL it requested (recorded from before the first load)."""
    url, _home, _run = server
    with chromium_page(timeout_ms=120_000, accept_downloads=True) as page:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url, timeout=240_000)
        page.wait_for_selector(".ocrtrain-workbench", timeout=240_000)
        yield page, requested


def _download(page, link_selector: str):
    link = page.locator(link_selector).first
    href = link.get_attribute("href")
    with page.expect_download() as info:
        link.click()
    download = info.value
    return href, download.suggested_filename, Path(download.path()).read_bytes()


def _content_type(page_url: str, href: str) -> str:
    with urllib.request.urlopen(urljoin(page_url, href), timeout=60) as resp:
        return resp.headers.get("Content-Type", "")


def test_checkpoint_and_bundle_download_as_files(server, browsed):
    url, home, run = server
    page, _requested = browsed

    # Compare: the checkpoint of the finished run, as NAME-VERSION.pt.
    open_tab(page, "4 · Compare")
    page.wait_for_selector(".ocrtrain-version-download")
    page.locator(".ocrtrain-version-download").click()
    page.wait_for_selector(".ocrtrain-version-link a[download]")
    href, name, data = _download(page, ".ocrtrain-version-link a[download]")
    assert not href.startswith("data:"), href[:80]
    assert href.startswith("voila/files/.dashboard/downloads/") and name.endswith(".pt") and name.startswith("drawn-")
    version = name[len("drawn-"):-len(".pt")]
    from ocrtrain.runs import Run

    assert data == Path(Run(run).checkpoint_path(version)).read_bytes() and len(data) > 1_000_000
    assert _content_type(url, href) == "application/octet-stream"  # not Python's "SNES page table"

    # Export (parity off, to keep it short): the bundle as NAME.zip with its three files.
    open_tab(page, "5 · Export")
    page.wait_for_selector(".ocrtrain-export-parity-on input[type=checkbox]")
    page.locator(".ocrtrain-export-parity-on input[type=checkbox]").uncheck()
    name_box = page.locator(".ocrtrain-export-name input")
    name_box.fill("served_model")
    name_box.press("Tab")
    page.locator(".ocrtrain-export-run").click()
    page.wait_for_selector(".ocrtrain-export-download a[download='served_model.zip']", timeout=240_000)
    href, name, data = _download(page, ".ocrtrain-export-download a[download]")
    assert not href.startswith("data:") and name == "served_model.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["served_model.pth", "served_model.py", "served_model.yaml"]
        assert zf.read("served_model.pth") == (run / "export" / "served_model.pth").read_bytes()
    assert _content_type(url, href) == "application/zip"

    # Only the download folder is served: not the run's files, not the notebook, not the config.
    for path in ("runs/drawn/status.json", ".dashboard/dashboard.ipynb", ".dashboard/voila.py"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urljoin(url, f"voila/files/{path}"), timeout=30)
        assert err.value.code in (403, 404), path


def test_the_page_requests_nothing_from_other_hosts(server, browsed):
    url, _home, _run = server
    page, requested = browsed
    open_tab(page, "3 · Monitor")
    page.wait_for_selector(".ocrtrain-curves .js-plotly-plot", timeout=120_000)
    page.wait_for_timeout(2000)
    assert requested, "no request recorded"
    local = urlparse(url).netloc
    outside = sorted({r for r in requested if urlparse(r).scheme in ("http", "https", "ws", "wss")
                      and urlparse(r).netloc != local})
    assert outside == [], outside


def test_leaving_the_page_shuts_its_kernel_down(server, browsed):
    # Voila's page sends a shutdown beacon with the _xsrf cookie, which Voila never set: a 403,
    # and the kernel lived on (voila #1458). `ocrtrain dashboard`'s voila.py sets the cookie.
    _url, home, _run = server
    page, _requested = browsed
    log = home.parent / f"{home.name}-dashboard.log"
    assert "_xsrf" in {c["name"] for c in page.context.cookies()}
    started = re.findall(r"Kernel started: ([0-9a-f-]+)", log.read_text())
    assert started, log.read_text()[-2000:]
    page.goto("about:blank")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and f"Kernel shutdown: {started[-1]}" not in log.read_text():
        time.sleep(0.5)
    text = log.read_text()
    assert "403 POST /voila/api/shutdown" not in text, text[-2000:]
    assert f"Kernel shutdown: {started[-1]}" in text, text[-2000:]
