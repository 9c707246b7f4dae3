"""Transcription editor: a page with its boxes, each line's crop with an editable, pre-filled text.

Enter accepts a line (verified) and moves to the next (on the last line of a page, to the next
page's first line); the status buttons mark a line unreviewed / verified / skipped / bad box;
lines can be filtered by status and by confidence and sorted least confident first. Every
keystroke and click is saved at once through the engine
(:meth:`ocrtrain.documents.DocumentSet.update_line`), so a reload or a closed tab loses nothing;
opened again, the editor resumes on the most recently edited set, at its first page with lines
left to review. Only verified lines become training data (``ocrtrain pages to-dataset``).

>>> # TranscribePanel(workspace).open_set("docsets/receipts")
"""
from __future__ import annotations

import html
import json
import threading
import warnings
from pathlib import Path
from typing import Optional, Union

import ipywidgets as W
import numpy as np
import traitlets

from ocrtrain.documents.docset import MANIFEST, STATUSES, DocumentSet, Line, is_document_set
from ocrtrain.documents.review import STATUS_COLOURS, line_crop_png, page_preview_png, select_lines
from ocrtrain.home import DOCSETS_DIR  # the work folder's sub-folder for document sets

from .feedback import StatusBox

__all__ = ["DOCSETS_DIR", "LineRow", "TranscribePanel", "find_document_sets"]

_LABELS = {"unreviewed": "·", "verified": "✓", "skipped": "skip", "bad_box": "bad"}
_TIPS = {"unreviewed": "unreviewed: waits for a look", "verified": "verified (Enter): becomes training data",
         "skipped": "skipped: not used for training", "bad_box": "bad box: the box does not hold one text line"}
# A new page's rows have no browser views yet when they are sent: a focus sent at once is lost.
_FOCUS_DELAY_S = 0.4


def _modified(path: Path) -> str:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("modified", "")
    except (OSError, ValueError):
        return ""


def find_document_sets(root: Union[str, Path, None]) -> list[Path]:
    """Document sets in ROOT/docsets/ and ROOT itself, most recently edited first."""
    if not root:
        return []
    found = []
    for folder in (Path(root) / DOCSETS_DIR, Path(root)):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and is_document_set(p)]
    return sorted(found, key=lambda p: (_modified(p), p.stat().st_mtime), reverse=True)


