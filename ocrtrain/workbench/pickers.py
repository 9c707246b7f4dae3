"""Dropdowns for things on disk: datasets of the workspace, runs and their checkpoint versions.

Each picker lists the home's folders and those opened by path (its folder button shows a path field)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import ipywidgets as W
import traitlets

from ocrtrain import runfolder
from ocrtrain.errors import InputError, OcrtrainError

from .open_folder import FolderOpener
from .workspace import Workspace

__all__ = ["DatasetPicker", "RunVersionPicker", "run_versions", "run_dataset", "trained_runs", "preferred_run"]


def run_versions(run_dir: Path) -> list[tuple[str, str]]:
    """(label, version) choices of a run: best, last, then each validated step (newest first)."""
    folder = runfolder.files(run_dir)
    try:
        items = runfolder.read_versions(run_dir).versions
    except OcrtrainError:  # a damaged versions file: the files that exist are still offered
        items = ()
    choices: list[tuple[str, str]] = []
    if folder.best.is_file():
        choices.append(("best (lowest val CER)", "best"))
    if folder.last.is_file():
        choices.append(("last", "last"))
    for v in reversed(items):
        cer = v.metrics.get("cer")
        label = f"step {v.step}" + (f" · CER {100 * cer:.1f}%" if isinstance(cer, (int, float)) else "")
        choices.append((label, f"step-{int(v.step)}"))
    return choices


def run_dataset(run_dir: Path) -> Optional[str]:
    """The dataset folder a run trained on (from its stored config record), if recorded."""
    try:
        cfg = runfolder.read_config(run_dir)
    except OcrtrainError:
        return None
    for key in ("data", "dataset", "data_path", "dataset_path"):
        if isinstance(cfg.get(key), str):
            return cfg[key]
    return None


def trained_runs(folders: Iterable[Path]) -> list[tuple[Path, str]]:
    """(run folder, state) of the run `folders` with at least one checkpoint, newest first."""
    from ocrtrain.runs import Run

    found = []
    for p in folders:
        if not run_versions(p):
            continue
        try:
            found.append((p, Run(p).status()["state"]))
        except OcrtrainError:
            found.append((p, "failed"))
    return sorted(found, key=lambda ps: ps[0].stat().st_mtime, reverse=True)


def preferred_run(runs: list[tuple[Path, str]]) -> Optional[str]:
    """The run to show first: the newest finished one, else the newest not failed or canceled."""
    for wanted in (("finished",), ("running", "queued", "created")):
        for path, state in runs:
            if state in wanted:
                return str(path)
    return str(runs[0][0]) if runs else None


def _opener_toggle(kind: str, opener: FolderOpener) -> W.ToggleButton:
    """The folder button that shows or hides a picker's path field."""
    toggle = W.ToggleButton(icon="folder-open", tooltip=f"open a {kind} folder by path (outside the home too)",
                            layout=W.Layout(width="40px"))
    toggle.add_class(f"ocrtrain-open-{kind}-toggle")
    opener.layout.display = "none"
    toggle.observe(lambda c: setattr(opener.layout, "display", "" if c["new"] else "none"), names="value")
    return toggle


def _open_quietly(open_folder, path: Optional[str]) -> None:
    """List a folder a panel selects by path (e.g. the dataset a run trained on), when it is one."""
    if path:
        try:
            open_folder(path)
        except (OcrtrainError, OSError):
            pass  # not there (yet), or unreadable: the picker keeps its choice


