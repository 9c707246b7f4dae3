"""Open a run or dataset folder by its path on the server, wherever it is: a path field, Open, a message.

The check is the engine's (:func:`ocrtrain.runfolder.require_run_folder`,
:func:`ocrtrain.dataset.require_dataset_folder`, through :class:`Workspace`); the folder is then
listed beside the home's for the rest of the session, and the panel selects it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import ipywidgets as W
import traitlets

from .feedback import StatusBox
from .workspace import Workspace

__all__ = ["FolderOpener"]


class FolderOpener(W.VBox):
    """A path field and Open for a `kind` ("run" or "dataset") folder; `show(path)` lists and selects
    an accepted one. A refused path changes nothing but the message, which names it and the fix.
    `opened` is the last folder opened (resolved path)."""

    opened = traitlets.Unicode("")

    def __init__(self, workspace: Workspace, kind: str, show: Callable[[Path], None], **kwargs):
        super().__init__(**kwargs)
        self.add_class(f"ocrtrain-open-{kind}-box")
        self.workspace, self.kind, self._show = workspace, kind, show
        self._open = {"run": workspace.open_run, "dataset": workspace.open_dataset}[kind]
        self.path = W.Text(placeholder=f"path of a {kind} folder on the server, e.g. /data/{kind}s/NAME",
                           description=f"open {kind}", layout=W.Layout(width="460px"),
                           style={"description_width": "120px"})
        self.path.add_class(f"ocrtrain-open-{kind}-path")
        self.button = W.Button(description="Open", icon="folder-open", layout=W.Layout(width="auto"),
                               tooltip=f"list this {kind} folder here (for this session) and select it")
        self.button.add_class(f"ocrtrain-open-{kind}")
        self.status = StatusBox()
        # its own class only: "ocrtrain-status" is the panel's message, which a page looks up by that class
        self.status.remove_class("ocrtrain-status")
        self.status.add_class(f"ocrtrain-open-{kind}-status")
        self.button.on_click(self._on_open)
        self.children = [W.HBox([self.path, self.button]), self.status]

    def _on_open(self, _b=None) -> None:
        try:
            folder = self._open(self.path.value)
            self._show(folder)
        except Exception as exc:  # the engine's message (path + fix); anything else is named too
            self.status.error(exc)
            return
        self.opened = str(folder)
        where = (f"outside the home: listed with {self.workspace.root}'s {self.kind}s for this session"
                 if self.workspace.is_outside(folder) else f"in {self.workspace.root}")
        self.status.ok(f"opened {self.kind} {folder} ({where})")
