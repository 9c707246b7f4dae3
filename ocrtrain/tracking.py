"""Optional experiment logging: the trainer's events as TensorBoard scalars in the run folder.

Off by default (``ocrtrain train --log-to tensorboard`` turns it on). The logger is a callback fed
by the same events the run's metrics.jsonl rows come from: every :class:`ocrtrain.train.TrainStep`
gives ``train/loss``, ``train/lr`` and ``train/samples_per_s``; every
:class:`ocrtrain.train.Validation` gives ``METRIC/SET`` for each validation set (``cer/val``,
``cer/general``, ...), so that one TensorBoard chart compares the sets; the step-0 origin
(a metrics row without an event) is read from the run folder. The event files go to
``RUN/tensorboard``: ``tensorboard --logdir RUNS_ROOT`` shows every run side by side. A resumed run
appends to the same folder, dropping the points after the step it resumes from.

tensorboard is imported here only, and only when a logger is made; it comes with the ``tracking``
extra.
"""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Optional

from .errors import ConfigError
from .events import Event

__all__ = ["BACKENDS", "TENSORBOARD_DIR", "TensorBoardLogger", "check_backend", "make_logger",
           "tracking_install_command"]

_log = logging.getLogger(__name__)
#: the --log-to choices
BACKENDS = ("tensorboard",)
#: the subfolder of a run folder that holds its TensorBoard event files
TENSORBOARD_DIR = "tensorboard"
#: keys of a validation row that describe the run, not the validation set (logged once, or not at all)
_NOT_SET_METRICS = frozenset({
    "kind", "step", "epoch", "val_set", "train_loss", "lr", "samples_per_s", "eta_s", "nonfinite_skipped",
    "elapsed_s", "is_best", "guard_ok", "best_cer", "selected", "best_value", "baseline", "n"})


def tracking_install_command() -> str:
    return f"{sys.executable} -m pip install 'ocrtrain[tracking]'"


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ModuleNotFoundError as exc:
        raise ConfigError(f"--log-to tensorboard needs the tensorboard package ({exc.name!r} is not installed): "
                          f"run `{tracking_install_command()}` (in a checkout: `make setup`), "
                          "or train without --log-to") from None
    return SummaryWriter


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class TensorBoardLogger:
    """A training callback that writes scalars to RUN/tensorboard; close() (or the run's end) flushes.

    >>> # fit(config, "data/receipts", "runs/r1", callback=TensorBoardLogger("runs/r1"))
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / TENSORBOARD_DIR
        self._writer_class = _summary_writer_class()  # a missing package fails before training starts
        self._writer = None
        self._failed = False

    def __call__(self, event: Event) -> None:
        if self._failed:
            return
        try:
            self._handle(event)
        except OSError as exc:  # a full disk or a removed folder ends the logging, not the training
            self._failed = True
            _log.warning("TensorBoard logging to %s stopped: %s", self.log_dir, exc)

    def _handle(self, event: Event) -> None:
        from .train import StatusChange, TrainStep, Validation

        if isinstance(event, TrainStep):
            self._train_step(event)
        elif isinstance(event, Validation):
            self._validation(event.step, event.sets or {"val": event.metrics})
            self._open(event.step).add_scalar("train/epoch", event.epoch, event.step)
        elif isinstance(event, StatusChange) and event.state != "running":
            if self._writer is not None:
                text = f"{event.state} at step {event.step}/{event.max_steps}" + (
                    f" ({event.reason})" if event.reason else "") + (f": {event.error}" if event.error else "")
                self._writer.add_text("status", text, event.step)
            self.close()

    def _open(self, first_step: int):
        """The writer, made at the first event: the points from `first_step` on are dropped (a resume)."""
        if self._writer is None:
            self._writer = self._writer_class(log_dir=str(self.log_dir), purge_step=first_step)
            if first_step <= 1:
                self._origin()
        return self._writer

    def _origin(self) -> None:
        """The step-0 validation rows (the origin before training) from the run's metrics file."""
        from .runs import Run

        rows = [r for r in Run(self.run_dir).metrics("val") if r.get("step") == 0]
        by_set = {r["val_set"]: r for r in rows if r.get("val_set")}
        if by_set:
            self._validation(0, by_set)

    def _train_step(self, event) -> None:
        writer = self._open(event.step)
        for tag, value in (("train/loss", event.loss), ("train/lr", event.lr),
                           ("train/samples_per_s", event.samples_per_s), ("train/batch_size", event.batch_size)):
            number = _number(value)
            if number is not None:
                writer.add_scalar(tag, number, event.step)

    def _validation(self, step: int, sets: dict) -> None:
        writer = self._open(step)
        for name, row in sets.items():
            for key, value in row.items():
                number = None if key in _NOT_SET_METRICS else _number(value)
                if number is not None:
                    writer.add_scalar(f"{key}/{name}", number, step)
        writer.flush()  # a validation is the point a user looks at while the run goes on

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def check_backend(backend: str) -> None:
    """Raise ConfigError, naming the install command, when `backend` is unknown or its package missing."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown --log-to {backend!r}: choose one of {', '.join(BACKENDS)}")
    _summary_writer_class()


def make_logger(backend: str, run_dir):
    """The logging callback `backend` (one of BACKENDS) writing into `run_dir`."""
    check_backend(backend)
    return TensorBoardLogger(run_dir)
