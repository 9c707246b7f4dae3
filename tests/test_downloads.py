"""ocrtrain.workbench.downloads without a browser: a served file (hard-linked, real name, old ones pruned)
under `ocrtrain dashboard`'s folder, a data URI without it (the browser side is in
tests/test_browser_downloads.py)."""
from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from ocrtrain.cli.dashboard import DOWNLOADS_ENV, DOWNLOADS_URL_ENV, prepare_serving  # noqa: E402
from ocrtrain.notebooks import NOTEBOOK_DIR  # noqa: E402
from ocrtrain.workbench.downloads import KEEP_SECONDS, download_link  # noqa: E402


def _href(tag: str) -> str:
    return re.search(r'href="([^"]+)"', tag).group(1)


def test_without_the_served_folder_the_bytes_go_into_the_page(monkeypatch):
    monkeypatch.delenv(DOWNLOADS_ENV, raising=False)
    tag = download_link(b"PK\x03\x04", "bundle.zip")
    assert _href(tag).startswith("data:application/zip;base64,") and 'download="bundle.zip"' in tag


def test_under_ocrtrain_dashboard_a_download_is_a_served_file(tmp_path, monkeypatch):
    _notebook, env = prepare_serving(tmp_path, NOTEBOOK_DIR / "dashboard.ipynb")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    folder = Path(env[DOWNLOADS_ENV])
    old = folder / "0123abcd"
    old.mkdir()
    (old / "stale.zip").write_bytes(b"x")
    os.utime(old, (time.time() - KEEP_SECONDS - 60,) * 2)
    checkpoint = tmp_path / "runs" / "r" / "best.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(os.urandom(4096))

    tag = download_link(checkpoint, "r/../my run-best.pt")  # a name with a path and a space
    href = _href(tag)
    assert href.startswith(env[DOWNLOADS_URL_ENV]) and href.endswith("/my_run-best.pt")
    assert 'download="my_run-best.pt"' in tag
    served = folder / href[len(env[DOWNLOADS_URL_ENV]):]
    assert served.read_bytes() == checkpoint.read_bytes()
    assert os.stat(served).st_ino == os.stat(checkpoint).st_ino, "a hard link, not a copy"
    assert not old.exists(), "downloads older than KEEP_SECONDS are pruned"
    # The allowlist Voila gets matches exactly this kind of path.
    config = (tmp_path / ".dashboard" / "voila.py").read_text()
    allow = re.search(r"file_allowlist = \[(.+)\]", config).group(1)
    pattern = ast.literal_eval(allow)
    assert re.fullmatch(pattern, f".dashboard/downloads/{served.parent.name}/{served.name}")
    assert not re.fullmatch(pattern, ".dashboard/voila.py") and not re.fullmatch(pattern, "runs/r/best.pt")
