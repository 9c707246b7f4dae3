"""Download links: files served by Voila when `ocrtrain dashboard` runs it, data URIs otherwise.

`ocrtrain dashboard` tells the kernel (``$OCRTRAIN_DOWNLOADS``, ``$OCRTRAIN_DOWNLOADS_URL``, see
ocrtrain/cli/dashboard.py) a folder that Voila serves: a download is written there as
``TOKEN/NAME`` (a hard link for a file on disk, so a 15 MB checkpoint is not copied) and the link
points at it, with the real name and Content-Type. Without that folder (plain ``voila``,
JupyterLab, tests) the bytes go into the page as a data URI, as before.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import mimetypes
import os
import re
import secrets
import shutil
import time
import zipfile
from pathlib import Path
from typing import Optional, Union
from urllib.parse import quote

from ocrtrain.cli.dashboard import DOWNLOAD_TYPES, DOWNLOADS_ENV, DOWNLOADS_URL_ENV
from ocrtrain.errors import OcrtrainError
from ocrtrain.fsutil import write_bytes_atomic

__all__ = ["download_link", "data_uri_link", "served_downloads", "zip_folder", "png_data_uri", "KEEP_SECONDS"]

log = logging.getLogger(__name__)
#: Download files older than this are removed when the next one is written.
KEEP_SECONDS = 24 * 3600


def served_downloads() -> Optional[tuple[Path, str]]:
    """(folder, URL prefix) of the served downloads folder, or None when the dashboard was not
    started by `ocrtrain dashboard`."""
    folder, url = os.environ.get(DOWNLOADS_ENV), os.environ.get(DOWNLOADS_URL_ENV)
    if not folder or not url or not Path(folder).is_dir():
        return None
    return Path(folder), url if url.endswith("/") else url + "/"


def download_link(data: Union[bytes, str, Path], filename: str, label: str = "",
                  css_class: str = "ocrtrain-download") -> str:
    """An <a download> tag for `data` (bytes or a file path) named `filename`: a served file when
    the dashboard runs under `ocrtrain dashboard`, else a data URI."""
    name = _safe_name(filename)
    text = html.escape(label or f"Download {name}")
    served = served_downloads() if Path(name).suffix in DOWNLOAD_TYPES else None
    if served is None:
        return _data_uri_tag(data, name, text, css_class)
    folder, url = served
    _prune(folder)
    token = secrets.token_hex(8)
    target = folder / token / name
    try:
        target.parent.mkdir()
        if isinstance(data, bytes):
            write_bytes_atomic(target, data)
        else:
            _link_or_copy(Path(data), target)
        size = target.stat().st_size
    except (OSError, OcrtrainError) as exc:  # a full or read-only home: the page can still carry it
        log.warning("could not write the download %s (%s): putting it into the page instead", target, exc)
        shutil.rmtree(target.parent, ignore_errors=True)
        return _data_uri_tag(data, name, text, css_class)
    return (f'<a class="{css_class}" download="{html.escape(name)}" href="{html.escape(url)}{token}/{quote(name)}" '
            f'type="{DOWNLOAD_TYPES[target.suffix]}">{text}</a> '
            f'<span class="ocrtrain-help">({size / 1e6:.1f} MB)</span>')


#: The old name: compare_panel's checkpoint link still calls it, and gets a served file too.
data_uri_link = download_link


def _safe_name(filename: str) -> str:
    # The served folder's allowlist takes one path segment; keep names portable too.
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name).lstrip(".")
    return name or "download"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # a snapshot that costs no space; survives the run's deletion
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def _prune(folder: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


def _data_uri_tag(data: Union[bytes, str, Path], name: str, text: str, css_class: str) -> str:
    if not isinstance(data, bytes):
        data = Path(data).read_bytes()
    mime = DOWNLOAD_TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<a class="{css_class}" download="{html.escape(name)}" href="data:{mime};base64,{b64}">{text}</a> '
            f'<span class="ocrtrain-help">({len(data) / 1e6:.1f} MB; start the dashboard with '
            f'<code>ocrtrain dashboard</code> to download it as a file)</span>')


def zip_folder(folder: Union[str, Path], files: Union[list, None] = None) -> bytes:
    """The zip (bytes) of `folder`'s files (or just `files`, relative names), flat paths kept."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        paths = [folder / f for f in files] if files else sorted(p for p in folder.rglob("*") if p.is_file())
        for p in paths:
            zf.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    """`data:` URI of PNG (or any image) bytes, for <img src>."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
