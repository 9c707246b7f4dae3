"""Export tab: write an EasyOCR user_network bundle, check parity with the real Reader, download it."""
from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Optional

import ipywidgets as W

from ocrtrain import runfolder
from ocrtrain.errors import InputError, OcrtrainError
from ocrtrain.events import Progress
from ocrtrain.fsutil import format_duration
from ocrtrain.readconfig import ReadConfig

from .downloads import download_link, zip_folder
from .feedback import StatusBox
from .pickers import DatasetPicker, RunVersionPicker, run_dataset
from .tasks import BackgroundTask, Throttle
from .workspace import Workspace

__all__ = ["ExportPanel"]


class ExportPanel(W.VBox):
    """Pick a run version, name the model, export, see the parity check, download the zip."""

    def __init__(self, workspace: Workspace, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-export")
        self.workspace = workspace
        self.task: Optional[BackgroundTask] = None
        self.result: Optional[dict] = None
        self.parity: Optional[dict] = None
        style = {"description_width": "120px"}
        self.source = RunVersionPicker(workspace, description="run")
        self.name = W.Text(value="custom_model", description="model name", style=style,
                           layout=W.Layout(width="400px"),
                           tooltip="a Python identifier: EasyOCR imports NAME.py and loads NAME.pth")
        self.name.add_class("ocrtrain-export-name")
        self.parity_data = DatasetPicker(workspace, description="parity data")
        self.parity_on = W.Checkbox(value=True, description="check parity with easyocr.Reader", indent=False)
        self.parity_on.add_class("ocrtrain-export-parity-on")
        self.parity_limit = W.IntText(value=ReadConfig.parity_limit, description="parity samples", style=style,
                                      layout=W.Layout(width="220px"))
        self.parity_limit.add_class("ocrtrain-export-parity-limit")
        self.export_button = W.Button(description="Export", icon="box", button_style="primary")
        self.export_button.add_class("ocrtrain-export-run")
        self.cancel_button = W.Button(description="Cancel", icon="stop", button_style="warning", disabled=True,
                                      tooltip="stop the parity check after the current batch (the bundle stays)")
        self.cancel_button.add_class("ocrtrain-export-cancel")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="300px"))
        self.progress.add_class("ocrtrain-export-progress")
        self.progress_text = W.HTML()
        self.progress_text.add_class("ocrtrain-export-progress-text")
        self.progress_row = W.HBox([self.progress, self.progress_text],
                                   layout=W.Layout(align_items="center", display="none"))
        self.status = StatusBox()
        self.parity_html = W.HTML()
        self.parity_html.add_class("ocrtrain-parity")
        self.parity_html.add_class("ocrtrain-table")
        self.download = W.HTML()
        self.download.add_class("ocrtrain-export-download")
        self.snippet = W.HTML()
        self.snippet.add_class("ocrtrain-snippet")
        self.export_button.on_click(self._on_export)
        self.cancel_button.on_click(self._on_cancel)
        self.source.observe(self._on_run, names="run")
        self.children = [
            W.HTML("<h3>Export for EasyOCR</h3><span class='ocrtrain-help'>Writes NAME.pth, NAME.yaml and "
                   "NAME.py (EasyOCR's user_network format) into the run's export/ folder.</span>"),
            self.source, self.name, self.parity_data, W.HBox([self.parity_on, self.parity_limit]),
            W.HBox([self.export_button, self.cancel_button]), self.progress_row, self.status,
            self.parity_html, self.download, self.snippet,
        ]
        self._on_run()

    def refresh(self) -> None:
        self.source.refresh()
        self.parity_data.refresh()
        self._on_run()

    def _on_run(self, _change=None) -> None:
        run = self.source.run
        if run:
            ds = run_dataset(Path(run))
            if ds and Path(ds).is_dir():
                self.parity_data.refresh(select=str(Path(ds).resolve()))
        # The run's newest parity check (from here, `ocrtrain export --parity-data` or a notebook).
        found = runfolder.read_latest_report(run, "parity") if run else None
        self.parity = found[1] if found else None
        self.parity_html.value = ""
        if found:
            self._render_parity(found[1], f" (last check, {html.escape(found[0].name)})")

    def _on_export(self, _b=None) -> None:
        if self.task is not None and self.task.running:
            return
        run, version = self.source.run, self.source.version
        name = self.name.value.strip()
        try:
            if not run or not version:
                raise InputError("no trained run with a checkpoint to export: train one on the Train tab first")
            if not name:
                raise InputError("the model name is empty: give one such as receipts_no (EasyOCR imports NAME.py)")
            if self.parity_on.value and not self.parity_data.value:
                raise InputError("parity check needs a dataset: pick one, or untick the parity check")
            if self.parity_limit.value < 1:
                raise InputError(f"parity samples must be at least 1, got {self.parity_limit.value}")
        except OcrtrainError as exc:
            self.status.error(exc)
            return
        out_dir = Path(run) / "export"
        check, data, limit = self.parity_on.value, self.parity_data.value, self.parity_limit.value
        self.status.note(f"exporting {Path(run).name} ({version}) as {name} ...")
        self.export_button.disabled, self.cancel_button.disabled = True, False
        self.parity_html.value = self.download.value = self.snippet.value = ""
        self._set_progress(0, 1, "info", f"exporting {html.escape(name)} ...")
        self.progress_row.layout.display = "flex"
        on_event = self._parity_events()
        began = time.monotonic()

        def work(stop):
            from ocrtrain.evaluate import parity_check
            from ocrtrain.export import export_easyocr

            result = export_easyocr(run, name, out_dir, version=version)  # checks the name first
            parity = None
            if check and not stop.is_set():
                self._set_progress(0, 1, "info", "loading our model and easyocr.Reader for the parity check ...")
                parity = parity_check(out_dir, name, data, limit=limit, callback=on_event, stop_event=stop)
                if not parity.get("canceled"):
                    runfolder.save_report(run, "parity", {**parity, "bundle": name, "version": version})
            return result, parity, stop.is_set()

        def done(out) -> None:
            self.result, self.parity, canceled = out
            if canceled:
                read = (self.parity or {}).get("n", 0)
                self._set_progress(read, self.progress.max, "warning",
                                   f"parity canceled after {read}/{self.progress.max} lines")
            elif self.parity is None:
                self._set_progress(1, 1, "success", f"exported in {format_duration(time.monotonic() - began)}")
            else:
                self.progress.bar_style = "success"
            self._show(out_dir, name, canceled)

        def failed(exc) -> None:
            self.progress.bar_style = "danger"
            self.status.error(exc)

        def finish() -> None:
            self.export_button.disabled, self.cancel_button.disabled = False, True

        self.task = BackgroundTask(work, done, failed, finish, name="ocrtrain-export").start()

    def _on_cancel(self, _b=None) -> None:
        if self.task is not None and self.task.running:
            self.task.cancel()
            self.cancel_button.disabled = True
            self.status.note("canceling: the parity check stops after the current batch ...")

    def _set_progress(self, value: int, total: int, style: str, text: str) -> None:
        # Text before value: whoever watches the bar's value (a test, a front end) sees the matching text.
        self.progress.max = max(1, total)
        self.progress.bar_style = style
        self.progress_text.value = f"<span class='ocrtrain-help'>{text}</span>"
        self.progress.value = min(value, max(1, total))

    def _parity_events(self):
        """The callback for parity_check's Progress events: bar, 'parity n/N lines', rate and ETA (throttled)."""
        throttle = Throttle(0.5)
        begun: list[float] = []

        def on_event(event) -> None:
            if not isinstance(event, Progress) or not event.total:
                return
            if not begun:  # the first event (0 of N) comes when both models are loaded
                begun.append(time.monotonic())
            if not throttle.ready(force=event.done in (0, event.total)):
                return
            elapsed = time.monotonic() - begun[0]
            rate = event.done / elapsed if event.done and elapsed > 0 else None
            eta = (event.total - event.done) / rate if rate else None
            text = (f"parity {event.done}/{event.total} lines"
                    + (f" · {rate:.1f} lines/s · ETA {format_duration(eta)}" if rate and event.done < event.total else "")
                    + (f" · took {format_duration(elapsed)}" if event.done >= event.total else ""))
            self._set_progress(event.done, event.total, "info", text)

        return on_event

    def _show(self, out_dir: Path, name: str, canceled: bool = False) -> None:
        files = [f"{name}{s}" for s in (".pth", ".yaml", ".py")]
        missing = [f for f in files if not (out_dir / f).is_file()]
        if missing:
            self.status.error(f"export finished but {', '.join(missing)} are missing in {out_dir}")
            return
        p = self.parity
        if canceled:
            partial = f"after {p.get('n')} of {self.progress.max} lines" if p else "before it began"
            self.status.note(f"exported {name} to {out_dir}; the parity check was canceled {partial} "
                             "(not saved as the run's report): press Export again to check it")
            if p and p.get("n"):
                self._render_parity(p, " (canceled: partial)")
        elif p is not None:
            self._render_parity(p)
            self.status.ok(f"exported {name} to {out_dir}" + ("" if p.get("ok") else " (parity outside tolerance)"))
        else:
            self.status.ok(f"exported {name} to {out_dir}")
        self.download.value = download_link(zip_folder(out_dir, files), f"{name}.zip",
                                            label=f"Download {name}.zip (pth + yaml + py)")
        snippet = (self.result or {}).get("snippet", "")
        self.snippet.value = f"<b>Use it with EasyOCR</b><pre>{html.escape(snippet)}</pre>"

    def _render_parity(self, p: dict, note: str = "") -> None:
        verdict = "ok" if p.get("ok") else "error"
        diff = p.get("diff_points")
        rows = "".join(
            f"<tr><td>{d['index']}</td><td>{html.escape(d['label'])}</td><td>{html.escape(d['ours'])}</td>"
            f"<td>{html.escape(d['reader'])}</td></tr>" for d in p.get("disagreements", [])[:10])
        self.parity_html.value = (
            f'<div class="ocrtrain-{verdict}">parity on {p.get("n")} {html.escape(str(p.get("split")))} lines: '
            f"our evaluator {100 * (p.get('accuracy_ours') or 0):.1f}% vs easyocr.Reader "
            f"{100 * (p.get('accuracy_reader') or 0):.1f}% line accuracy "
            f"(difference {'–' if diff is None else f'{diff:+.2f}'} points, tolerance ±{p.get('tolerance_points')}; "
            f"identical readings {100 * (p.get('agreement') or 0):.1f}%){note}</div>"
            + (f"<table><tr><th>#</th><th>label</th><th>ours</th><th>Reader</th></tr>{rows}</table>" if rows else ""))