class DatasetPicker(W.VBox):
    """A dropdown of the workspace's datasets (value: folder path or ""), and a path field to open one elsewhere."""

    value = traitlets.Unicode("")

    def __init__(self, workspace: Workspace, description: str = "dataset", **kwargs):
        super().__init__(**kwargs)
        self.workspace = workspace
        self.dropdown = W.Dropdown(description=description, layout=W.Layout(width="460px"),
                                   style={"description_width": "120px"})
        self.dropdown.add_class("ocrtrain-dataset-select")
        self.reload = W.Button(icon="refresh", tooltip="reload the list", layout=W.Layout(width="40px"))
        self.reload.on_click(lambda _b: self.refresh())
        self.opener = FolderOpener(workspace, "dataset", lambda path: self.refresh(select=str(path)))
        self.open_toggle = _opener_toggle("dataset", self.opener)
        self.dropdown.observe(lambda c: setattr(self, "value", c["new"] or ""), names="value")
        self.children = [W.HBox([self.dropdown, self.reload, self.open_toggle]), self.opener]
        self.refresh()

    def refresh(self, select: Optional[str] = None) -> None:
        if select and select not in {str(p) for p in self.workspace.datasets()}:
            _open_quietly(self.workspace.open_dataset, select)
        paths = self.workspace.datasets()
        options = [(self.workspace.dataset_summary(p), str(p)) for p in paths] or [("(no datasets yet)", "")]
        current = select or self.dropdown.value
        if list(self.dropdown.options) != options:
            self.dropdown.options = options
        values = [o[1] for o in options]
        # Nothing chosen yet: the newest dataset that can be trained on, not merely the newest.
        healthy = [str(p) for p in paths if not self.workspace.dataset_problem(p)]
        self.dropdown.value = current if current in values else (healthy or values)[0]
        self.value = self.dropdown.value or ""


class RunVersionPicker(W.VBox):
    """A run of the workspace and one of its checkpoint versions; `spec` is the origin spec. A path
    field opens a run elsewhere."""

    run = traitlets.Unicode("")
    version = traitlets.Unicode("best")

    def __init__(self, workspace: Workspace, description: str = "run", **kwargs):
        super().__init__(**kwargs)
        self.workspace = workspace
        self.run_dropdown = W.Dropdown(description=description, layout=W.Layout(width="400px"),
                                       style={"description_width": "120px"})
        self.run_dropdown.add_class("ocrtrain-run-picker")
        self.version_dropdown = W.Dropdown(description="version", layout=W.Layout(width="280px"),
                                           style={"description_width": "60px"})
        self.version_dropdown.add_class("ocrtrain-version-picker")
        self.reload = W.Button(icon="refresh", tooltip="reload runs", layout=W.Layout(width="40px"))
        self.reload.on_click(lambda _b: self.refresh())
        self.opener = FolderOpener(workspace, "run", self._show_opened)
        self.open_toggle = _opener_toggle("run", self.opener)
        self.run_dropdown.observe(self._on_run, names="value")
        self.version_dropdown.observe(lambda c: setattr(self, "version", c["new"] or ""), names="value")
        self.children = [W.HBox([self.run_dropdown, self.version_dropdown, self.reload, self.open_toggle]),
                         self.opener]
        self.refresh()

    def refresh(self, select: Optional[str] = None) -> None:
        if select and select not in {str(p) for p in self.workspace.run_folders()}:
            _open_quietly(self.workspace.open_run, select)
        runs = trained_runs(self.workspace.run_folders())
        mark = self.workspace.mark
        options = [(mark(p, p.name if state == "finished" else f"{p.name} · {state}"), str(p)) for p, state in runs] \
            or [("(no trained runs yet)", "")]
        current = select or self.run_dropdown.value
        if list(self.run_dropdown.options) != options:
            self.run_dropdown.options = options
        values = [o[1] for o in options]
        self.run_dropdown.value = current if current in values else (preferred_run(runs) or values[0])
        self._fill_versions()

    def _show_opened(self, path: Path) -> None:
        if not run_versions(path):
            raise InputError(f"run {path} has no checkpoint yet: pick it once it has saved one "
                             "(the Monitor shows it meanwhile)")
        self.refresh(select=str(path))

    def _on_run(self, change) -> None:
        self.run = change["new"] or ""
        self._fill_versions(keep_choice=False)

    def _fill_versions(self, keep_choice: bool = True) -> None:
        self.run = self.run_dropdown.value or ""
        choices = run_versions(Path(self.run)) if self.run else []
        options = choices or [("(no checkpoint yet)", "")]
        # Another run starts at its best version; a reload of the same run keeps the choice.
        keep = self.version_dropdown.value if keep_choice else None
        if list(self.version_dropdown.options) != options:
            self.version_dropdown.options = options
        values = [o[1] for o in options]
        self.version_dropdown.value = keep if keep in values else values[0]
        self.version = self.version_dropdown.value or ""

    @property
    def spec(self) -> str:
        """``run:PATH@VERSION`` for the engine, or "" when nothing is picked."""
        if not self.run or not self.version:
            return ""
        return f"run:{self.run}@{self.version}"
