"""Fine-tuning a recognizer on a dataset folder: the training config, its templates and the loop.

:func:`fit` trains in the calling process (scripts, papermill, a widget's thread) and leaves a
consistent run folder (layout in :mod:`ocrtrain.runs`); :func:`ocrtrain.runs.launch` runs the same
loop as a separate job. Images go through :mod:`ocrtrain.augment` (training only) and then
:mod:`ocrtrain.preprocess`, so the model sees the pixels ``easyocr.Reader`` would feed it. Batches
group lines of similar width, so little compute goes to padding.

>>> cfg = TrainConfig(max_steps=300, batch_size=16)
>>> cfg.replace(lr=1e-4).lr
0.0001
>>> # run = fit(cfg, "data/receipts", "runs/first")  # -> Run; run.status()["state"] == "finished"
"""
from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, Optional, Sequence, Union

from . import distributed, tracking
from .augment import AugmentConfig
from .config import Config, check
from .errors import ConfigError, OcrtrainError, RunError
from .events import Callback, Event, emit
from .originspec import DEFAULT_ORIGIN
from .tasks.caseless import check_caseless
from .training_templates import SHIPPED_TEMPLATES, list_templates, load_template, save_template, template_dirs
from .trainstate import effective_warmup, shard_plan

__all__ = [
    "TrainConfig",
    "AugmentConfig",
    "TrainStep",
    "Validation",
    "StatusChange",
    "fit",
    "prepare_run",
    "resolve_device",
    "shard_plan",
    "save_template",
    "load_template",
    "list_templates",
    "template_dirs",
]

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
RUN_FORMAT = "ocrtrain-run/1"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


