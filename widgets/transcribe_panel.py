"""Transcription editor: a page with its boxes, each line's crop with an editable, pre-filled text.

Enter accepts a line (verified) and moves to the next; the status buttons mark a line
unreviewed / verified / skipped / bad box; lines can be filtered by status and sorted least
confident first. Every keystroke and click is saved at once through the engine
(:meth:`ocrtrain.documents.DocumentSet.update_line`), so a reload or a closed tab loses nothing.
Only verified lines become training data (``ocrtrain pages to-dataset``).

>>> # TranscribePanel(workspace).open_set("docsets/receipts")
"""
from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Optional, Union

import ipywidgets as W
import numpy as np
import traitlets

from ocrtrain.documents.docset import STATUSES, DocumentSet, Line, is_document_set
from ocrtrain.documents.review import STATUS_COLOURS, line_crop_png, page_preview_png, select_lines

from .feedback import StatusBox

__all__ = ["LineRow", "TranscribePanel"]

_LABELS = {"unreviewed": "·", "verified": "✓", "skipped": "skip", "bad_box": "bad box"}


class LineRow(W.HBox):
    """One line: crop, text field, status buttons, confidence. Saves through `save(line_id, **changes)`."""

    def __init__(self, line: Line, crop_png: bytes, save, on_accept, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-line-row")
        self.line = line
        self._save, self._on_accept, self._quiet = save, on_accept, False
        self.image = W.Image(value=crop_png, format="png", layout=W.Layout(max_width="420px"))
        self.text = W.Text(value=line.text, continuous_update=True, layout=W.Layout(width="340px"))
        self.text.add_class("ocrtrain-line-text")
        self.status = W.ToggleButtons(options=[(_LABELS[s], s) for s in STATUSES], value=line.status,
                                      style={"button_width": "60px"})
        self.status.add_class("ocrtrain-line-status")
        conf = "" if line.confidence is None else f"{line.confidence:.2f}"
        self.info = W.HTML(f"<span class='ocrtrain-help' title='model confidence'>{conf}</span>")
        self.text.observe(self._typed, names="value")
        with warnings.catch_warnings():
            # on_submit is deprecated for continuous_update=False, but here typing saves as you go
            # (continuous updates) and Enter alone accepts: only the submit event tells them apart.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.text.on_submit(lambda _: self.accept())
        self.status.observe(self._status, names="value")
        self.children = [self.image, self.text, self.status, self.info]

    def _typed(self, change) -> None:
        if not self._quiet:
            self.line = self._save(self.line.id, text=change["new"], provenance="typed") or self.line

    def _status(self, change) -> None:
        if not self._quiet:
            self.line = self._save(self.line.id, status=change["new"]) or self.line

    def accept(self) -> None:
        """Enter: the text as it stands is right; mark verified and go to the next line."""
        self.line = self._save(self.line.id, text=self.text.value, status="verified") or self.line
        self._quiet = True
        self.status.value = "verified"
        self._quiet = False
        self._on_accept(self)


class TranscribePanel(W.VBox):
    """Pick a document set and a page, then correct its lines. `docset` is the open set's path."""

    docset = traitlets.Unicode("")

    def __init__(self, workspace=None, max_rows: int = 80, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-transcribe")
        self.workspace = workspace
        self.max_rows = max_rows
        self.docs: Optional[DocumentSet] = None
        self.path = W.Combobox(placeholder="document set folder", options=self._known(),
                               layout=W.Layout(width="420px"), ensure_option=False)
        self.open_button = W.Button(description="Open", icon="folder-open")
        self.page = W.Dropdown(description="page", options=[], layout=W.Layout(width="260px"))
        self.prev_button, self.next_button = W.Button(description="◀", layout=W.Layout(width="40px")), \
            W.Button(description="▶", layout=W.Layout(width="40px"))
        self.filter = W.Dropdown(description="show", options=[("all", "")] + [(s, s) for s in STATUSES], value="")
        self.sort = W.Dropdown(description="sort", options=[("reading order", "order"),
                                                            ("least confident first", "confidence")])
        self.counts = W.HTML()
        self.counts.add_class("ocrtrain-counts")
        self.preview = W.Image(format="png", layout=W.Layout(max_width="520px"))
        self.rows = W.VBox()
        self.message = StatusBox()
        self.open_button.on_click(lambda _: self.open_set(self.path.value))
        self.page.observe(lambda _: self.show_page(), names="value")
        self.filter.observe(lambda _: self.show_page(), names="value")
        self.sort.observe(lambda _: self.show_page(), names="value")
        self.prev_button.on_click(lambda _: self._step(-1))
        self.next_button.on_click(lambda _: self._step(1))
        bar = W.HBox([self.page, self.prev_button, self.next_button, self.filter, self.sort])
        self.children = [W.HBox([self.path, self.open_button]), bar, self.counts, self.message,
                         W.HBox([self.preview, self.rows])]

    def _known(self) -> list[str]:
        root = getattr(self.workspace, "root", None)
        folder = Path(root) / "docsets" if root else None
        if not folder or not folder.is_dir():
            return []
        return sorted(str(p) for p in folder.iterdir() if is_document_set(p))

    def open_set(self, path: Union[str, Path]) -> None:
        """Open the document set at `path` on its first page."""
        try:
            self.docs = DocumentSet(Path(str(path)).expanduser())
        except Exception as exc:  # shown to the person, never raised into the page
            self.message.error(exc)
            return
        self.message.clear()
        self.docset = str(self.docs.path)
        self.page.options = [(f"{p.id} ({sum(p.counts.values())} lines)", p.id) for p in self.docs.pages]
        self.page.value = self.docs.pages[0].id if self.docs.pages else None
        self.show_page()

    def _step(self, delta: int) -> None:
        ids = [v for _, v in self.page.options]
        if ids and self.page.value in ids:
            self.page.value = ids[(ids.index(self.page.value) + delta) % len(ids)]

    def _save(self, line_id: str, **changes) -> Optional[Line]:
        try:
            line = self.docs.update_line(line_id, **changes)
        except Exception as exc:  # shown in the page; the row keeps its last saved state
            self.message.error(exc)
            return None
        self._show_counts()
        return line

    def _accepted(self, row: LineRow) -> None:
        rows = list(self.rows.children)
        i = rows.index(row)
        if i + 1 < len(rows):
            rows[i + 1].text.focus()
        self.preview.value = page_preview_png(self.docs, self.page.value, highlight=row.line.id)

    def _show_counts(self) -> None:
        counts = self.docs.counts()
        page = self.docs.page(self.page.value).counts if self.page.value else {}
        chips = " · ".join(
            f"<span style='color:rgb{STATUS_COLOURS[s]}'>{html.escape(s)} {page.get(s, 0)}/{counts[s]}</span>"
            for s in STATUSES)
        self.counts.value = f"<span class='ocrtrain-help'>this page / whole set: </span>{chips}"

    def show_page(self) -> None:
        """Rebuild the preview and the rows for the chosen page, filter and sort."""
        if self.docs is None or not self.page.value:
            self.rows.children = []
            return
        pid = self.page.value
        page = np.asarray(self.docs.image(pid))
        crop = self.docs.crop_config()
        lines = select_lines(self.docs.lines(pid), self.filter.value or None, self.sort.value)
        self.rows.children = [LineRow(l, line_crop_png(page, l, crop), self._save, self._accepted)
                              for l in lines[:self.max_rows]]
        if len(lines) > self.max_rows:
            self.message.note(f"showing {self.max_rows} of {len(lines)} lines: filter by status to see the rest")
        self.preview.value = page_preview_png(self.docs, pid)
        self._show_counts()
