"""The Train tab's form and data choices, kept per work folder so that a reload restores them.

They live in ``ROOT/.dashboard/state.json`` (written atomically at each change, read when the
panel is built). A file that cannot be read, or values the current TrainConfig refuses, are
ignored with a note in the panel's status box, never an error: the form then starts as usual.

>>> # state = TrainFormState(panel)   # restores, then saves on every change
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from ocrtrain.cli.dashboard import SERVE_DIR
from ocrtrain.errors import OcrtrainError
from ocrtrain.fsutil import write_text_atomic
from ocrtrain.train import TrainConfig

__all__ = ["TrainFormState", "state_path", "STATE_VERSION"]

log = logging.getLogger(__name__)
STATE_VERSION = 1


def state_path(root: Path) -> Path:
    """The dashboard's state file of work folder `root`."""
    return Path(root) / SERVE_DIR / "state.json"


class TrainFormState:
    """Restore a TrainPanel's config and data choices from the state file, then save them on change."""

    def __init__(self, panel, restore: bool = True):
        self.panel = panel
        self.path = state_path(panel.workspace.root)
        self.note = ""          # why the saved state was (partly) not applied; "" when all was
        self._restoring = False
        if restore:
            self.restore()
        for form in (panel.form, panel.advanced):
            form.observe(self.save, names="config")
        panel.mixform.observe(self.save, names="value")

    # -- reading ------------------------------------------------------------------------
    def _read(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("train", {}), dict):
                raise ValueError(f"expected an object with a 'train' object, found {type(data).__name__}")
            return data.get("train", {})
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self._ignored(f"the saved form state {self.path} could not be read ({exc}); the form starts afresh")
            return {}

    def restore(self) -> None:
        """Apply the saved config and data choices (what still applies) to the panel."""
        saved = self._read()
        if not saved:
            return
        self._restoring = True
        try:
            self._restore_config(saved.get("config"))
            self._restore_data(saved.get("data"))
        finally:
            self._restoring = False
        if not self.note:
            self.panel.status.note(f"restored the form as it was last left ({self.path.name} in "
                                   f"{self.path.parent})")

    def _restore_config(self, values: Any) -> None:
        if not isinstance(values, dict):
            return
        try:
            config = TrainConfig.from_dict(values)
        except (OcrtrainError, TypeError, ValueError) as exc:
            self._ignored(f"the saved training settings were not restored: {exc}")
            return
        self.panel.set_config(config)

    def _restore_data(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        mixform, workspace = self.panel.mixform, self.panel.workspace
        chosen = [p for p in [data.get("primary"), *data.get("mix", {}), *data.get("validate_on", [])] if p]
        for path in chosen:  # a saved choice outside the home is listed again, as when it was opened
            try:
                workspace.open_dataset(path)
            except OcrtrainError:
                pass  # gone: named below
        known = {str(p) for p in workspace.datasets()}
        missing = [p for p in chosen if p not in known]
        mixform.refresh(select=data["primary"] if data.get("primary") in known else None)
        if isinstance(data.get("primary_weight"), (int, float)):
            mixform.primary_weight.value = float(data["primary_weight"])
        mix = {p: w for p, w in dict(data.get("mix") or {}).items() if p in known}
        mixform.mix.value = tuple(mix)
        for box, weight in zip(mixform.mix_weights.children, mix.values()):
            box.value = float(weight)
        mixform.validate_on.value = tuple(p for p in data.get("validate_on") or () if p in known)
        if missing:
            self._ignored("saved data choices no longer in the work folder were left out: "
                          + ", ".join(Path(p).name for p in missing))

    def _ignored(self, why: str) -> None:
        log.info("%s", why)
        self.note = why
        self.panel.status.note(why)

    # -- writing ------------------------------------------------------------------------
    def values(self) -> dict:
        """What is saved: the valid config (None while a field is invalid) and the data choices."""
        panel, mixform = self.panel, self.panel.mixform
        try:
            config: Optional[dict] = panel.config().to_dict()
        except OcrtrainError:
            config = None
        data = {
            "primary": mixform.primary.value,
            "primary_weight": float(mixform.primary_weight.value),
            "mix": {p: float(box.value) for p, box in zip(mixform.mix.value, mixform.mix_weights.children)},
            "validate_on": list(mixform.validate_on.value),
        }
        return {"config": config, "data": data}

    def save(self, _change=None) -> None:
        """Write the state file (keeping the last valid config while the form holds an invalid one)."""
        if self._restoring:
            return
        now = self.values()
        if now["config"] is None:
            previous = self._read_quietly().get("config")
            if previous is None:
                now.pop("config")
            else:
                now["config"] = previous
        try:
            write_text_atomic(self.path, json.dumps({"version": STATE_VERSION, "train": now}, indent=1))
        except (OSError, OcrtrainError) as exc:  # read-only or full: the form works, it is just not remembered
            log.warning("could not save the form state to %s: %s", self.path, exc)

    def _read_quietly(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data.get("train", {}) if isinstance(data, dict) else {}
        except (OSError, ValueError, AttributeError):
            return {}