# --------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that decides how a run trains (the dataset and run folder are given separately)."""

    origin: str = field(default=DEFAULT_ORIGIN, metadata={
        "help": "model to start from: english_g2, scratch, run:PATH[@last|@step-N], easyocr:DIR/NAME, "
                "dtrb:FILE.pth[:CHARSET] or a checkpoint .pt"})
    charset_mode: Literal["extend", "restrict", "keep"] = field(default="extend", metadata={
        "help": "extend: add the data's new characters to the model's head; restrict: keep only the "
                "data's characters; keep: the origin's charset unchanged (other labels are rejected)"})
    optimizer: Literal["adamw", "adam", "adadelta"] = field(default="adamw", metadata={
        "help": "adamw (fast fine-tuning), adam, or adadelta (EasyOCR trainer's; use lr 1.0)"})
    lr: float = field(default=3e-4, metadata={"help": "peak learning rate"})
    warmup_steps: int = field(default=20, metadata={"help": "steps of linear learning-rate warm-up"})
    schedule: Literal["constant", "cosine", "linear"] = field(default="cosine", metadata={
        "help": "learning-rate decay after warm-up, down to 0 at the last step"})
    weight_decay: float = field(default=0.01, metadata={"help": "weight decay (decoupled for adamw)"})
    batch_size: int = field(default=32, metadata={"help": "lines per step (halved automatically on CUDA out-of-memory)"})
    max_epochs: int = field(default=10, metadata={"help": "passes over the training split (when max_steps is 0)"})
    max_steps: int = field(default=0, metadata={"help": "optimizer steps to train (0 = use max_epochs)"})
    grad_clip: float = field(default=5.0, metadata={"help": "clip the gradient norm to this (0 = off)"})
    val_interval: int = field(default=100, metadata={"help": "validate and save a checkpoint every N steps"})
    patience: int = field(default=0, metadata={
        "help": "stop early after N validations without a CER improvement of min_delta (0 = never)"})
    min_delta: float = field(default=0.0, metadata={"help": "smallest validation CER decrease that counts as better"})
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"help": "training-image augmentation"})
    augment_variants: int = field(default=-1, metadata={
        "help": "0 = a new augmentation of every line at every pass; N = N fixed augmented variants per "
                "line, used in turn by the epochs (so the CPU recipe's feature cache can reuse them); "
                "-1 = auto: 2 where the feature cache is on, else 0 (bench/levers.py: with 1 the "
                "receipt-printer preset read 8 points worse)"})
    freeze_feature_extractor: bool = field(default=False, metadata={
        "help": "train only the BiLSTM and head (faster on CPU, keeps the pretrained VGG features)"})
    cpu_recipe: bool = field(default=True, metadata={
        "help": "on a CPU, train only the BiLSTM and head of a pretrained origin (as freeze_feature_extractor; "
                "~4x faster steps, bench/speed.py); on a GPU the whole model trains. false = as set"})
    feature_cache_mb: int = field(default=2048, metadata={
        "help": "with frozen features (CPU recipe), compute each line's convolutional features once and "
                "reuse them, using up to N MB of memory (0 = off; off with augmentation, distill, compile, torchrun)"})
    feature_precision: Literal["float32", "int8"] = field(default="float32", metadata={
        "help": "with the feature cache on a CPU: int8 computes the training lines' frozen features with an 8-bit "
                "copy of the VGG (1.6x faster convolutions, features ~2% off; validation and the exported "
                "model stay float32; bench/first_run: 829 vs 873 s of training, held-out receipts and SROIE as "
                "float32, the receipt-printer preset 6 points lower), float32 = exact"})
    amp: Literal["off", "bf16", "fp16"] = field(default="off", metadata={
        "help": "mixed precision on CUDA (bf16 or fp16); off on CPU"})
    channels_last: bool = field(default=False, metadata={
        "help": "keep conv activations channels-last (NHWC), which tensor cores prefer with amp on recent GPUs"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the model for training (dynamic widths); the first steps wait for the compile"})
    seed: int = field(default=0, metadata={"help": "random seed (same seed + CPU = same metrics)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    workers: int = field(default=0, metadata={
        "help": "data-loading processes (0 = in the training process; on CPU a loader process pays off "
                "only with OMP_WAIT_POLICY=PASSIVE, which jobs and the CLI set)"})
    val_limit: int = field(default=500, metadata={"help": "validate on at most N lines of the val split (0 = all)"})
    keep_checkpoints: int = field(default=5, metadata={
        "help": "keep the newest N step checkpoints, plus the best one (0 = keep all)"})
    save_minutes: float = field(default=5.0, metadata={
        "help": "also save the resumable last.pt every N minutes between validations (0 = only at "
                "validations and on cancel)"})
    select: str = field(default="", metadata={
        "help": "validation metric that picks the best checkpoint and drives early stopping: NAME:METRIC "
                "(e.g. general:cer, val:accuracy) or METRIC of the first validation set; empty = first set's cer"})
    baseline: bool = field(default=True, metadata={
        "help": "validate the origin at step 0, so the curves start where the model started and the "
                "forgetting guard has a reference"})
    general_val: int = field(default=300, metadata={
        "help": "also validate on N lines of the built-in general set (real-looking Latin text the base "
                "model already reads; made once, cached) to watch for forgetting (0 = off)"})
    guard: str = field(default="general:accuracy_ws", metadata={
        "help": "forgetting guard NAME:METRIC: a checkpoint whose METRIC on validation set NAME falls more "
                "than guard_max_drop below the step-0 value is never chosen as best, and counts for early "
                "stopping (empty = off; skipped when the run has no such set)"})
    guard_max_drop: float = field(default=0.01, metadata={
        "help": "largest allowed drop of the guard metric versus the origin (0.01 = 1 point of accuracy; "
                "on a set of n lines at least 1.5/n, so one line lost is not called forgetting)"})
    replay: float = field(default=0.25, metadata={
        "help": "share of every batch drawn from generated general text lines (replay against forgetting: "
                "0.25 = a quarter of each batch; made once, cached, never the general validation lines; 0 = off). "
                "The default keeps real receipts at english_g2's level after a synthetic-only fine-tune "
                "(bench/levers.py)"})
    replay_lines: int = field(default=4000, metadata={"help": "how many general replay lines are generated"})
    distill: float = field(default=0.0, metadata={
        "help": "weight of a distillation loss pulling the model's outputs on the replay lines toward the "
                "origin's (needs replay > 0; e.g. 1.0; 0 = off)"})
    l2sp: float = field(default=0.0, metadata={
        "help": "L2-SP: weight of a penalty pulling the trained weights toward the origin's (e.g. 0.01; 0 = off)"})
    train_last_convs: int = field(default=0, metadata={
        "help": "with frozen features (CPU recipe or freeze_feature_extractor), still train the last N "
                "convolutions (english_g2 has 7; the last ones work on small maps, so they cost little)"})
    frozen_rnn_layers: int = field(default=0, metadata={
        "help": "with frozen features, also keep the first N BiLSTM layers of the head fixed (english_g2 has 2): "
                "the BiLSTM's backward pass is most of a cached step, so 1 roughly halves the head's cost; "
                "a speed lever measured in bench/first_run (0 = off)"})
    caseless: str = field(default="off", metadata={
        "help": "train case-insensitively on these training datasets (a letter's upper and lower case count as "
                "one there): auto = those whose labels are all upper case (SROIE-style ground truth), off, or a "
                "comma list of dataset folder names (bench/real_mix.py: on SROIE with replay on, auto read "
                "76.1% of held-out lines vs 76.7% off, so off is the default)"})
    family: str = field(default="", metadata={
        "help": "model family (architecture) for origin scratch: easyocr-crnn (english_g2's VGG-BiLSTM-CTC) or dtrb; "
                "other origins bring their own (empty = the origin's, easyocr-crnn for scratch)"})
    task: str = field(default="recognition", metadata={
        "help": "what is trained (a registered task: recognition = text lines)"})

    def validate(self) -> None:
        check(bool(self.origin.strip()), "origin must not be empty: use english_g2, scratch or run:PATH")
        check(self.lr > 0, f"lr must be positive, got {self.lr}: try 3e-4 for adamw or 1.0 for adadelta")
        check(not (self.optimizer == "adadelta" and self.lr < 0.01),
              f"optimizer adadelta with lr {self.lr} barely moves the weights (EasyOCR's trainer uses "
              "lr 1.0): set lr 1.0, or use optimizer adamw with this lr")
        check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(1 <= self.batch_size <= 4096, f"batch_size must be in 1..4096, got {self.batch_size}")
        check(self.max_steps >= 0, f"max_steps must be >= 0 (0 = use max_epochs), got {self.max_steps}")
        check(self.max_steps > 0 or self.max_epochs >= 1,
              f"with max_steps 0 training length comes from max_epochs, which is {self.max_epochs}: "
              "set max_epochs >= 1 or max_steps > 0")
        check(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        check(self.val_interval >= 1, f"val_interval must be >= 1 step, got {self.val_interval}")
        check(self.patience >= 0, f"patience must be >= 0 (0 = no early stopping), got {self.patience}")
        check(self.min_delta >= 0, f"min_delta must be >= 0, got {self.min_delta}")
        check(0 <= self.workers <= 64, f"workers must be in 0..64, got {self.workers}")
        check(self.val_limit >= 0, f"val_limit must be >= 0 (0 = all), got {self.val_limit}")
        check(bool(re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*:)?[a-z_]*$", self.select)),
              f"select {self.select!r} must be NAME:METRIC or METRIC, e.g. val:cer or general:accuracy")
        check(self.general_val >= 0, f"general_val must be >= 0 (0 = off), got {self.general_val}")
        check(self.guard_max_drop >= 0, f"guard_max_drop must be >= 0, got {self.guard_max_drop}")
        check(not self.guard or bool(re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*:[a-z_]+$", self.guard)),
              f"guard {self.guard!r} must be NAME:METRIC, e.g. general:accuracy_ws, or empty (off)")
        check(0 <= self.replay <= 0.9, f"replay must be a share of the batch in 0..0.9 (0 = off), got {self.replay}")
        check(self.replay_lines >= 10, f"replay_lines must be >= 10, got {self.replay_lines}")
        check(self.distill >= 0 and self.l2sp >= 0,
              f"distill and l2sp must be >= 0 (0 = off), got {self.distill} and {self.l2sp}")
        check(not (self.distill > 0 and self.replay <= 0),
              f"distill {self.distill} learns from the origin on the replay lines, but replay is 0: set replay "
              "(e.g. 0.25) or distill 0")
        _check_family(self.family)
        check_caseless(self.caseless)
        check(-1 <= self.augment_variants <= 64, f"augment_variants must be in -1..64 (0 = new at every pass, "
                                                 f"-1 = auto), got {self.augment_variants}")
        check(self.feature_cache_mb >= 0, f"feature_cache_mb must be >= 0 (0 = off), got {self.feature_cache_mb}")
        check(0 <= self.train_last_convs <= 64, f"train_last_convs must be in 0..64, got {self.train_last_convs}")
        check(0 <= self.frozen_rnn_layers <= 8, f"frozen_rnn_layers must be in 0..8, got {self.frozen_rnn_layers}")
        check(self.save_minutes >= 0, f"save_minutes must be >= 0 (0 = off), got {self.save_minutes}")
        check(self.keep_checkpoints >= 0, f"keep_checkpoints must be >= 0 (0 = all), got {self.keep_checkpoints}")
        check(bool(_DEVICE_RE.match(self.device)),
              f"device {self.device!r} is not one of auto, cpu, cuda, cuda:N: pick one of those")
        check(not (self.amp != "off" and self.device == "cpu"),
              f"amp {self.amp} needs a CUDA device but device is cpu: set amp off, or device cuda/auto")
        check(not (self.freeze_feature_extractor and self.origin.strip() == "scratch"),
              "freeze_feature_extractor with origin scratch would keep random VGG features forever: "
              "set freeze_feature_extractor false, or start from a pretrained origin")


def _check_family(name: str) -> None:
    if not name:
        return
    from .families import family_names

    check(name in family_names(), f"family {name!r} is not one of {', '.join(family_names())}: pick one of those "
                                  "(or leave it empty to use the origin's)")


# --------------------------------------------------------------------------- events

@dataclass(frozen=True)
class TrainStep(Event):
    """One optimizer step is done (`loss` is None when the step was skipped as non-finite)."""

    step: int
    max_steps: int
    epoch: float
    loss: Optional[float]
    lr: float
    samples_per_s: float
    eta_s: Optional[float]
    batch_size: int


@dataclass(frozen=True)
class Validation(Event):
    """A validation finished; `metrics` holds the first set's val_loss, accuracy, cer, ... (its metrics row)."""

    step: int
    max_steps: int
    epoch: float
    metrics: dict
    is_best: bool
    best_cer: Optional[float]
    checkpoint: str
    #: every validation set's row at this step, by set name (the first is `metrics`)
    sets: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange(Event):
    """The run moved to `state` (running, finished, failed, canceled); `reason` says why it ended."""

    state: str
    step: int
    max_steps: int
    run_dir: str
    error: Optional[str] = None
    reason: Optional[str] = None




# --------------------------------------------------------------------------- runs

_EVENTS = SimpleNamespace(step=TrainStep, validation=Validation)


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available, else "cpu"; checks that a requested CUDA device exists."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device} requested but torch sees no CUDA device: use device cpu or auto")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device} requested but only {torch.cuda.device_count()} CUDA device(s) "
                              "exist: pick cuda:0..")
        return f"cuda:{index}"
    return device


def data_spec(data: Any):
    """The resolved, checked :class:`ocrtrain.datamix.DataSpec` of `data` (a folder, a list, a spec)."""
    from .datamix import DataSpec

    spec = DataSpec.of(data).resolved()
    spec.check()
    return spec


def _dataset_info(path: str) -> dict:
    from .datamix import is_replay
    from .dataset import Dataset
    from .lmdb_io import is_lmdb
    if is_replay(path) and not is_lmdb(Path(path) / "train"):  # rendered when the run starts training
        return {"path": path, "replay": True}
    manifest = Dataset(path).manifest
    return {"path": path, **{k: manifest.get(k) for k in ("counts", "content_hash", "charset") if k in manifest}}


def prepare_run(config: TrainConfig, data: Any, run_dir: PathLike) -> Path:
    """Create RUN/config.json and a ``created`` status for a new run (RunError if RUN holds a run).

    `data` is a dataset folder, a list of them (``DIR[:WEIGHT]``) or a DataSpec with validation sets.
    """
    from . import runfolder
    from .datamix import with_general, with_replay

    spec = data_spec(data)
    if config.task == "recognition":
        spec = with_replay(with_general(spec, config.general_val), config.replay, config.replay_lines)
    first = _dataset_info(spec.train[0].path)
    record = {"format": RUN_FORMAT, "task": config.task, "config": config.to_dict(),
              "data": spec.train[0].path, "data_spec": spec.to_dict(), "origin": config.origin,
              "dataset": {k: v for k, v in first.items() if k != "path"},
              "datasets": [_dataset_info(s.path) for s in spec.train]}
    return runfolder.create_run(run_dir, record)


def stored_data(run_dir: PathLike) -> Any:
    """What a run trains on, as recorded at its start (the DataSpec, or the one folder of older runs)."""
    from . import runfolder
    from .datamix import DataSpec

    record = runfolder.read_config(run_dir)
    return DataSpec.from_dict(record["data_spec"]) if record.get("data_spec") else record["data"]


def fit(config: TrainConfig, data: Any, run_dir: PathLike, callback: Optional[Callback] = None,
        stop_event: Optional[threading.Event] = None, resume: bool = False, log_to: Sequence[str] = ()):
    """Train `config` on `data` into `run_dir` in this process; returns the Run.

    `data`: a dataset folder, a list of ``DIR[:WEIGHT]`` (a mixture: each source's share of every
    batch follows its weight) or a :class:`ocrtrain.datamix.DataSpec` with named validation sets.
    Stops cleanly (state ``canceled``, last.pt saved) when `stop_event` is set, a cancel request
    appears or SIGTERM reaches a job. ``resume=True`` continues from the run's last.pt with the same
    step counter, optimizer, schedule and random state, on the data recorded at the start. `log_to`
    backends (see :mod:`ocrtrain.tracking`) are added to the run's recorded ones, which all get the
    events. Raises
    DatasetError/ModelError/RunError after recording the error in the run's status.

    >>> # run = fit(TrainConfig(max_steps=200, val_interval=50), "data/receipts", "runs/r1")
    >>> # run = fit(cfg, DataSpec.parse(["real:1", "synth:1"], ["general=gen"]), "runs/mix")
    """
    from .runs import Run
    from .tasks import get_task
    from .trainer import Trainer

    run_dir = Path(run_dir)
    group = distributed.current()
    if resume:  # config.json may be edited since the start: only some values may change on resume
        from .resumecfg import resume_config
        config = resume_config(config, run_dir, callback, group.main)
    problem = None
    if group.main:
        try:
            _prepare_fit(config, data, run_dir, resume, callback)
        except OcrtrainError as exc:
            problem = str(exc)
            if group.active:
                distributed.broadcast_object(problem)
            raise
    if group.active:  # the others start once rank 0 has the run folder ready
        problem = distributed.broadcast_object(problem)
        if problem is not None:
            raise RunError(f"rank 0 could not prepare {run_dir}: {problem}")
    # What the run folder recorded (a job, a resume and every torchrun rank train on the same spec).
    spec = data_spec(stored_data(run_dir))
    loggers = _open_loggers(run_dir, log_to, callback) if group.main else []
    callback = tracking.with_loggers(callback, loggers)
    trainer = Trainer(get_task(config.task), config, spec, run_dir, callback, stop_event, resume, _EVENTS)
    if not group.main:
        return _fit_follower(trainer)
    try:
        _run_main(trainer, callback)
    finally:
        for logger in loggers:
            logger.close()
    return Run(run_dir)


def _open_loggers(run_dir: Path, log_to: Sequence[str], callback: Optional[Callback]) -> list:
    if log_to:
        tracking.record_backends(run_dir, log_to)
    return tracking.open_loggers(run_dir, callback)


def _run_main(trainer, callback: Optional[Callback]) -> None:
    """fit() on the main process: train, and record every way it can end in the run's status."""
    from .fsutil import now_iso
    from .runfolder import clear_cancel
    from .trainer import Stop

    run_dir, io = trainer.run_dir, trainer.io
    # cancel() may send SIGTERM only when this process treats it as a stop request (a job), never
    # to, say, a notebook kernel that runs fit() in a thread.
    signals = bool(getattr(signal.getsignal(signal.SIGTERM), "cooperative_stop", False))
    trainer.set_status(state="running", started=now_iso(), ended=None, error=None, pid=os.getpid(),
                       host=socket.gethostname(), interrupted=False, reason=None, signals=signals)
    emit(callback, StatusChange("running", 0, 0, str(run_dir)))
    state, error, reason = "failed", None, None
    try:
        trainer.setup()
        io.open_rows()
        if trainer.dist.active:
            trainer.set_status(distributed={"world_size": trainer.dist.world_size, "backend": trainer.dist.backend})
        trainer.set_status(device=trainer.device, step=trainer.step, max_steps=trainer.max_steps,
                           batch_size=trainer.batch_size, steps_per_epoch=trainer.steps_per_epoch,
                           **trainer.task.status_fields())
        emit(callback, StatusChange("running", trainer.step, trainer.max_steps, str(run_dir)))
        try:
            reason = trainer.run()
            trainer.check_replicas()
            state = "finished"
        except Stop:
            state, reason = "canceled", "canceled on request"
            trainer.save_last()
            trainer.message(f"canceled at step {trainer.step}; last.pt saved (resume with "
                            f"`ocrtrain resume {run_dir}`)")
    except OcrtrainError as exc:
        error = str(exc)
        raise
    except KeyboardInterrupt:
        error = "interrupted (KeyboardInterrupt): resume continues from the last checkpoint"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        io.close_rows()
        io.log(f"failed: {error}" if error is not None else
               f"{state} at step {trainer.step}/{trainer.max_steps} ({reason})", "error" if error else "info")
        io.quietly(lambda: trainer.set_status(
            state=state, ended=now_iso(), error=error, reason=reason, step=trainer.step,
            max_steps=trainer.max_steps, nonfinite_skipped=trainer.nonfinite, oom_halvings=trainer.oom_halvings,
            best_cer=trainer.best_metrics.get("cer"), best_step=trainer.best_step))
        emit(callback, StatusChange(state, trainer.step, trainer.max_steps, str(run_dir), error, reason))
        clear_cancel(run_dir)


def _prepare_fit(config: TrainConfig, data: Any, run_dir: Path, resume: bool,
                 callback: Optional[Callback] = None) -> None:
    from . import runfolder

    if resume:
        if not runfolder.files(run_dir).config.is_file():
            raise RunError(f"{run_dir} is not a run folder (it has no run config): start a new run instead of "
                           "resuming")
    else:
        st = runfolder.read_status(run_dir) if runfolder.files(run_dir).status.is_file() else None
        fresh_job = st is not None and st.state in ("created", "queued") and \
            runfolder.files(run_dir).config.is_file() and not runfolder.files(run_dir).metrics.exists()
        if not fresh_job:
            prepare_run(config, data, run_dir)
    from .datamix import DataSpec, ensure_replay_sources
    if isinstance(stored := stored_data(run_dir), DataSpec):  # before the folders are checked
        ensure_replay_sources(stored, callback)
    runfolder.files(run_dir).checkpoints.mkdir(parents=True, exist_ok=True)


def _fit_follower(trainer):
    """fit() on a torchrun rank other than 0: train in step with rank 0, write nothing."""
    from .runs import Run
    from .trainer import Stop

    trainer.setup()
    try:
        trainer.run()
        trainer.check_replicas()
    except Stop:
        pass
    return Run(trainer.run_dir)
