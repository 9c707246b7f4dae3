"""Typed records of a run folder's files: status, metrics rows (train / val per validation set),
checkpoint versions. File names and reading/writing are :mod:`ocrtrain.runfolder`'s.

``from_dict`` is tolerant (unknown keys go to ``extra``, missing ones take defaults) and
``to_dict`` writes the same keys the files have always had, so old and new runs both read.

>>> row = ValRow.from_dict({"kind": "val", "step": 4, "cer": 0.1, "val_set": "real"})
>>> row.val_set, row.metrics, row.to_dict()["cer"]
('real', {'cer': 0.1}, 0.1)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

__all__ = ["LAST_FILE", "RunStatus", "TrainRow", "ValRow", "Version", "Versions", "row_from_dict"]

LAST_FILE = "last.pt"


def _split(cls, data: dict, fixed: tuple = ()) -> tuple[dict, dict]:
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"} - set(fixed)
    known = {k: v for k, v in data.items() if k in names}
    extra = {k: v for k, v in data.items() if k not in names and k not in fixed}
    return known, extra


def _merge(record, fixed: dict) -> dict:
    out = dict(fixed)
    for f in dataclasses.fields(record):
        if f.name not in ("extra", "metrics"):
            out[f.name] = getattr(record, f.name)
    out.update(getattr(record, "metrics", {}) or {})
    out.update(record.extra)
    return out


@dataclass(frozen=True)
class RunStatus:
    """RUN/status.json. `job` is the token of the job process (see ``ocrtrain.runs``)."""

    state: str = "created"
    created: Optional[str] = None
    started: Optional[str] = None
    ended: Optional[str] = None
    updated: Optional[str] = None
    device: Optional[str] = None
    error: Optional[str] = None
    step: int = 0
    max_steps: Optional[int] = None
    pid: Optional[int] = None
    host: Optional[str] = None
    job: Optional[str] = None
    signals: bool = False
    interrupted: bool = False
    reason: Optional[str] = None
    best_cer: Optional[float] = None
    best_step: Optional[int] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Optional[dict]) -> "RunStatus":
        known, extra = _split(cls, dict(data or {}))
        known = {k: v for k, v in known.items() if v is not None or k not in ("state", "step", "signals",
                                                                              "interrupted")}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        """The stored keys; known fields that are None are left out (as in the dicts of older code)."""
        return {k: v for k, v in _merge(self, {}).items() if v is not None or k in self.extra}

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access to known fields and extra keys."""
        return self.to_dict().get(key, default)


@dataclass(frozen=True)
class TrainRow:
    """One optimizer step in metrics.jsonl (``"kind": "train"``); `loss` None = skipped step."""

    step: int
    epoch: Optional[float] = None
    train_loss: Optional[float] = None
    lr: Optional[float] = None
    samples_per_s: Optional[float] = None
    eta_s: Optional[float] = None
    batch_size: Optional[int] = None
    step_s: Optional[float] = None
    skipped: bool = False
    extra: dict = field(default_factory=dict)
    kind = "train"

    @classmethod
    def from_dict(cls, data: dict) -> "TrainRow":
        known, extra = _split(cls, data, ("kind",))
        return cls(**{"step": 0, **known}, extra=extra)

    def to_dict(self) -> dict:
        return _merge(self, {"kind": "train"})


@dataclass(frozen=True)
class ValRow:
    """One validation of one validation set (``"kind": "val"``); `metrics` are flat in the file."""

    step: int
    val_set: str = "val"
    epoch: Optional[float] = None
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    kind = "val"

    @classmethod
    def from_dict(cls, data: dict) -> "ValRow":
        data = dict(data)
        data.pop("kind", None)
        step = data.pop("step", 0)
        val_set = data.pop("val_set", None) or "val"
        epoch = data.pop("epoch", None)
        return cls(step=step, val_set=val_set, epoch=epoch, metrics=data)

    def to_dict(self) -> dict:
        return _merge(self, {"kind": "val"})


def row_from_dict(data: dict) -> Union[TrainRow, ValRow]:
    """A metrics.jsonl row as a record; rows without a kind are "val" when they hold cer/val_loss."""
    kind = data.get("kind")
    if kind not in ("train", "val"):
        kind = "val" if ("cer" in data or "val_loss" in data) else "train"
    return ValRow.from_dict(data) if kind == "val" else TrainRow.from_dict(data)


@dataclass(frozen=True)
class Version:
    """A saved step checkpoint: RUN/checkpoints/`file` at `step` with its validation `metrics`."""

    step: int
    file: str
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "Version":
        known, extra = _split(cls, data)
        return cls(**{"step": 0, "file": "", **known, "metrics": dict(known.get("metrics") or {})}, extra=extra)

    def to_dict(self) -> dict:
        return {"step": self.step, "file": self.file, "metrics": dict(self.metrics), **self.extra}


@dataclass(frozen=True)
class Versions:
    """RUN/checkpoints/versions.json: the step checkpoints (oldest first), which one is best."""

    versions: tuple = ()
    best: Optional[str] = None
    last: Optional[str] = LAST_FILE
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Optional[dict]) -> "Versions":
        data = dict(data or {})
        items = tuple(Version.from_dict(v) for v in data.pop("versions", []) or [] if isinstance(v, dict))
        return cls(versions=items, best=data.pop("best", None), last=data.pop("last", LAST_FILE), extra=data)

    def to_dict(self) -> dict:
        return {"versions": [v.to_dict() for v in self.versions], "best": self.best, "last": self.last,
                **self.extra}

    def best_version(self) -> Optional[Version]:
        """The version copied to best.pt, or None."""
        return next((v for v in self.versions if self.best and v.file == self.best), None)