class LineRow(W.HBox):
    """One line: crop, text field, status buttons, confidence. Saves through `save(line_id, **changes)`."""

    def __init__(self, line: Line, crop_png: bytes, save, on_accept, on_status=None, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-line-row")
        self.add_class(f"ocrtrain-line-{line.status}")
        self.line = line
        self._save, self._on_accept, self._on_status, self._quiet = save, on_accept, on_status, False
        # A fixed box for every crop, so the text fields line up under each other.
        self.image = W.Image(value=crop_png, format="png", layout=W.Layout(
            width="280px", height="40px", object_fit="contain", object_position="left center"))
        self.text = W.Text(value=line.text, continuous_update=True, layout=W.Layout(width="300px"))
        self.text.add_class("ocrtrain-line-text")
        self.status = W.ToggleButtons(options=[(_LABELS[s], s) for s in STATUSES], value=line.status,
                                      tooltips=[_TIPS[s] for s in STATUSES],
                                      style={"button_width": "50px", "description_width": "0px"},
                                      layout=W.Layout(width="auto", flex="0 0 auto"))
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

    def _mark(self, status: str) -> None:
        # A CSS class per status, so a page (and a browser test) can see the saved state.
        for s in STATUSES:
            self.remove_class(f"ocrtrain-line-{s}")
        self.add_class(f"ocrtrain-line-{status}")

    def _typed(self, change) -> None:
        if not self._quiet:
            self.line = self._save(self.line.id, text=change["new"], provenance="typed") or self.line

    def _status(self, change) -> None:
        if not self._quiet:
            self.line = self._save(self.line.id, status=change["new"]) or self.line
            self._mark(self.line.status)
            if self._on_status:
                self._on_status(self)

    def close(self) -> None:
        for child in self.children:
            child.close()
        super().close()

    def accept(self) -> None:
        """Enter: the text as it stands is right; mark verified and go to the next line."""
        self.line = self._save(self.line.id, text=self.text.value, status="verified") or self.line
        self._quiet = True
        self.status.value = self.line.status
        self._quiet = False
        self._mark(self.line.status)
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
        self.path.add_class("ocrtrain-docset-path")
        self.open_button = W.Button(description="Open", icon="folder-open")
        self.open_button.add_class("ocrtrain-docset-open")
        self.page = W.Dropdown(description="page", options=[], layout=W.Layout(width="260px"))
        self.page.add_class("ocrtrain-docset-page")
        self.prev_button, self.next_button = W.Button(description="◀", layout=W.Layout(width="40px")), \
            W.Button(description="▶", layout=W.Layout(width="40px"))
        self.filter = W.Dropdown(description="show", options=[("all", "")] + [(s, s) for s in STATUSES], value="",
                                 layout=W.Layout(width="200px"))
        self.filter.add_class("ocrtrain-line-filter")
        self.max_confidence = W.BoundedFloatText(
            value=1.0, min=0.0, max=1.0, step=0.05, description="conf ≤", layout=W.Layout(width="150px"),
            tooltip="show only lines the model read with at most this confidence (unread lines always)")
        self.max_confidence.add_class("ocrtrain-line-max-confidence")
        self.sort = W.Dropdown(description="sort", options=[("reading order", "order"),
                                                            ("least confident first", "confidence")],
                               layout=W.Layout(width="260px"))
        self.sort.add_class("ocrtrain-line-sort")
        self.counts = W.HTML()
        self.counts.add_class("ocrtrain-counts")
        self.preview = W.Image(format="png", layout=W.Layout(max_width="420px", flex="0 0 auto"))
        self.preview.add_class("ocrtrain-page-preview")
        self.rows = W.VBox()
        self.rows.add_class("ocrtrain-line-rows")
        self.message = StatusBox()
        self._loading = False
        self._wire()
        bar = W.HBox([self.page, self.prev_button, self.next_button, self.filter, self.max_confidence, self.sort])
        help_line = W.HTML("<span class='ocrtrain-help'>Correct the text (saved as you type) · <b>Enter</b>: "
                           "verified, on to the next line · only verified lines become training data "
                           "(<code>ocrtrain pages to-dataset DOCSET --out DATASET</code>)</span>")
        self.children = [help_line, W.HBox([self.path, self.open_button]), bar, self.counts, self.message,
                         W.HBox([self.preview, self.rows])]
        self.refresh()

    def _wire(self) -> None:
        self.open_button.on_click(lambda _: self.open_set(self.path.value))
        for control in (self.page, self.filter, self.sort, self.max_confidence):
            control.observe(self._changed, names="value")
        self.prev_button.on_click(lambda _: self._step(-1))
        self.next_button.on_click(lambda _: self._step(1))

    def _changed(self, _change) -> None:
        if not self._loading:
            self.show_page()

    def _known(self) -> list[str]:
        return [str(p) for p in find_document_sets(getattr(self.workspace, "root", None))]

    def refresh(self) -> None:
        """List the work folder's document sets again; with none open yet, open the latest edited."""
        known = self._known()
        self.path.options = known
        if self.docs is None and known:
            self.path.value = known[0]
            self.open_set(known[0])
        elif self.docs is not None and is_document_set(self.docs.path):
            # Another writer (the CLI, a second tab) may have changed the manifest: read it again.
            self.docs = DocumentSet(self.docs.path)
            if self.page.value in {p.id for p in self.docs.pages}:
                self._show_counts()
        elif self.docs is None:
            root = getattr(self.workspace, "root", None)
            where = Path(root) / DOCSETS_DIR if root else Path(DOCSETS_DIR)
            self.message.note(f"no document sets in {where} yet: import pages with "
                              f"`ocrtrain pages import SOURCE --out {where / 'NAME'}`, or type a folder above")

    def open_set(self, path: Union[str, Path]) -> None:
        """Open the document set at `path` on its first page with lines left to review."""
        try:
            docs = DocumentSet(Path(str(path)).expanduser())
        except Exception as exc:  # shown to the person, never raised into the page
            self.message.error(exc)
            return
        self.docs = docs
        self.message.clear()
        self.docset = str(docs.path)
        if self.path.value != self.docset:
            self.path.value = self.docset
        pages = docs.pages
        todo = [p.id for p in pages if p.counts.get("unreviewed", 0)]
        start = todo[0] if todo else (pages[0].id if pages else None)
        self._loading = True  # one rebuild for the new set, not one per changed control
        try:
            self.page.options = [(f"{p.id} ({sum(p.counts.values())} lines)", p.id) for p in pages]
            self.page.value = start
        finally:
            self._loading = False
        if not pages:
            self.message.note(f"{docs.path} has no pages: import some with `ocrtrain pages import`")
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
        if row not in rows:  # a row of a page no longer shown (its Enter arrived late): saved, stay
            return
        i = rows.index(row)
        if i + 1 < len(rows):
            rows[i + 1].text.focus()
            self._redraw(row)
            return
        ids = [v for _, v in self.page.options]
        at = ids.index(self.page.value) if self.page.value in ids else len(ids)
        if at + 1 < len(ids):  # the page's last line: on to the next page's first line
            self.page.value = ids[at + 1]
            if self.rows.children:
                timer = threading.Timer(_FOCUS_DELAY_S, self.rows.children[0].text.focus)
                timer.daemon = True
                timer.start()
        else:
            self._redraw(row)
            self.message.ok(f"last line of the last page: {self._todo_text()}")

    def _redraw(self, row: LineRow) -> None:
        self.preview.value = page_preview_png(self.docs, self.page.value, highlight=row.line.id)

    def _todo_text(self) -> str:
        left = self.docs.counts()["unreviewed"]
        return f"{left} line{'' if left == 1 else 's'} left to review" if left else "every line is reviewed"

    def _show_counts(self) -> None:
        counts = self.docs.counts()
        page = self.docs.page(self.page.value).counts if self.page.value else {}
        chips = " · ".join(
            f"<span class='ocrtrain-count-{s}' data-page='{page.get(s, 0)}' data-total='{counts[s]}' "
            f"style='color:rgb{STATUS_COLOURS[s]}'>{html.escape(s)} {page.get(s, 0)}/{counts[s]}</span>"
            for s in STATUSES)
        self.counts.value = f"<span class='ocrtrain-help'>this page / whole set: </span>{chips}"

    def _shown_lines(self, page_id: str) -> list[Line]:
        limit = self.max_confidence.value
        lines = select_lines(self.docs.lines(page_id), self.filter.value or None, self.sort.value)
        if limit < 1.0:  # unread lines (no confidence) always need a look
            lines = [l for l in lines if l.confidence is None or l.confidence <= limit]
        return lines

    def show_page(self) -> None:
        """Rebuild the preview and the rows for the chosen page, filters and sort."""
        if self.docs is None or not self.page.value:
            self.rows.children = []
            return
        pid = self.page.value
        try:
            page = np.asarray(self.docs.image(pid))
        except Exception as exc:  # a page image gone missing: say which, keep the editor usable
            self.rows.children = []
            self.message.error(f"page {pid}: cannot read {self.docs.image_path(pid)} ({exc}): "
                               "restore the file or import the page again")
            return
        crop = self.docs.crop_config()
        lines = self._shown_lines(pid)
        old = self.rows.children
        self.rows.children = [LineRow(l, line_crop_png(page, l, crop), self._save, self._accepted, self._redraw)
                              for l in lines[:self.max_rows]]
        for row in old:  # their widgets would live on in the kernel (and the page) otherwise
            row.close()
        if len(lines) > self.max_rows:
            self.message.note(f"showing {self.max_rows} of {len(lines)} lines: filter by status to see the rest")
        self.preview.value = page_preview_png(self.docs, pid)
        self._show_counts()
