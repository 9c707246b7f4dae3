"""Export tab: write an EasyOCR user_network bundle, check parity with the real Reader, download it."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

import ipywidgets as W

from ocrtrain import runfolder
from ocrtrain.errors import InputError, OcrtrainError
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
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="300px", visibility="hidden"))
        self.progress.add_class("ocrtrain-export-progress")
        self.status = StatusBox()
        self.parity_html = W.HTML()
        self.parity_html.add_class("ocrtrain-parity")
        self.parity_html.add_class("ocrtrain-table")
        self.download = W.HTML()
        self.download.add_class("ocrtrain-export-download")
        self.snippet = W.HTML()
        self.snippet.add_class("ocrtrain-snippet")
        self.export_button.on_click(self._on_export)
        self.source.observe(self._on_run, names="run")
        self.children = [
            W.HTML("<h3>Export for EasyOCR</h3><span class='ocrtrain-help'>Writes NAME.pth, NAME.yaml and "
                   "NAME.py (EasyOCR's user_network format) into the run's export/ folder.</span>"),
            self.source, self.name, self.parity_data, W.HBox([self.parity_on, self.parity_limit]),
            W.HBox([self.export_button, self.progress]), self.status,
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
        self.export_button.disabled = True
        self.parity_html.value = self.download.value = self.snippet.value = ""
        self.progress.layout.visibility = "visible"
        throttle = Throttle(0.5)

        def on_event(event) -> None:
            total = getattr(event, "total", 0)
            if total and throttle.ready(force=event.done >= total):
                self.progress.max = total
                self.progress.value = event.done

        def work(stop):
            from ocrtrain.evaluate import parity_check
            from ocrtrain.export import export_easyocr

            result = export_easyocr(run, name, out_dir, version=version)  # checks the name first
            parity = None
            if check and not stop.is_set():
                parity = parity_check(out_dir, name, data, limit=limit, callback=on_event)
                runfolder.save_report(run, "parity", {**parity, "bundle": name, "version": version})
            return result, parity

        def done(out) -> None:
            self.result, self.parity = out
            self._show(out_dir, name)

        def finish() -> None:
            self.export_button.disabled = False
            self.progress.layout.visibility = "hidden"

        self.task = BackgroundTask(work, done, self.status.error, finish, name="ocrtrain-export").start()

    def _show(self, out_dir: Path, name: str) -> None:
        files = [f"{name}{s}" for s in (".pth", ".yaml", ".py")]
        missing = [f for f in files if not (out_dir / f).is_file()]
        if missing:
            self.status.error(f"export finished but {', '.join(missing)} are missing in {out_dir}")
            return
        p = self.parity
        if p is not None:
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
