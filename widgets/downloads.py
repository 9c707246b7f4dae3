"""Downloads as data-URI links (Voila serves no arbitrary files) and zip bundles of folders."""
from __future__ import annotations

import base64
import html
import io
import mimetypes
import zipfile
from pathlib import Path
from typing import Union

__all__ = ["data_uri_link", "zip_folder", "png_data_uri"]


def data_uri_link(data: Union[bytes, str, Path], filename: str, label: str = "",
                  css_class: str = "ocrtrain-download") -> str:
    """An <a download> tag holding `data` (bytes or a file path) base64-encoded."""
    if not isinstance(data, bytes):
        data = Path(data).read_bytes()
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    b64 = base64.b64encode(data).decode("ascii")
    text = html.escape(label or f"Download {filename}")
    return (f'<a class="{css_class}" download="{html.escape(filename)}" '
            f'href="data:{mime};base64,{b64}">{text}</a> '
            f'<span class="ocrtrain-help">({len(data) / 1e6:.1f} MB)</span>')


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
