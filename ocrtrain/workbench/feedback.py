"""A message box that shows the engine's errors and notes in the page, never a traceback."""
from __future__ import annotations

import html
import logging
import re

import ipywidgets as W

from ocrtrain.errors import OcrtrainError

__all__ = ["StatusBox", "describe_error", "refusal_with_fix", "STYLE"]

log = logging.getLogger(__name__)

#: Page-wide CSS for the ocrtrain-* classes; the Workbench puts it once at the top.
STYLE = """
<style>
.ocrtrain-error { background:#fdecea; border-left:4px solid #d93025; color:#5f2120;
  padding:6px 10px; margin:4px 0; white-space:pre-wrap; font-family:inherit; }
.ocrtrain-note { background:#e8f0fe; border-left:4px solid #1a73e8; color:#0b2e63;
  padding:6px 10px; margin:4px 0; white-space:pre-wrap; }
.ocrtrain-warn { background:#fef7e0; border-left:4px solid #f9ab00; color:#594300;
  padding:6px 10px; margin:4px 0; white-space:pre-wrap; }
.ocrtrain-ok { background:#e6f4ea; border-left:4px solid #188038; color:#0d3b1b;
  padding:6px 10px; margin:4px 0; white-space:pre-wrap; }
.ocrtrain-help { color:#5f6368; font-size:0.85em; line-height:1.3; display:inline-block; }
.ocrtrain-invalid input, .ocrtrain-invalid select { border-color:#d93025 !important; }
.ocrtrain-table table { border-collapse:collapse; font-size:0.9em; }
.ocrtrain-table th, .ocrtrain-table td { border-bottom:1px solid #ddd; padding:3px 8px; text-align:left; }
.ocrtrain-table tr.selected td { background:#fff7d6; }
.ocrtrain-log pre { max-height:220px; overflow:auto; font-size:0.8em; background:#f8f9fa;
  padding:6px; margin:0; line-height:1.35; }
.ocrtrain-gallery td { vertical-align:middle; padding:3px 6px; border-bottom:1px solid #eee; }
.ocrtrain-gallery td.text { white-space:pre; font-family:"DejaVu Sans Mono",monospace; font-size:0.9em; }
.ocrtrain-gallery .bad { background:#fbd3d0; color:#a50e0e; text-decoration:none; }
.ocrtrain-gallery .good { color:#188038; }
.ocrtrain-gallery img { max-height:40px; max-width:420px; image-rendering:auto; }
.ocrtrain-snippet pre { background:#f8f9fa; padding:8px; font-size:0.85em; line-height:1.35;
  font-family:"DejaVu Sans Mono",monospace; }
.ocrtrain-log pre { font-family:"DejaVu Sans Mono",monospace; }
.ocrtrain-workbench .jupyter-button:disabled, .ocrtrain-workbench .widget-button:disabled,
.ocrtrain-workbench button[disabled] { opacity:0.45 !important; cursor:not-allowed !important;
  filter:grayscale(60%); box-shadow:none !important; }
a.ocrtrain-download { color:#1a73e8; text-decoration:underline; font-weight:600; }
</style>
"""


# The page's upload refusal (ocrtrain/cli/dashboard.py, TEMPLATE_INDEX) names the file, its size and
# the limit, then the Dataset tab's zip-import fix (give its path on the server), which only that
# upload can take: the other uploads keep the first part and say their own fix.
_REFUSED = re.compile(r"^(?P<what>.*?, over the dashboard's upload limit of [\d.]+ MiB): ", re.S)


def refusal_with_fix(message: str, fix: str) -> str:
    """The page's upload refusal `message` with its fix replaced by `fix` (other messages unchanged)."""
    found = _REFUSED.match(message)
    return f"{found['what']}: {fix}" if found else message


def describe_error(exc: BaseException) -> str:
    """The text a person sees for `exc`: the engine's message, or a short note for a bug."""
    if isinstance(exc, OcrtrainError):
        return str(exc)
    # Not one of ours: a bug or an environment problem. Keep the page readable, log the details.
    log.error("unexpected error", exc_info=exc)
    return f"unexpected {type(exc).__name__}: {exc} (details are in the server log)"


class StatusBox(W.HTML):
    """One line (or a few) of feedback: error / warn / note / ok, each with a stable CSS class."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-status")
        self.kind = ""

    def _show(self, kind: str, text: str) -> None:
        self.kind = kind
        self.value = f'<div class="ocrtrain-{kind}">{html.escape(text)}</div>'

    def error(self, exc_or_text) -> None:
        text = exc_or_text if isinstance(exc_or_text, str) else describe_error(exc_or_text)
        self._show("error", text)

    def warn(self, text: str) -> None:
        """Something worked, but not as well as it looks (e.g. most rows rejected), or needs a decision."""
        self._show("warn", text)

    def note(self, text: str) -> None:
        self._show("note", text)

    def ok(self, text: str) -> None:
        self._show("ok", text)

    def clear(self) -> None:
        self.kind = ""
        self.value = ""

    @property
    def text(self) -> str:
        """The message shown now, without markup (for tests and logs)."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self.value))
