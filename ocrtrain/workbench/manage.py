"""Rename and delete (with a confirming second click) for the run or dataset a panel shows.

The work is the engine's (:mod:`ocrtrain.manage`: only folders directly inside the work folder,
never a queued or running run, never a dataset an active run uses); this box holds the view
state: which folder a pending "Confirm delete" is for, and the message.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import ipywidgets as W

from ocrtrain.errors import InputError, OcrtrainError

from .feedback import StatusBox

__all__ = ["FolderActions"]


class FolderActions(W.VBox):
    """Rename / Delete buttons for the folder `target()` returns; `after(path_or_None)` is called
    with the new path after a rename, or None after a delete, so the panel can reload its lists."""

    def __init__(self, kind: str, target: Callable[[], str], delete: Callable[[str], Path],
                 rename: Callable[[str, str], Path], after: Callable[[Optional[Path]], None], **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.add_class(f"ocrtrain-{kind}-actions")
        self._target, self._delete, self._rename, self._after = target, delete, rename, after
        self._armed: Optional[str] = None  # the folder a "Confirm delete" click deletes
        self.new_name = W.Text(placeholder=f"new {kind} name", layout=W.Layout(width="220px"))
        self.new_name.add_class(f"ocrtrain-{kind}-new-name")
        self.rename_button = W.Button(description="Rename", icon="pencil", layout=W.Layout(width="auto"))
        self.rename_button.add_class(f"ocrtrain-{kind}-rename")
        self.delete_button = W.Button(description=f"Delete {kind}", icon="trash", layout=W.Layout(width="auto"))
        self.delete_button.add_class(f"ocrtrain-{kind}-delete")
        self.status = StatusBox()
        self.status.add_class(f"ocrtrain-{kind}-actions-status")
        self.rename_button.on_click(self._on_rename)
        self.delete_button.on_click(self._on_delete)
        self.children = [W.HBox([self.new_name, self.rename_button, self.delete_button]), self.status]

    def disarm(self, clear: bool = True) -> None:
        """Forget a pending confirmation (the selection changed)."""
        if self._armed is not None:
            self._armed = None
            self.delete_button.description = f"Delete {self.kind}"
            self.delete_button.button_style = ""
            self.delete_button.remove_class("ocrtrain-confirm")
            if clear and self.status.kind == "warn":
                self.status.clear()

    def _on_delete(self, _b=None) -> None:
        path = self._target()
        if not path:
            self.status.error(f"no {self.kind} chosen: pick one first")
            return
        if self._armed != path:
            self.disarm(clear=False)
            self._armed = path
            self.delete_button.description = "Confirm delete"
            self.delete_button.button_style = "danger"
            self.delete_button.add_class("ocrtrain-confirm")
            self.status.warn(f"delete {self.kind} {Path(path).name} and every file in it ({path})? "
                             "Click 'Confirm delete' to delete it; this cannot be undone")
            return
        self.disarm(clear=False)
        try:
            gone = self._delete(path)
        except OcrtrainError as exc:
            self.status.error(exc)
            return
        self.status.ok(f"deleted {self.kind} {gone.name}")
        self._after(None)

    def _on_rename(self, _b=None) -> None:
        self.disarm()
        path = self._target()
        try:
            if not path:
                raise InputError(f"no {self.kind} chosen: pick one first")
            new = self._rename(path, self.new_name.value)
        except OcrtrainError as exc:
            self.status.error(exc)
            return
        self.new_name.value = ""
        self.status.ok(f"renamed {self.kind} {Path(path).name} to {new.name}")
        self._after(new)

