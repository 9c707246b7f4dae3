"""Dataset tab: text source, rendering options, live preview, Generate (threaded, cancelable), import, audit.

Three ways to a dataset folder under ``workspace/datasets``:
synthetic lines from the built-in corpus or from an uploaded word list / CSV column
(:func:`ocrtrain.synth.generate_dataset`), or an uploaded zip of labelled images
(:func:`ocrtrain.imports.import_dataset`), or the same import from a path under the work folder on
the server (for files over the page's upload limit, :func:`ocrtrain.cli.dashboard.upload_limit`).
Every new dataset is audited against english_g2's charset (:func:`ocrtrain.audit.audit_dataset`).
"""
from __future__ import annotations

import csv
import html
import io
import os
from pathlib import Path
from typing import Optional

import ipywidgets as W
import traitlets

from ocrtrain.cli.dashboard import upload_limit
from ocrtrain.corpus import BUILTIN
from ocrtrain.errors import InputError, OcrtrainError
from ocrtrain.imports import ImportConfig
from ocrtrain.synth import SynthConfig

from .audit_view import AuditView
from .feedback import StatusBox, refusal_with_fix
from .manage import FolderActions
from .forms import ConfigForm
from .pickers import DatasetPicker
from .tasks import BackgroundTask, Throttle
from .workspace import Workspace

__all__ = ["DatasetPanel", "WORDS_FIX"]

#: What helps a word list over the upload limit (the page's own fix, an import by a path on the
#: server, is the zip import's: the word-list source has no path field).
WORDS_FIX = ("upload a smaller list (only the column with the text, or fewer entries), generate on the server "
             "with `ocrtrain synth --source FILE --out DIR`, or restart the dashboard with "
             "`ocrtrain dashboard --max-upload-mb N`")


def _uploaded(value) -> Optional[tuple[str, bytes]]:
    """(name, bytes) of a FileUpload's first file (ipywidgets 8 tuple of dicts), or None."""
    if not value:
        return None
    item = value[0] if isinstance(value, (list, tuple)) else next(iter(value.values()))
    return str(item["name"]), bytes(item["content"])


