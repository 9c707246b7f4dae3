"""Which config values a resume uses when RUN/config.json was edited after the run started.

A resume continues exactly where the run stopped, so only values that do not change what the
steps already taken mean may change: the length (the learning-rate schedule then ends at the new
last step), early stopping, the validation/save cadence, data-loading processes and the device.
Every other edit (lr, batch size, augmentation, seed, ...) would make the resumed run differ from
one that was never interrupted: the value the run started with is kept, and the message says how
to use the new one (a new run from ``run:RUN@last``).

>>> start = {"max_steps": 500, "lr": 3e-4, "augment": {"blur": 0.5}}
>>> edited = {"max_steps": 800, "lr": 1e-3, "augment": {"blur": 0.5}}
>>> merged, changes = reconcile(start, edited)
>>> merged["max_steps"], merged["lr"], [(c.key, c.used) for c in changes]
(800, 0.0003, [('max_steps', 800), ('lr', 0.0003)])
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

__all__ = ["SAFE_ON_RESUME", "ConfigChange", "reconcile", "describe", "resume_config", "length_edited"]

log = logging.getLogger(__name__)

#: Keys a resume takes from the edited config.json, with what the change does.
SAFE_ON_RESUME = {
    "max_steps": "the run now ends there and the learning-rate schedule stretches to the new end",
    "max_epochs": "the run now ends there and the learning-rate schedule stretches to the new end",
    "patience": "early stopping",
    "min_delta": "early stopping",
    "val_interval": "validation and checkpoint cadence",
    "save_minutes": "time-based save cadence",
    "keep_checkpoints": "how many step checkpoints are kept",
    "workers": "data-loading processes (the batches stay the same)",
    "device": "where the rest of the run trains",
}


@dataclass(frozen=True)
class ConfigChange:
    """One edited key: the value the run started with, the edited one, and the one the resume uses."""

    key: str
    start: Any
    edited: Any
    used: Any

    @property
    def accepted(self) -> bool:
        return self.used == self.edited


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        data = data.setdefault(name, {})
    data[last] = value


def reconcile(start: dict, edited: dict) -> tuple[dict, list[ConfigChange]]:
    """(the config dict a resume uses, the changes) from the config the run started with and the
    edited one: keys of :data:`SAFE_ON_RESUME` take the edited value, every other key the start value."""
    before, after = _flat(start), _flat(edited)
    merged = copy.deepcopy(edited)
    changes = []
    # Keys on one side only are not edits: the config gained or lost them between versions.
    for key in sorted(set(before) & set(after), key=lambda k: (k not in SAFE_ON_RESUME, k)):
        old, new = before[key], after[key]
        if old == new:
            continue
        if key not in SAFE_ON_RESUME:
            _set(merged, key, old)
        changes.append(ConfigChange(key, old, new, new if key in SAFE_ON_RESUME else old))
    return merged, changes


def describe(changes: list[ConfigChange], run_dir: Union[str, Path] = "RUN") -> str:
    """One message: which edits the resume uses and which it ignores, and why."""
    used = [f"{c.key} {c.start!r} -> {c.edited!r} is used ({SAFE_ON_RESUME[c.key]})" for c in changes if c.accepted]
    ignored = [f"{c.key} {c.start!r} -> {c.edited!r}" for c in changes if not c.accepted]
    parts = used[:]
    if ignored:
        parts.append(f"ignored, the run keeps its start values: {', '.join(ignored)} (changing them would break "
                     f"the exact resume; to use them, start a new run with origin run:{run_dir}@last)")
    from .runfolder import CONFIG_FILE

    return f"{CONFIG_FILE} was edited after the run started: " + "; ".join(parts)


def resume_config(config, run_dir: Union[str, Path], callback: Optional[Callable] = None, main: bool = True):
    """The config a resume of `run_dir` uses: `config` (read from the edited config.json) with every
    key a resume cannot change set back to the run's start value. On the main process the message
    goes to RUN/log.txt and to `callback` as a :class:`ocrtrain.events.Message`.

    Runs made before the start copy existed (no RUN/.config-start.json) resume with `config` as is.
    """
    from . import runfolder
    from .events import Message, emit

    start = runfolder.read_start_config(run_dir)
    if start is None:
        return config
    merged, changes = reconcile(start, config.to_dict())
    if not changes:
        return config
    if main:
        text = describe(changes, run_dir)
        level = "warning" if any(not c.accepted for c in changes) else "info"
        log.info(text)
        try:
            runfolder.log_append(run_dir, text, level)
        except OSError as exc:
            log.error("could not write to the run log: %s", exc)
        emit(callback, Message(text, level))
    return type(config).from_dict(merged)


def length_edited(config, run_dir: Union[str, Path]) -> bool:
    """True when `config` (what a resume uses) has another max_steps/max_epochs than the run started with."""
    from . import runfolder

    start = runfolder.read_start_config(run_dir) or {}
    return any(key in start and start[key] != getattr(config, key) for key in ("max_steps", "max_epochs"))
