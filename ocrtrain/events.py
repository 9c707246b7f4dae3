"""Typed progress events the library emits instead of printing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

__all__ = ["Event", "Progress", "Message", "Callback", "emit"]


@dataclass(frozen=True)
class Event:
    """Base class of every event passed to a callback."""


@dataclass(frozen=True)
class Progress(Event):
    """`done` of `total` units of `stage` are complete (total 0 = unknown)."""

    stage: str
    done: int
    total: int = 0
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Message(Event):
    """A human-readable note (level: info, warning, error)."""

    text: str
    level: str = "info"


Callback = Callable[[Event], None]


def emit(callback: Optional[Callback], event: Event) -> None:
    """Send `event` to `callback` when one is given."""
    if callback is not None:
        callback(event)
