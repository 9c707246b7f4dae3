"""Training tasks: a registry of the kinds of training the generic loop can run.

>>> from ocrtrain.tasks import get_task
>>> get_task("recognition").name
'recognition'
"""
from __future__ import annotations

import difflib
import importlib
from typing import Callable

from ..errors import ConfigError
from .base import Task, TaskContext

__all__ = ["Task", "TaskContext", "register_task", "get_task", "task_names"]

# name -> "module:Class" (imported when first used, so the registry costs nothing) or a factory
_TASKS: dict[str, object] = {"recognition": "ocrtrain.tasks.recognition:RecognitionTask"}


def register_task(name: str, factory: Callable[[], Task]) -> None:
    """Make `name` usable as ``TrainConfig.task`` (a factory returning a fresh Task)."""
    _TASKS[name] = factory


def task_names() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """A fresh Task for `name` (ConfigError with a did-you-mean for unknown names)."""
    entry = _TASKS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_TASKS), n=1)
        raise ConfigError(f"unknown task {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f": choose one of {', '.join(task_names())}")
    if isinstance(entry, str):
        module, _, cls = entry.partition(":")
        entry = getattr(importlib.import_module(module), cls)
    return entry()
