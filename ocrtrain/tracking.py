"""Optional experiment logging: the trainer's events as TensorBoard scalars in the run folder.

Off by default (``ocrtrain train --log-to tensorboard``, ``ocrtrain resume RUN --log-to tensorboard`` or
the dashboard's Train tab turn it on). The choice is recorded in the run (``"log_to"`` in
RUN/config.json, see :func:`record_backends`), so whatever trains the run - the foreground command, a
detached or dashboard job, a later resume - logs to the same place (:func:`open_loggers`, called by
:func:`ocrtrain.train.fit`). The logger is a callback fed
by the same events the run's metrics.jsonl rows come from: every :class:`ocrtrain.train.TrainStep`
gives ``train/loss``, ``train/lr`` and ``train/samples_per_s``; every
:class:`ocrtrain.train.Validation` gives ``METRIC/SET`` for each validation set (``cer/val``,
``cer/general``, ...), so that one TensorBoard chart compares the sets; the step-0 origin
(a metrics row without an event) is read from the run folder. The event files go to
``RUN/tensorboard``: ``tensorboard --logdir RUNS_ROOT`` shows every run side by side. A resumed run
appends to the same folder, dropping the points after the step it resumes from; a run that starts
logging at a resume first gets the rows metrics.jsonl already holds.

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
from .events import Event, Message, emit

__all__ = ["BACKENDS", "CONFIG_KEY", "TENSORBOARD_DIR", "TensorBoardLogger", "check_backend", "make_logger",
           "open_loggers", "record_backends", "recorded_backends", "tracking_install_command", "with_loggers"]

_log = logging.getLogger(__name__)
#: the --log-to choices
BACKENDS = ("tensorboard",)
#: the key of RUN/config.json listing the run's backends
CONFIG_KEY = "log_to"
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
            # A resume can begin by validating the step it resumes from: that step's training point stays.
            self._open(event.step + 1, val_before=event.step)
            self._validation(event.step, event.sets or {"val": event.metrics})
            self._writer.add_scalar("train/epoch", event.epoch, event.step)
        elif isinstance(event, StatusChange) and event.state != "running":
            if self._writer is not None:
                text = f"{event.state} at step {event.step}/{event.max_steps}" + (
                    f" ({event.reason})" if event.reason else "") + (f": {event.error}" if event.error else "")
                self._writer.add_text("status", text, event.step)
            self.close()

    def _open(self, first_step: int, val_before: Optional[int] = None):
        """The writer, made at the first event: the points from `first_step` on are dropped (a resume)."""
        if self._writer is None:
            fresh = not any(self.log_dir.glob("events.out.tfevents.*"))
            self._writer = self._writer_class(log_dir=str(self.log_dir), purge_step=first_step)
            if fresh:
                self._backfill(first_step, first_step if val_before is None else val_before)
        return self._writer

    def _backfill(self, train_before: int, val_before: int) -> None:
        """The rows of the run's metrics file before the first event (rows are written before their
        event): the step-0 origin (a validation without an event), and the earlier steps of a run
        that starts logging at a resume."""
        from .runs import Run

        val_steps: dict = {}
        for row in Run(self.run_dir).metrics():
            step = row.get("step")
            if not isinstance(step, int):
                continue
            if row.get("kind") == "train" and step < train_before:
                self._scalars(step, {"train/loss": row.get("train_loss"), "train/lr": row.get("lr"),
                                     "train/samples_per_s": row.get("samples_per_s"),
                                     "train/batch_size": row.get("batch_size")})
            elif row.get("kind") == "val" and row.get("val_set") and step < val_before:
                val_steps.setdefault(step, {})[row["val_set"]] = row
        for step, sets in sorted(val_steps.items()):
            self._validation(step, sets)
            epoch = _number(next(iter(sets.values())).get("epoch"))
            if step and epoch is not None:
                self._writer.add_scalar("train/epoch", epoch, step)

    def _scalars(self, step: int, values: dict) -> None:
        for tag, value in values.items():
            number = _number(value)
            if number is not None:
                self._writer.add_scalar(tag, number, step)

    def _train_step(self, event) -> None:
        self._open(event.step)
        self._scalars(event.step, {"train/loss": event.loss, "train/lr": event.lr,
                                   "train/samples_per_s": event.samples_per_s, "train/batch_size": event.batch_size})

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


def recorded_backends(run_dir) -> tuple:
    """The backends recorded for the run in RUN/config.json (none for a folder without one)."""
    from . import runfolder

    if not runfolder.files(run_dir).config.is_file():
        return ()
    value = runfolder.read_config(run_dir).get(CONFIG_KEY) or []
    return tuple(b for b in value if isinstance(b, str)) if isinstance(value, list) else ()


def record_backends(run_dir, backends) -> tuple:
    """Add `backends` to the ones recorded in the run's config.json (which must exist); returns them all.

    >>> # record_backends("runs/r1", ["tensorboard"]); a job or a resume of runs/r1 then logs to it
    """
    from . import runfolder
    from .fsutil import write_json_atomic

    for backend in backends:
        check_backend(backend)
    record = runfolder.read_config(run_dir)
    before = list(recorded_backends(run_dir))
    merged = list(dict.fromkeys([*before, *backends]))
    if merged != before:
        write_json_atomic(runfolder.files(run_dir).config, {**record, CONFIG_KEY: merged})
    return tuple(merged)


def open_loggers(run_dir, callback=None) -> list:
    """A logger per backend recorded for the run. One that cannot start (its package gone since the
    run was started) is left out with a warning to `callback` and the log: the run trains on."""
    loggers = []
    for backend in recorded_backends(run_dir):
        try:
            loggers.append(make_logger(backend, run_dir))
        except ConfigError as exc:
            _log.warning("experiment logging to %s is off for this run: %s", backend, exc)
            emit(callback, Message(f"experiment logging to {backend} is off for this run: {exc}", "warning"))
    return loggers


def with_loggers(callback, loggers):
    """One callback that feeds `callback` (if any) and then every logger."""
    if not loggers:
        return callback
    callbacks = [c for c in (callback, *loggers) if c is not None]

    def each(event) -> None:
        for one in callbacks:
            one(event)
    return each
