"""Dataset tab: text source, rendering options, live preview, Generate (threaded, cancelable), import, audit.

Three ways to a dataset folder under ``workspace/datasets``:
synthetic lines from the built-in corpus or from an uploaded word list / CSV column
(:func:`ocrtrain.synth.generate_dataset`), or an uploaded zip of labelled images
(:func:`ocrtrain.imports.import_dataset`). Every new dataset is audited against english_g2's
charset (:func:`ocrtrain.audit.audit_dataset`).
"""
from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Optional

import ipywidgets as W
import traitlets

from ocrtrain.errors import InputError, OcrtrainError
from ocrtrain.imports import ImportConfig

from .audit_view import AuditView
from .feedback import StatusBox
from .forms import ConfigForm
from .pickers import DatasetPicker
from .tasks import BackgroundTask, Throttle
from .workspace import Workspace

__all__ = ["DatasetPanel"]


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
        self.status = StatusBox()
        self.audit_view = AuditView()
        self._build_import()
        self._build_audit()
        self.children = [self.import_box, W.HTML("<h3>Audit</h3>"), self.audit_box, self.audit_view]

    # -- import ---------------------------------------------------------------------------
    def _build_import(self) -> None:
        self.zip_upload = W.FileUpload(accept=".zip", multiple=False, description="Upload zip")
        self.zip_upload.add_class("ocrtrain-zip-upload")
        self.import_form = ConfigForm(ImportConfig, exclude=("overwrite", "max_zip_bytes", "max_zip_entries",
                                                             "max_image_bytes"))
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
                   "their split.</span>"),
            self.zip_upload, self.import_form, self.import_name, self.import_button, self.import_status])

    def _save_upload(self, upload: W.FileUpload, what: str) -> Path:
        got = _uploaded(upload.value)
        if got is None:
            raise InputError(f"no {what} uploaded: choose a file with the upload button first")
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
            self.import_status.ok(f"imported {Path(path).name}")
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
        self.audit_box = W.VBox([W.HBox([self.audit_picker, self.audit_button]), self.audit_status])

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
