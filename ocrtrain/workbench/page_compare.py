"""Whole pages before / after: the EasyOCR pipeline (``Reader.readtext``, CRAFT + the recognizer) on a
document set's held-out pages with the origin and with the run, side by side.

The numbers are :func:`ocrtrain.documents.page_eval.evaluate_pages` (page CER, box recall and
precision, lines read right); each page is drawn with its ground-truth boxes coloured by outcome
(right, misread, no box found) and the boxes found where no line is. The result is saved under
RUN/reports/ (``pages-*.json``), so reopening the tab shows the last one.

>>> # PageCompare(workspace, before=lambda: "english_g2", after=lambda: "run:runs/r1@best", run=lambda: "runs/r1")
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable, Optional

import ipywidgets as W

from ocrtrain import runfolder
from ocrtrain.documents.detect import GroupingConfig
from ocrtrain.errors import InputError, OcrtrainError

from .downloads import png_data_uri
from .feedback import StatusBox
from .tasks import BackgroundTask, Throttle
from .transcribe_panel import find_document_sets
from .workspace import Workspace

__all__ = ["PageCompare", "REPORT_KIND"]

REPORT_KIND = "pages"
_ALL = "(every page)"
_ROWS = [("page_cer", "page CER (reading order, any case)", False), ("lines_correct", "lines read right", True),
         ("line_recall", "line boxes found (recall)", True), ("line_precision", "found boxes that are lines", True)]
_LEGEND = ("<span class='ocrtrain-help'>boxes: <b style='color:#188038'>right</b> · "
           "<b style='color:#d93025'>misread</b> · <b style='color:#e68c00'>no box found</b> · "
           "<b style='color:#7878dc'>found, no line there</b></span>")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


class PageCompare(W.VBox):
    """Pick a document set and a tag, read its pages with both models, see them side by side."""

    def __init__(self, workspace: Workspace, before: Callable[[], str], after: Callable[[], Optional[str]],
                 run: Callable[[], Optional[str]], **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-pages")
        self.workspace, self._before, self._after, self._run = workspace, before, after, run
        self.result: Optional[dict] = None  # {"before": report, "after": report, "docset": path}
        self.task: Optional[BackgroundTask] = None
        style = {"description_width": "120px"}
        self.docset = W.Dropdown(description="document set", style=style, layout=W.Layout(width="520px"))
        self.tag = W.Dropdown(options=["test", "val", "train", _ALL], value="test", description="pages tagged",
                              style=style, layout=W.Layout(width="260px"))
        self.width_ths = W.BoundedFloatText(
            value=GroupingConfig.width_ths, min=0.0, max=20.0, step=0.1, description="width_ths", style=style,
            layout=W.Layout(width="220px"),
            tooltip="readtext's line grouping: word gaps up to this many box heights join one line (EasyOCR's "
                    f"default {GroupingConfig.width_ths:g}; `ocrtrain pages tune-detect DOCSET --tag val` finds yours)")
        self.width_ths.add_class("ocrtrain-pages-width")
        self.read_button = W.Button(description="Read pages", icon="file-text-o", button_style="primary",
                                    tooltip="Reader.readtext on every page, with the origin and with the run")
        self.read_button.add_class("ocrtrain-pages-read")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="300px", visibility="hidden"))
        self.status = StatusBox()
        self.summary = W.HTML()
        self.summary.add_class("ocrtrain-pages-summary")
        self.summary.add_class("ocrtrain-table")
        self.page = W.Dropdown(description="page", style=style, layout=W.Layout(width="400px"))
        self.view = W.HTML()
        self.view.add_class("ocrtrain-pages-view")
        self.read_button.on_click(self._on_read)
        self.page.observe(lambda _c: self._render_page(), names="value")
        self.children = [
            W.HTML("<h3>Whole pages, before / after</h3><span class='ocrtrain-help'>EasyOCR's whole pipeline "
                   "(CRAFT finds the lines, the recognizer reads them) on pages no training saw: tag pages "
                   "<code>test</code> when making the dataset (<code>ocrtrain pages to-dataset</code>).</span>"),
            W.HBox([self.docset, self.tag, self.width_ths]), W.HBox([self.read_button, self.progress]), self.status,
            self.summary, self.page, self.view]
        self.refresh()

    def refresh(self) -> None:
        sets = find_document_sets(getattr(self.workspace, "root", None))
        current = self.docset.value
        self.docset.options = [(f"{p.name}  ({p.parent})", str(p)) for p in sets]
        paths = [str(p) for p in sets]
        self.docset.value = current if current in paths else (paths[0] if paths else None)  # newest edited first
        self.load_saved()

    def load_saved(self) -> None:
        run = self._run()
        found = runfolder.read_latest_report(run, REPORT_KIND) if run else None
        if found is None:
            self.result = None
            self.summary.value, self.view.value, self.page.options = "", "", []
            return
        self.show(found[1])

    # -- reading --------------------------------------------------------------------------
    def _inputs(self) -> tuple[str, str, str]:
        after, before = self._after(), (self._before() or "").strip()
        if not after:
            raise InputError("no run to compare: train one on the Train tab first (or pick one above)")
        if not before:
            raise InputError("the 'before' model is empty: give an origin spec such as english_g2")
        if not self.docset.value:
            raise InputError("no document set: import pages with `ocrtrain pages import SRC --out NAME` "
                             "(they go to the work folder's docsets/) and verify their lines")
        return before, after, self.docset.value

    def _on_read(self, _b=None) -> None:
        if self.task is not None and self.task.running:
            return
        try:
            before, after, docset = self._inputs()
        except InputError as exc:
            self.status.error(exc)
            return
        tag, run = (None if self.tag.value == _ALL else self.tag.value), self._run()
        self.status.note(f"reading the pages with {before}, then with {after} (CRAFT + recognizer; "
                         "a few seconds a page on a CPU) ...")
        self.read_button.disabled = True
        self.progress.layout.visibility = "visible"
        width = float(self.width_ths.value)
        self.task = BackgroundTask(lambda stop: self._work(before, after, docset, tag, run, width), self._done,
                                   self.status.error, self._finish, name="ocrtrain-pages").start()

    def _work(self, before: str, after: str, docset: str, tag: Optional[str], run: Optional[str],
              width_ths: float) -> dict:
        from ocrtrain.documents.docset import DocumentSet
        from ocrtrain.documents.page_eval import PageEvalConfig, evaluate_pages

        docs, throttle = DocumentSet(docset), Throttle(0.5)
        config = PageEvalConfig(tag=tag, width_ths=width_ths)
        out = {"docset": docset, "tag": tag}
        for step, (key, model) in enumerate((("before", before), ("after", after))):
            def on_event(event, step=step) -> None:
                total = getattr(event, "total", 0)
                if total and throttle.ready(force=event.done >= total):
                    self.progress.max, self.progress.value = 2 * total, step * total + event.done
            out[key] = evaluate_pages(model, docs, config, callback=on_event)
        if run:
            runfolder.save_report(run, REPORT_KIND, out)
        return out

    def _done(self, result: dict) -> None:
        self.show(result)
        b, a = result["before"], result["after"]
        self.status.ok(f"read {a['pages']} pages: lines right {_pct(b['lines_correct'])} -> "
                       f"{_pct(a['lines_correct'])}, page CER {_pct(b['page_cer'])} -> {_pct(a['page_cer'])}")

    def _finish(self) -> None:
        self.read_button.disabled = False
        self.progress.layout.visibility = "hidden"

    # -- showing --------------------------------------------------------------------------
    def show(self, result: dict) -> None:
        """Show a saved or fresh result: the summary table, then page by page."""
        self.result = result
        b, a = result["before"], result["after"]
        rows = []
        for key, label, higher in _ROWS:
            x, y = b.get(key), a.get(key)
            better = None if x is None or y is None or x == y else (y > x) == higher
            mark = "" if better is None else (" ▲" if better else " ▼")
            rows.append(f"<tr><td>{label}</td><td>{_pct(x)}</td><td>{_pct(y)}{mark}</td></tr>")
        width = b.get("config", {}).get("width_ths", GroupingConfig.width_ths)
        self.summary.value = (f"<table><tr><th>{html.escape(Path(result['docset']).name)} · {b['pages']} pages"
                              f" · width_ths {width:g}</th>"
                              f"<th>before: {html.escape(str(b['model']))}</th>"
                              f"<th>after: {html.escape(str(a['model']))}</th></tr>{''.join(rows)}</table>")
        pages = [p["page"] for p in a.get("per_page", [])]
        self.page.options = pages
        self.page.value = pages[0] if pages else None
        self._render_page()

    def _render_page(self) -> None:
        result, pid = self.result, self.page.value
        if not result or pid is None:
            self.view.value = ""
            return
        try:
            from ocrtrain.documents.docset import DocumentSet
            from ocrtrain.documents.review import page_outcome_png

            docs = DocumentSet(result["docset"])
            sides = [next(p for p in result[k]["per_page"] if p["page"] == pid) for k in ("before", "after")]
            images = [png_data_uri(page_outcome_png(docs, side)) for side in sides]
        except (OcrtrainError, OSError, StopIteration, KeyError) as exc:
            self.view.value = f"<div class='ocrtrain-error'>cannot draw page {html.escape(str(pid))}: {html.escape(str(exc))}</div>"
            return
        cells = "".join(f"<td><b>{k}</b>: {s['right']} of {s['truth_lines']} lines right, CER {_pct(s['cer'])}<br>"
                        f"<img class='ocrtrain-pages-img' src='{uri}'></td>"
                        for k, s, uri in zip(("before", "after"), sides, images))
        reads = {k: {l["line"]: l for l in s.get("lines", [])} for k, s in zip(("before", "after"), sides)}
        changed = [(lid, l["truth"], reads["before"].get(lid, {}), l) for lid, l in reads["after"].items()
                   if l["outcome"] != reads["before"].get(lid, {}).get("outcome") or l["outcome"] != "right"]
        lines = "".join(f"<tr><td>{html.escape(t)}</td><td>{html.escape(str(b.get('read')))}</td>"
                        f"<td>{html.escape(str(a.get('read')))}</td><td>{html.escape(a['outcome'])}</td></tr>"
                        for _lid, t, b, a in changed[:60])
        self.view.value = (f"{_LEGEND}<table><tr>{cells}</tr></table>" +
                           (f"<table class='ocrtrain-table'><tr><th>truth</th><th>before read</th><th>after read</th>"
                            f"<th>after</th></tr>{lines}</table>" if lines else ""))