class DatasetPanel(W.VBox):
    """Build a dataset; the traitlet `dataset` is the folder of the last one made (or audited)."""

    dataset = traitlets.Unicode("")

    def __init__(self, workspace: Workspace, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-dataset")
        self.workspace = workspace
        self.task: Optional[BackgroundTask] = None
        self.uploads_dir = workspace.root / "uploads"
        self.audit_view = AuditView()
        self.source = W.ToggleButtons(
            options=[("Built-in corpus", "builtin"), ("My word list / CSV", "upload"),
                     ("Labelled images (zip)", "zip")],
            value="builtin", style={"button_width": "190px"},
            tooltips=["Norwegian grocery names (æ/ø/å)", "one entry per line, or a column of a CSV/TSV",
                      "import existing line images with labels"])
        self.source.add_class("ocrtrain-source")
        self._build_source()
        self._build_synth()
        self._build_import()
        self._build_audit()
        self.source.observe(self._on_source, names="value")
        self.synth_box = W.VBox([self.upload_box, W.HTML("<h3>Lines, rendering and augmentation</h3>"),
                                 self.synth_form, W.HTML("<h3>Preview</h3>"), self.preview_row, self.preview_grid,
                                 W.HTML("<h3>Generate</h3>"), self.generate_row, self.progress_row, self.status])
        self.children = [W.HTML("<h3>Text source</h3>"), self.source, self.synth_box, self.import_box,
                         W.HTML("<h3>Audit</h3>"), self.audit_box, self.audit_view]
        self._on_source()

    def _on_source(self, change=None) -> None:
        mode = self.source.value
        if change is not None and change["old"] != change["new"]:
            # A preview shows the text source it was drawn from: another source makes it stale.
            self.preview_grid.children = ()
        self.synth_box.layout.display = "none" if mode == "zip" else ""
        self.import_box.layout.display = "" if mode == "zip" else "none"
        self.upload_box.layout.display = "" if mode == "upload" else "none"

    # -- text source ----------------------------------------------------------------------
    def _build_source(self) -> None:
        self.words_upload = W.FileUpload(accept=".txt,.csv,.tsv", multiple=False, description="Upload list")
        self.words_upload.add_class("ocrtrain-words-upload")
        # A combobox: the header's names are offered, any name can be typed (the engine checks it).
        self.column = W.Combobox(description="CSV column", options=[], ensure_option=False, placeholder="column name",
                                 continuous_update=False,
                                 layout=W.Layout(width="380px", display="none"), style={"description_width": "120px"})
        self.column.add_class("ocrtrain-csv-column")
        self.words_info = W.HTML()
        self.words_info.add_class("ocrtrain-words-info")
        self.words_path: Optional[Path] = None
        self.words_upload.observe(self._on_words_upload, names="value")
        self.words_upload.observe(self._on_words_refused, names="error")
        self.column.observe(lambda _c: self._describe_words(), names="value")
        self.upload_box = W.VBox([
            W.HTML("<span class='ocrtrain-help'>A .txt word list (one entry per line, UTF-8) or a .csv/.tsv "
                   "file and the column holding the text.</span>"),
            W.HBox([self.words_upload, self.column]), self.words_info])

    def _on_words_refused(self, change) -> None:
        """The page refused the file (over the upload limit): say the limit and the fix for a word list."""
        if change["new"]:
            text = refusal_with_fix(str(change["new"]), WORDS_FIX)
            self.words_info.value = f'<div class="ocrtrain-error">{html.escape(text)}</div>'

    def _on_words_upload(self, change) -> None:
        try:
            self.words_path = self._save_upload(self.words_upload, "word list")
        except OcrtrainError as exc:
            self.words_info.value = f'<div class="ocrtrain-error">{html.escape(str(exc))}</div>'
            return
        columns, textual = self._csv_columns(self.words_path) if self._is_csv(self.words_path) else ([], "")
        self.column.options = columns
        self.column.value = textual
        self.column.layout.display = "" if self._is_csv(self.words_path) else "none"
        self._describe_words()

    @staticmethod
    def _is_csv(path: Optional[Path]) -> bool:
        return path is not None and path.suffix.lower() in (".csv", ".tsv")

    @staticmethod
    def _csv_columns(path: Path) -> tuple[list[str], str]:
        """(header names, the first one whose values hold letters) to suggest; the engine reads the file."""
        try:
            head = path.read_bytes()[:65536].decode("utf-8-sig", errors="replace")
        except OSError:
            return [], ""
        first = head.splitlines()[0] if head else ""
        delimiter = "\t" if "\t" in first else (";" if first.count(";") > first.count(",") else ",")
        rows = list(csv.reader(io.StringIO(head), delimiter=delimiter))[:20]
        names = [c.strip() for c in rows[0]] if rows else []
        for i, name in enumerate(names):
            if any(len(r) > i and any(ch.isalpha() for ch in r[i]) for r in rows[1:]):
                return names, name
        return names, names[0] if names else ""

    def _describe_words(self) -> None:
        path = self.words_path
        if path is None:
            self.words_info.value = ""
            return
        from ocrtrain.corpus import load_csv_column, load_wordlist

        try:
            src = load_csv_column(path, self.column.value or "") if self._is_csv(path) else load_wordlist(path)
        except OcrtrainError as exc:
            self.words_info.value = f'<div class="ocrtrain-error">{html.escape(str(exc))}</div>'
            return
        sample = " · ".join(src.entries[:6])
        skipped = f" ({len(src.skipped)} malformed rows skipped)" if src.skipped else ""
        self.words_info.value = (f'<div class="ocrtrain-ok">{len(src.entries)} entries from {html.escape(path.name)}'
                                 f"{skipped}: {html.escape(sample)} …</div>")

    # -- synthetic lines ------------------------------------------------------------------
    def _build_synth(self) -> None:
        self.synth_form = ConfigForm(SynthConfig, exclude=("source", "column"), titles={
            "render": "Rendering and augmentation: fonts, height, skew, blur, distortion, backgrounds",
            "split": "Train / validation / test split"})
        self.preview_count = W.BoundedIntText(value=8, min=1, max=48, description="lines",
                                              layout=W.Layout(width="160px"), style={"description_width": "50px"})
        self.preview_button = W.Button(description="Preview", icon="eye")
        self.preview_button.add_class("ocrtrain-preview")
        self.preview_grid = W.Box(layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.preview_grid.add_class("ocrtrain-preview-grid")
        self.preview_row = W.HBox([self.preview_button, self.preview_count])
        self.dataset_name = W.Text(description="dataset name", placeholder="(generated)",
                                   style={"description_width": "120px"}, layout=W.Layout(width="380px"))
        self.dataset_name.add_class("ocrtrain-dataset-name")
        self.generate_button = W.Button(description="Generate", icon="cogs", button_style="primary")
        self.generate_button.add_class("ocrtrain-generate")
        self.cancel_button = W.Button(description="Cancel", icon="stop", button_style="warning", disabled=True)
        self.cancel_button.add_class("ocrtrain-generate-cancel")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="420px"))
        self.progress.add_class("ocrtrain-generate-progress")
        self.progress_text = W.HTML()
        self.progress_text.add_class("ocrtrain-generate-progress-text")
        self.generate_row = W.HBox([self.dataset_name, self.generate_button, self.cancel_button])
        self.progress_row = W.HBox([self.progress, self.progress_text], layout=W.Layout(align_items="center"))
        self.status = StatusBox()
        self.status.add_class("ocrtrain-generate-status")
        self.preview_button.on_click(self._on_preview)
        self.generate_button.on_click(self._on_generate)
        self.cancel_button.on_click(self._on_cancel)

    def synth_config(self) -> SynthConfig:
        """The SynthConfig of the form and the chosen text source (ConfigError/InputError if invalid)."""
        values = self.synth_form.raw()
        if self.source.value == "upload":
            if self.words_path is None:
                raise InputError("no word list uploaded: upload a .txt or .csv file, or pick the built-in corpus")
            values["source"] = str(self.words_path)
            values["column"] = (self.column.value or "") if self._is_csv(self.words_path) else ""
        else:
            values["source"], values["column"] = BUILTIN, ""
        return SynthConfig.from_dict(values)

    def _busy(self) -> bool:
        return self.task is not None and self.task.running

    def _on_preview(self, _b=None) -> None:
        if self._busy():
            return
        try:
            config = self.synth_config()
        except OcrtrainError as exc:
            self.status.error(exc)
            return
        n = self.preview_count.value
        self.status.note(f"rendering {n} preview lines ...")
        self.preview_button.disabled = True

        def work(stop):
            from ocrtrain.images import encode_png
            from ocrtrain.synth import preview

            return [(encode_png(image), label) for image, label in preview(config, n)]

        def done(items) -> None:
            cells = []
            for png, label in items:
                img = W.Image(value=png, format="png", layout=W.Layout(height="40px", width="auto"))
                cell = W.VBox([img, W.HTML(f"<span class='ocrtrain-help'>{html.escape(label)}</span>")],
                              layout=W.Layout(margin="4px 10px 4px 0", border="1px solid #eee", padding="2px"))
                cell.add_class("ocrtrain-preview-item")
                cells.append(cell)
            self.preview_grid.children = cells
            self.status.clear()

        def finish() -> None:
            self.preview_button.disabled = False

        self.task = BackgroundTask(work, done, self.status.error, finish, name="ocrtrain-preview").start()

    def _on_generate(self, _b=None) -> None:
        if self._busy():
            return
        try:
            config = self.synth_config()
            out = self._dataset_out(self.dataset_name, "synth")
        except OcrtrainError as exc:
            self.status.error(exc)
            return
        self.status.note(f"generating {config.count} lines into {out.name} ...")
        self.progress.max, self.progress.value, self.progress.bar_style = config.count, 0, "info"
        self.progress_text.value = f"0 / {config.count}"
        self.generate_button.disabled, self.cancel_button.disabled = True, False
        throttle = Throttle(0.5)

        def on_event(event) -> None:
            total = getattr(event, "total", 0)
            if total and throttle.ready(force=event.done >= total):
                self.progress.max, self.progress.value = total, event.done
                rate = (event.info or {}).get("per_s")
                self.progress_text.value = (f"{event.done} / {total}"
                                            + (f" · {rate:.0f} lines/s" if rate else ""))

        def work(stop):
            from ocrtrain.synth import generate_dataset

            return generate_dataset(config, out, callback=on_event, stop_event=stop)

        def done(path) -> None:
            self.progress.bar_style = "success"
            self.status.ok(f"wrote {Path(path).name}: train it on the Train tab")
            self.dataset_name.value = ""
            self._after_new_dataset(Path(path))

        def failed(exc) -> None:
            self.progress.bar_style = "warning" if task.stop_event.is_set() else "danger"
            if task.stop_event.is_set():
                self.status.note(f"generation canceled: nothing was written ({out.name} does not exist)")
            else:
                self.status.error(exc)

        def finish() -> None:
            self.generate_button.disabled, self.cancel_button.disabled = False, True

        task = BackgroundTask(work, done, failed, finish, name="ocrtrain-generate")
        self.task = task
        task.start()

    def _on_cancel(self, _b=None) -> None:
        if self._busy():
            self.task.cancel()
            self.status.note("canceling ...")

    # -- import ---------------------------------------------------------------------------
    def _build_import(self) -> None:
        self.zip_upload = W.FileUpload(accept=".zip", multiple=False, description="Upload zip")
        self.zip_upload.add_class("ocrtrain-zip-upload")
        self.import_form = ConfigForm(ImportConfig, exclude=("overwrite", "max_zip_bytes", "max_zip_entries",
                                                             "max_image_bytes"),
                                      titles={"split": "Train / validation / test split"})
        # The page refuses a file over the upload limit before sending it; the message arrives as `error`.
        self.zip_upload.observe(lambda c: self.import_status.error(str(c["new"])) if c["new"] else None,
                                names="error")
        self.import_path = W.Text(description="or a path on the server", layout=W.Layout(width="640px"),
                                  placeholder=f"folder, .zip, labels.txt/.csv or LMDB under {self.workspace.root}",
                                  style={"description_width": "160px"})
        self.import_path.add_class("ocrtrain-import-path")
        self.import_name = W.Text(description="dataset name", placeholder="(generated)",
                                  style={"description_width": "120px"}, layout=W.Layout(width="380px"))
        self.import_name.add_class("ocrtrain-import-name")
        self.import_button = W.Button(description="Import", icon="file-import", button_style="primary")
        self.import_button.add_class("ocrtrain-import")
        self.import_button.on_click(self._on_import)
        self.import_status = StatusBox()
        self.import_box = W.VBox([
            W.HTML("<span class='ocrtrain-help'>A .zip of line images with labels.txt (name&lt;TAB&gt;text), "
                   "an EasyOCR labels.csv (filename,words) or a DTRB LMDB; train/val/test subfolders keep "
                   f"their split. Uploads up to {upload_limit() / 2 ** 20:.0f} MiB; for bigger data give a "
                   f"path under {html.escape(str(self.workspace.root))} on the server (it is used instead "
                   "of the upload).</span>"),
            self.zip_upload, self.import_path, self.import_form, self.import_name, self.import_button,
            self.import_status])

    def _server_source(self) -> Path:
        """The import path typed in: relative to the work folder, and under it (a link placed there may
        point elsewhere: whoever made it has the server)."""
        root = self.workspace.root
        typed = Path(os.path.expanduser(self.import_path.value.strip()))
        path = Path(os.path.normpath(typed if typed.is_absolute() else root / typed))
        if path != root and root not in path.parents:
            raise InputError(f"{path} is outside the work folder {root}: the dashboard imports only from under "
                             f"it; move or link it there (e.g. `ln -s {path} {root / 'uploads' / path.name}`), "
                             f"or run `ocrtrain import {path} --out DATASET` in a terminal")
        if not path.exists():
            raise InputError(f"{path} does not exist on the server: check the path (relative paths start at {root})")
        from ocrtrain.imports import detect_format

        detect_format(path)  # a file of another kind is refused before a job starts
        return path

    def _save_upload(self, upload: W.FileUpload, what: str) -> Path:
        got = _uploaded(upload.value)
        if got is None:
            raise InputError(f"no {what} uploaded: choose a file with the upload button first"
                             + (", or give its path on the server" if upload is self.zip_upload else ""))
        name, content = got
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        safe = Path(name).name or "upload"
        path = self.uploads_dir / safe
        path.write_bytes(content)
        return path

    def _dataset_out(self, name_widget: W.Text, prefix: str) -> Path:
        name = name_widget.value.strip() or self.workspace.new_name(prefix, self.workspace.datasets_dir)
        name = self.workspace.check_name(name, "dataset name")
        out = self.workspace.datasets_dir / name
        if out.exists():
            raise InputError(f"dataset {name!r} already exists in {self.workspace.datasets_dir}: choose another name")
        return out

    def _on_import(self, _b=None) -> None:
        if self.task is not None and self.task.running:
            return
        try:
            config = self.import_form.build()
            if self.import_path.value.strip():
                source = self._server_source()
            else:
                source = self._save_upload(self.zip_upload, "zip")
            out = self._dataset_out(self.import_name, "import")
        except OcrtrainError as exc:
            self.import_status.error(exc)
            return
        self.import_status.note(f"importing {source.name} into {out.name} ...")
        self.import_button.disabled = True

        def work(stop):
            from ocrtrain.imports import import_dataset

            return import_dataset(source, out, config)

        def done(path) -> None:
            from ocrtrain.import_summary import summarize_import

            summary = summarize_import(path)
            # Most rows rejected, or a split left empty, is not a success to show in green.
            empty = [s for s in ("train", "val") if not summary.counts.get(s)]
            (self.import_status.warn if summary.mostly_rejected or empty else self.import_status.ok)(summary.text())
            self._after_new_dataset(Path(path))

        def finish() -> None:
            self.import_button.disabled = False

        self.task = BackgroundTask(work, done, self.import_status.error, finish, name="ocrtrain-import").start()

    # -- audit ----------------------------------------------------------------------------
    def _build_audit(self) -> None:
        self.audit_picker = DatasetPicker(self.workspace, description="dataset")
        self.audit_button = W.Button(description="Audit", icon="search")
        self.audit_button.add_class("ocrtrain-audit-run")
        self.audit_button.on_click(lambda _b: self.audit(self.audit_picker.value))
        self.audit_status = StatusBox()
        from ocrtrain.manage import delete_dataset, rename_dataset

        ws = self.workspace
        self.dataset_actions = FolderActions(
            "dataset", lambda: self.audit_picker.value,
            lambda path: delete_dataset(path, ws.datasets_dir, ws.runs_dir),
            lambda path, name: rename_dataset(path, name, ws.datasets_dir, ws.runs_dir), self._after_manage)
        self.audit_picker.observe(lambda _c: self.dataset_actions.disarm(), names="value")
        self.audit_box = W.VBox([W.HBox([self.audit_picker, self.audit_button]), self.audit_status,
                                 self.dataset_actions])

    def _after_manage(self, new_path: Optional[Path]) -> None:
        self.audit_view.clear()
        self.audit_picker.refresh(select=str(new_path) if new_path else None)
        if new_path is not None:  # the Workbench offers a renamed dataset to the other tabs
            self.dataset = str(new_path)

    def _after_new_dataset(self, path: Path) -> None:
        self.audit_picker.refresh(select=str(path))
        self.dataset = str(path)
        self.audit(str(path))

    def audit(self, path: str) -> Optional[BackgroundTask]:
        """Audit `path` in a thread and show the report."""
        if not path:
            self.audit_status.error("no dataset to audit: generate or import one first")
            return None
        self.audit_status.note(f"auditing {Path(path).name} ...")
        self.audit_view.clear()

        def work(stop):
            from ocrtrain.audit import audit_dataset

            return audit_dataset(path).to_dict()

        def done(report) -> None:
            self.audit_status.clear()
            self.audit_view.show(report)

        self.audit_task = BackgroundTask(work, done, self.audit_status.error, name="ocrtrain-audit").start()
        return self.audit_task
