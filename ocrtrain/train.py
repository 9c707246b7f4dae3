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

import csv
import errno
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import numpy as np

from . import distributed
from .augment import AugmentConfig, augment, sample_rng
from .config import Config, check
from .dataset import Dataset, write_json_atomic
from .errors import ConfigError, DatasetError, ModelError, OcrtrainError, RunError
from .events import Callback, Event, Message, emit
from .runs import (CONFIG, LOG, METRICS, REJECTED, STATUS, Run, cancel_requested, update_status)

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
MIN_TRAIN_SAMPLES = 2
#: Steps in a row with a non-finite loss/gradient after which training gives up.
MAX_NONFINITE_IN_A_ROW = 25
RUN_FORMAT = "ocrtrain-run/1"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


# --------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that decides how a run trains (the dataset and run folder are given separately)."""

    origin: str = field(default="english_g2", metadata={
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
    freeze_feature_extractor: bool = field(default=False, metadata={
        "help": "train only the BiLSTM and head (faster on CPU, keeps the pretrained VGG features)"})
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
        check(self.keep_checkpoints >= 0, f"keep_checkpoints must be >= 0 (0 = all), got {self.keep_checkpoints}")
        check(bool(_DEVICE_RE.match(self.device)),
              f"device {self.device!r} is not one of auto, cpu, cuda, cuda:N: pick one of those")
        check(not (self.amp != "off" and self.device == "cpu"),
              f"amp {self.amp} needs a CUDA device but device is cpu: set amp off, or device cuda/auto")
        check(not (self.freeze_feature_extractor and self.origin.strip() == "scratch"),
              "freeze_feature_extractor with origin scratch would keep random VGG features forever: "
              "set freeze_feature_extractor false, or start from a pretrained origin")


# --------------------------------------------------------------------------- templates

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "train_templates"


def _user_template_dir() -> Path:
    home = os.environ.get("OCRTRAIN_HOME")
    return (Path(home) if home else Path.home() / ".ocrtrain") / "templates"


def template_dirs() -> dict[str, Path]:
    """The folders templates are read from: {"user": ..., "shipped": ...} (user ones win)."""
    return {"user": _user_template_dir(), "shipped": SHIPPED_TEMPLATES}


def _check_template_name(name: str) -> str:
    if not isinstance(name, str) or not _TEMPLATE_NAME.match(name) or len(name) > 100:
        raise ConfigError(f"template name {name!r} is not allowed: use letters, digits, '-', '_' and '.' "
                          "(not starting with '.' and at most 100 characters), e.g. 'receipts-cpu'")
    return name[:-5] if name.endswith(".yaml") else name


def list_templates() -> list[str]:
    """Names of all templates (user and shipped), sorted."""
    names: set[str] = set()
    for folder in template_dirs().values():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml") if _TEMPLATE_NAME.match(p.stem))
    return sorted(names)


def load_template(name: str) -> TrainConfig:
    """The TrainConfig stored under `name` (a template may set only some keys; the rest are defaults)."""
    name = _check_template_name(name)
    for folder in template_dirs().values():
        path = folder / f"{name}.yaml"
        if path.is_file():
            try:
                return TrainConfig.from_file(path)
            except ConfigError as exc:
                raise ConfigError(f"template {name!r} ({path}): {exc}") from None
    raise ConfigError(f"no template named {name!r}: choose one of {', '.join(list_templates()) or 'none'} "
                      "or save one with save_template(config, name)")


def save_template(config: TrainConfig, name: str, overwrite: bool = False) -> Path:
    """Store `config` as a user template NAME.yaml (ConfigError for shipped names or existing ones)."""
    name = _check_template_name(name)
    if (SHIPPED_TEMPLATES / f"{name}.yaml").is_file():
        raise ConfigError(f"{name!r} is a shipped template and cannot be replaced: save under another name")
    folder = _user_template_dir()
    path = folder / f"{name}.yaml"
    if path.exists() and not overwrite:
        raise ConfigError(f"template {name!r} already exists ({path}): pass overwrite=True or pick another name")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(config.to_yaml(), encoding="utf-8")
    os.replace(tmp, path)
    return path


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
    """A validation finished; `metrics` holds val_loss, accuracy, cer, ... (the metrics.jsonl row)."""

    step: int
    max_steps: int
    epoch: float
    metrics: dict
    is_best: bool
    best_cer: Optional[float]
    checkpoint: str


@dataclass(frozen=True)
class StatusChange(Event):
    """The run moved to `state` (running, finished, failed, canceled); `reason` says why it ended."""

    state: str
    step: int
    max_steps: int
    run_dir: str
    error: Optional[str] = None
    reason: Optional[str] = None


# --------------------------------------------------------------------------- run folder

def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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


def _open_dataset(data: PathLike) -> Dataset:
    ds = Dataset(data)
    for split in ("train", "val"):
        if split not in ds.splits:
            raise DatasetError(
                f"dataset {ds.path} has no {split!r} split (has {sorted(ds.splits)}): training needs train "
                "and val LMDBs; regenerate it with `ocrtrain synth`/`ocrtrain import` (val_fraction > 0)")
    return ds


def prepare_run(config: TrainConfig, data: PathLike, run_dir: PathLike) -> Path:
    """Create RUN/config.json and a ``created`` status for a new run (RunError if RUN holds a run)."""
    run_dir = Path(run_dir)
    ds = _open_dataset(data)
    status = {}
    if (run_dir / STATUS).is_file():
        status = Run(run_dir).status()
    if status.get("state", "created") != "created" or (run_dir / "checkpoints" / "last.pt").exists() \
            or (run_dir / METRICS).exists():
        raise RunError(f"{run_dir} already holds a run ({status.get('state', 'with checkpoints')}): choose a new "
                       f"run folder, or `ocrtrain resume {run_dir}` to continue it")
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("checkpoints", "reports", "export"):
        (run_dir / sub).mkdir(exist_ok=True)
    write_json_atomic(run_dir / CONFIG, {
        "format": RUN_FORMAT,
        "config": config.to_dict(),
        "data": str(ds.path.resolve()),
        "origin": config.origin,
        "created": _now(),
        "dataset": {k: ds.manifest.get(k) for k in ("counts", "content_hash", "charset") if k in ds.manifest},
    })
    update_status(run_dir, state="created", created=_now(), started=None, ended=None, device=None,
                  error=None, step=0, max_steps=config.max_steps or None, pid=None)
    return run_dir


class _RunLog:
    """Timestamped lines appended to RUN/log.txt (also passed to logging at debug level)."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, text: str, level: str = "info") -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level.upper():7s} {text}\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
        log.debug(text)


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _finite(value: Optional[float]) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


# --------------------------------------------------------------------------- data

@dataclass
class _Split:
    """Usable samples of one split: LMDB indices, labels, encoded targets and widths at model height."""

    path: Path
    indices: list[int]
    labels: list[str]
    targets: list[list[int]]
    widths: list[int]


def _ctc_steps_needed(label: str) -> int:
    # CTC must put a blank between two equal neighbouring characters.
    return len(label) + sum(1 for a, b in zip(label, label[1:]) if a == b)


def _scan_split(ds: Dataset, split: str) -> tuple[Path, list[str], list[tuple[int, int]]]:
    """Labels and (height, width) of every sample, reading image headers only."""
    import io

    from PIL import Image, UnidentifiedImageError

    reader = ds.reader(split)
    labels, shapes = [], []
    for i in range(len(reader)):
        data, label = reader[i]
        try:
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"{reader.path} sample {i} (label {label!r}) is not a readable image ({exc}): "
                               "re-create this split") from None
        labels.append(label)
        shapes.append((h, w))
    return reader.path, labels, shapes


def _filter_split(split: str, path: Path, labels: list[str], shapes: list[tuple[int, int]], charset,
                  height: int, mode: str, rejected: list[dict]) -> _Split:
    from .model import Recognizer
    from .preprocess import padded_width

    out = _Split(path, [], [], [], [])
    for i, (label, (h, w)) in enumerate(zip(labels, shapes)):
        missing = charset.missing(label)
        if missing:
            rejected.append({"split": split, "index": i, "label": label,
                             "reason": f"characters {''.join(sorted(missing))!r} are not in the model's charset "
                                       f"(charset_mode {mode}): use charset_mode extend, or fix the label"})
            continue
        steps = Recognizer.sequence_length(padded_width((h, w), height))
        needed = _ctc_steps_needed(label)
        if needed > steps:
            rejected.append({"split": split, "index": i, "label": label,
                             "reason": f"label needs {needed} output steps but the {w}x{h} image gives only "
                                       f"{steps} at height {height}: crop the image to the text, split the "
                                       "line, or fix the label"})
            continue
        out.indices.append(i)
        out.labels.append(label)
        out.targets.append(charset.encode(label))
        out.widths.append(max(1, int(height * w / h)) if w >= h else height)
    return out


class _Batches:
    """Map-style source of ready batches (DataLoader with batch_size=None): item i = batch i of a plan."""

    def __init__(self, split: _Split, batches: list[list[int]], height: int,
                 augment_config: Optional[AugmentConfig], seed: int, epoch: int):
        from .lmdb_io import LmdbReader

        self.split = split
        self.batches = batches
        self.height = height
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = epoch
        self.reader = LmdbReader(split.path)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        import torch

        from .images import decode_image
        from .preprocess import batch_tensor, resize_to_height, to_gray

        grays, positions = [], self.batches[i]
        for pos in positions:
            index = self.split.indices[pos]
            image = decode_image(self.reader.image_bytes(index), f"{self.split.path} sample {index}")
            gray = to_gray(image)
            if self.augment_config is not None:
                gray = np.asarray(augment(gray, self.augment_config, sample_rng(self.seed, self.epoch, index)))
            grays.append(resize_to_height(gray, self.height))
        return {"images": batch_tensor(grays, self.height),
                "targets": [self.split.targets[p] for p in positions],
                "labels": [self.split.labels[p] for p in positions],
                "positions": list(positions)}


def _plan_epoch(widths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar-width samples: sort within shuffled pools, then shuffle the batches."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, epoch, 7])
    order = rng.permutation(len(widths)).tolist()
    pool = max(batch_size * 16, batch_size)
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda p: widths[p])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    perm = rng.permutation(len(batches)).tolist()
    return [batches[i] for i in perm]


def shard_plan(plan: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """Rank `rank`'s batches of an epoch plan under torchrun: every world_size-th batch, the same
    number on each rank (the last len(plan) % world_size batches of the epoch are left out)."""
    if world_size == 1:
        return plan
    usable = len(plan) - len(plan) % world_size
    return plan[rank:usable:world_size]


def _val_batches(widths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(widths)), key=lambda p: widths[p])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


# --------------------------------------------------------------------------- the loop

def effective_warmup(warmup_steps: int, total_steps: int) -> int:
    """Warm-up steps actually used: a warm-up as long as the run (e.g. the default 20 with
    ``--max-steps 20``) would never reach the set learning rate, so it is cut to a tenth of the run."""
    if total_steps and warmup_steps >= total_steps:
        return total_steps // 10
    return warmup_steps


def _lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def _forward(model, images):
    """The model call, separate so tests can inject faults (e.g. an out-of-memory error)."""
    return model(images)


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def _rng_state(device: str) -> dict:
    import torch

    state = {"torch": torch.get_rng_state(), "python": _py_state_to_plain(random.getstate()),
             "numpy": _np_state_to_plain(np.random.get_state())}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def _py_state_to_plain(state) -> list:
    return [state[0], list(state[1]), state[2]]


def _np_state_to_plain(state) -> dict:
    return {"kind": state[0], "keys": state[1].tolist(), "pos": int(state[2]),
            "has_gauss": int(state[3]), "gauss": float(state[4])}


def _set_rng_state(state: dict, device: str) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst["kind"], np.array(npst["keys"], dtype=np.uint32), npst["pos"],
                         npst["has_gauss"], npst["gauss"]))
    if device.startswith("cuda") and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], torch.device(device))


def _write_rejected(path: Path, rejected: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["split", "index", "label", "reason"])
        writer.writeheader()
        writer.writerows(rejected)
    os.replace(tmp, path)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


class _Stop(Exception):
    """Raised inside the loop when a stop was requested (handled as ``canceled``)."""


class _Trainer:
    """State of one training session (a fresh start or a resume) of one run folder."""

    def __init__(self, config: TrainConfig, data: PathLike, run_dir: Path, callback: Optional[Callback],
                 stop_event: Optional[threading.Event], resume: bool):
        self.config = config
        self.data = data
        self.run_dir = run_dir
        self.callback = callback
        self.stop_event = stop_event
        self.resume = resume
        self.ckpt_dir = run_dir / "checkpoints"
        # Under torchrun every rank trains; rank 0 alone writes the run folder and reports.
        self.dist = distributed.current()
        self.main = self.dist.main
        self.log = _RunLog(run_dir / LOG) if self.main else _no_log
        self.net = None  # the model as trained: DistributedDataParallel around it under torchrun
        self._agreed_stop = False
        self.step = 0
        self.epoch = 0
        self.max_steps = 0
        self.batch_size = config.batch_size
        self.position = (0, 0)  # (batch index in the epoch plan, samples of that batch already trained)
        self.plan: Optional[list[list[int]]] = None
        self.best_cer: Optional[float] = None
        self.best_step: Optional[int] = None
        self.best_accuracy: Optional[float] = None
        self.bad_validations = 0
        self.nonfinite = 0
        self.nonfinite_in_a_row = 0
        self.oom_halvings = 0
        self.samples_seen = 0
        self.last_val_step = -1
        self._window: list[tuple[int, float]] = []
        self._train_time = 0.0
        self._val_time = 0.0
        self._loss_sum = 0.0
        self._loss_n = 0
        self._last_status_write = 0.0
        self._last_log_line = time.monotonic()
        self._metrics_fh = None

    # ---- reporting
    def message(self, text: str, level: str = "info") -> None:
        if self.main:
            self.log(text, level)
            emit(self.callback, Message(text, level))

    def emit(self, event: Event) -> None:
        if self.main:
            emit(self.callback, event)

    def set_status(self, **fields) -> None:
        if self.main:
            update_status(self.run_dir, **fields)
        self._last_status_write = time.monotonic()

    def write_metrics(self, row: dict) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._metrics_fh.flush()

    def stop_requested(self) -> bool:
        if self.dist.active:  # every rank must stop at the same step: see _agree()
            return self._agreed_stop
        return self._local_stop()

    def _local_stop(self) -> bool:
        return bool(self.stop_event is not None and self.stop_event.is_set()) or \
            (self.main and cancel_requested(self.run_dir))

    def _agree(self, n: int, loss: Optional[float]) -> tuple[int, Optional[float]]:
        """Under torchrun: lines trained by all ranks, their mean loss, and whether any rank must stop.

        One small all-reduce per step; without it a cancel seen by rank 0 alone would leave the
        other ranks waiting forever in the next gradient all-reduce.
        """
        if not self.dist.active:
            return n, loss
        finite = loss is not None and math.isfinite(loss)
        total_n, loss_sum, finite_n, stops = distributed.all_sum(
            [n, loss if finite else 0.0, 1.0 if finite else 0.0, 1.0 if self._local_stop() else 0.0])
        self._agreed_stop = stops > 0
        mean = loss_sum / finite_n if loss is not None and finite_n else None
        return int(total_n), mean

    # ---- setup
    def setup(self) -> None:
        import torch

        from .origins import adapt_charset, load_origin

        cfg = self.config
        if self.dist.active:
            self.device = f"cuda:{self.dist.local_rank}" if self.dist.backend == "nccl" else "cpu"
            if cfg.device not in ("auto", "cpu", "cuda") and cfg.device != self.device:
                self.message(f"device {cfg.device} ignored under torchrun: rank {self.dist.rank} uses "
                             f"{self.device}", "warning")
        else:
            self.device = resolve_device(cfg.device)
        if cfg.amp != "off" and not self.device.startswith("cuda"):
            raise ConfigError(f"amp {cfg.amp} needs a CUDA device but the run uses {self.device}: set amp off")
        ds = _open_dataset(self.data)
        last = self.ckpt_dir / "last.pt"
        self.state = None
        if self.resume and last.is_file():
            from .checkpoint import load_checkpoint

            self.state = load_checkpoint(last)
            loaded = load_origin(f"run:{self.run_dir}@last", device="cpu")
            self.message(f"resuming from {last} at step {self.state['step']}")
        else:
            if self.resume:
                self.message(f"no {last} to resume from: starting again from origin {cfg.origin}", "warning")
            torch.manual_seed(cfg.seed)
            random.seed(cfg.seed)
            np.random.seed(cfg.seed & 0xFFFFFFFF)
            loaded = load_origin(cfg.origin, device="cpu", seed=cfg.seed)
        scans = {s: _scan_split(ds, s) for s in ("train", "val")}
        if not scans["train"][1]:
            raise DatasetError(f"{ds.path}/train is empty: generate or import training lines first")
        if not scans["val"][1]:
            raise DatasetError(f"{ds.path}/val is empty: validation needs at least one line; regenerate the "
                               "dataset with val_fraction > 0")
        if self.state is None:
            data_chars = "".join(sorted({c for s in scans.values() for label in s[1] for c in label}))
            before = len(loaded.charset)
            loaded = adapt_charset(loaded, data_chars, cfg.charset_mode)
            if cfg.charset_mode == "extend" and len(loaded.charset) > before:
                added = loaded.charset.chars[before:]
                self.message(f"charset extended by {len(added)} character(s) {added!r} "
                             f"({before} -> {len(loaded.charset)})")
        self.model = loaded.model.to(self.device)
        self.charset = loaded.charset
        self.model_config = loaded.model_config
        self.height = self.model_config.img_height
        self.model.freeze_feature_extractor(cfg.freeze_feature_extractor)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            # DDP broadcasts rank 0's weights here and averages gradients in backward().
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.dist.local_rank] if self.device.startswith("cuda") else None)
        if cfg.compile:
            # Widths change from batch to batch: one dynamic graph instead of a recompile per width.
            self.net = torch.compile(self.net, dynamic=True)

        self.rejected: list[dict] = []
        self.train = _filter_split("train", *scans["train"], self.charset, self.height, cfg.charset_mode, self.rejected)
        val = _filter_split("val", *scans["val"], self.charset, self.height, cfg.charset_mode, self.rejected)
        if cfg.val_limit and len(val.indices) > cfg.val_limit:
            val = _Split(val.path, *(getattr(val, k)[:cfg.val_limit] for k in ("indices", "labels", "targets", "widths")))
        self.val = val
        if self.main:
            _write_rejected(self.run_dir / REJECTED, self.rejected)
        if self.rejected:
            examples = "; ".join(f"{r['split']}[{r['index']}] {r['label']!r}: {r['reason']}" for r in self.rejected[:3])
            self.message(f"{len(self.rejected)} label(s) cannot be used and are listed in "
                         f"{self.run_dir / REJECTED} (e.g. {examples})", "warning")
        if len(self.train.indices) < MIN_TRAIN_SAMPLES:
            raise DatasetError(
                f"only {len(self.train.indices)} usable training line(s) in {ds.path}/train "
                f"({sum(r['split'] == 'train' for r in self.rejected)} rejected, see {self.run_dir / REJECTED}): "
                f"at least {MIN_TRAIN_SAMPLES} are needed; add data or use charset_mode extend")
        if not self.val.indices:
            raise DatasetError(f"no usable validation line in {ds.path}/val (all rejected, see "
                               f"{self.run_dir / REJECTED}): fix the labels or use charset_mode extend")

        params = [p for p in self.model.parameters() if p.requires_grad]
        self.params = params
        # On CUDA one fused kernel updates all parameters instead of a launch per tensor.
        fused = {"fused": True} if self.device.startswith("cuda") else {}
        if cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        elif cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        else:  # EasyOCR / deep-text-recognition-benchmark defaults
            self.optimizer = torch.optim.Adadelta(params, lr=cfg.lr, rho=0.95, eps=1e-8,
                                                  weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
        self.ctc = torch.nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
        self.ctc_each = torch.nn.CTCLoss(blank=0, reduction="none", zero_infinity=True)

        steps_per_epoch = len(self._shard(_plan_epoch(self.train.widths, cfg.batch_size, cfg.seed, 0)))
        if steps_per_epoch == 0:
            raise DatasetError(f"{len(self.train.indices)} training lines make fewer batches of {cfg.batch_size} "
                               f"than the {self.dist.world_size} torchrun processes: lower batch_size or "
                               "--nproc_per_node, or add data")
        self.steps_per_epoch = steps_per_epoch
        self.max_steps = cfg.max_steps or cfg.max_epochs * steps_per_epoch
        if self.state is not None:
            self._restore(self.state)
        self._val_cache: Optional[list[dict]] = None

    def _restore(self, st: dict) -> None:
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scaler is not None and st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        self.step = int(st["step"])
        self.epoch = int(st["epoch"])
        self.samples_seen = int(st.get("samples_seen", 0))
        tr = st.get("trainer", {})
        self.max_steps = int(tr.get("max_steps", self.max_steps))
        self.batch_size = int(tr.get("batch_size", self.batch_size))
        self.position = tuple(tr.get("position", (0, 0)))
        self.plan = tr.get("plan")
        saved_world = int(tr.get("world_size", 1))
        if saved_world != self.dist.world_size and self.plan is not None:
            self.message(f"resuming with {self.dist.world_size} process(es) where the run had {saved_world}: the "
                         f"current epoch starts over", "warning")
            self.plan, self.position = None, (0, 0)
        self.best_cer = tr.get("best_cer")
        self.best_step = tr.get("best_step")
        self.best_accuracy = tr.get("best_accuracy")
        self.bad_validations = int(tr.get("bad_validations", 0))
        self.nonfinite = int(tr.get("nonfinite", 0))
        self.oom_halvings = int(tr.get("oom_halvings", 0))
        self.last_val_step = int(tr.get("last_val_step", self.step))
        _set_rng_state(st["rng"], self.device)
        # Rows written after last.pt (the process died later) would duplicate the steps we redo.
        if self.main:
            self._truncate_after(self.step)

    def _truncate_after(self, step: int) -> None:
        path = self.run_dir / METRICS
        if path.is_file():
            keep = [row for row in Run(self.run_dir).metrics() if row.get("step", 0) <= step]
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
            os.replace(tmp, path)
        vfile = self.ckpt_dir / "versions.json"
        if vfile.is_file():
            data = json.loads(vfile.read_text(encoding="utf-8"))
            data["versions"] = [v for v in data.get("versions", []) if v["step"] <= step]
            write_json_atomic(vfile, data)

    # ---- steps
    def lr_at(self, step: int) -> float:
        return self.config.lr * _lr_factor(step, effective_warmup(self.config.warmup_steps, self.max_steps),
                                           self.max_steps, self.config.schedule)

    def _autocast(self):
        import contextlib

        import torch

        if self.config.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _loss(self, logits, targets: list[list[int]], each: bool = False):
        import torch

        log_probs = logits.float().log_softmax(2).permute(1, 0, 2)  # [T, B, C] for CTCLoss
        t, b = log_probs.shape[:2]
        flat = torch.tensor([c for seq in targets for c in seq], dtype=torch.long)
        lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long)
        inputs = torch.full((b,), t, dtype=torch.long)
        if log_probs.is_cuda:
            flat, lengths, inputs = flat.to(log_probs.device), lengths.to(log_probs.device), inputs.to(log_probs.device)
        return (self.ctc_each if each else self.ctc)(log_probs, flat, inputs, lengths)

    def train_step(self, images, targets: list[list[int]]) -> Optional[float]:
        """One optimizer step; returns the loss, or None when it was skipped as non-finite."""
        import torch

        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        images = images.to(self.device, non_blocking=True)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            logits = _forward(self.net, images)
        loss = self._loss(logits, targets)
        # Backward runs even for a NaN loss: the one host sync of the step comes after it (on a GPU a
        # sync stalls the queue), and under DDP every rank must join the gradient all-reduce anyway.
        # A NaN loss gives a NaN gradient norm, so the check below skips the step on every rank.
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip or float("inf"))
        loss_value, norm_value = torch.stack([loss.detach().float(), norm.detach().float()]).tolist()
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.update(self.scaler.get_scale() / 2)  # what the scaler does on inf gradients
            return None
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss_value

    # ---- validation and checkpoints
    def _val_loader(self) -> list[dict]:
        if self._val_cache is not None:
            return self._val_cache
        source = _Batches(self.val, _val_batches(self.val.widths, max(self.config.batch_size, 16)),
                          self.height, None, self.config.seed, 0)
        batches = [source[i] for i in range(len(source))]
        pixels = sum(b["images"].numel() for b in batches)
        if pixels * 4 <= 256 * 1024 * 1024:  # keep decoded val batches when they fit in 256 MB
            self._val_cache = batches
        return batches

    def validate(self) -> dict:
        import torch

        from .metrics import summarize

        started = time.monotonic()
        self.model.eval()
        preds: list[str] = []
        labels: list[str] = []
        losses: list[float] = []
        with torch.no_grad():
            for batch in self._val_loader():
                with self._autocast():
                    logits = _forward(self.model, batch["images"].to(self.device))
                per_sample = self._loss(logits, batch["targets"], each=True)
                lengths = torch.tensor([max(1, len(t)) for t in batch["targets"]], dtype=torch.float32)
                losses.extend((per_sample.float().cpu() / lengths).tolist())
                for row in logits.argmax(2).cpu().tolist():
                    preds.append(self.charset.decode_ctc(row))
                labels.extend(batch["labels"])
        self.model.train()
        metrics = summarize(preds, labels)
        metrics["val_loss"] = _finite(float(np.mean(losses))) if losses else None
        self._val_time += time.monotonic() - started
        self._last_val_seconds = time.monotonic() - started
        return metrics

    def _extra_state(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"schedule": self.config.schedule, "lr": self.config.lr,
                          "warmup_steps": effective_warmup(self.config.warmup_steps, self.max_steps), "max_steps": self.max_steps},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": _rng_state(self.device),
            "epoch": self.epoch,
            "samples_seen": self.samples_seen,
            "trainer": {
                "max_steps": self.max_steps, "batch_size": self.batch_size, "position": list(self.position),
                "world_size": self.dist.world_size,
                "plan": self.plan, "best_cer": self.best_cer, "best_step": self.best_step,
                "best_accuracy": self.best_accuracy, "bad_validations": self.bad_validations, "nonfinite": self.nonfinite,
                "oom_halvings": self.oom_halvings, "last_val_step": self.last_val_step,
            },
        }

    def _save(self, action: str, fn, *args) -> None:
        try:
            fn(*args)
        except OSError as exc:
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise RunError(
                f"could not {action} in {self.ckpt_dir} ({reason}; {type(exc).__name__}: {exc}): earlier "
                f"checkpoints are intact; free space or fix permissions, then `ocrtrain resume {self.run_dir}`"
            ) from exc

    def save_last(self, metrics: Optional[dict] = None) -> None:
        from .checkpoint import save_checkpoint

        if not self.main:
            return
        self._save("save last.pt", save_checkpoint, self.ckpt_dir / "last.pt", self.model, self.charset,
                   self.model_config, self.step, metrics or {}, self._extra_state())

    def checkpoint(self, metrics: dict, is_best: bool) -> str:
        from .checkpoint import save_checkpoint

        name = f"step-{self.step:08d}.pt"
        self._save(f"save {name}", save_checkpoint, self.ckpt_dir / name, self.model, self.charset,
                   self.model_config, self.step, metrics)
        vfile = self.ckpt_dir / "versions.json"
        data = json.loads(vfile.read_text(encoding="utf-8")) if vfile.is_file() else {}
        versions = [v for v in data.get("versions", []) if v["step"] != self.step]
        versions.append({"step": self.step, "file": name, "metrics": metrics})
        best = data.get("best")
        if is_best:
            self._save("update best.pt", _copy_atomic, self.ckpt_dir / name, self.ckpt_dir / "best.pt")
            best = name
        keep = self.config.keep_checkpoints
        if keep:
            steps = [v for v in versions if v["file"] != best]
            for old in steps[:-keep] if len(steps) > keep else []:
                (self.ckpt_dir / old["file"]).unlink(missing_ok=True)
                versions.remove(old)
        self._save("write versions.json", write_json_atomic, vfile,
                   {"versions": versions, "best": best, "last": "last.pt"})
        return name

    # ---- main loop
    def _progress_numbers(self) -> tuple[float, Optional[float]]:
        samples = sum(n for n, _ in self._window)
        seconds = sum(s for _, s in self._window)
        rate = samples / seconds if seconds > 0 else 0.0
        if not self._window:
            return rate, None
        per_step = seconds / len(self._window)
        remaining = self.max_steps - self.step
        vals_left = max(0, remaining // self.config.val_interval + 1)
        eta = remaining * per_step + vals_left * getattr(self, "_last_val_seconds", 0.0)
        return rate, eta

    def _after_step(self, n: int, seconds: float, loss: Optional[float]) -> None:
        self.step += 1
        self.samples_seen += n
        self._window.append((n, seconds))
        if len(self._window) > 20:
            self._window.pop(0)
        self._train_time += seconds
        if loss is None:
            self.nonfinite += 1
            self.nonfinite_in_a_row += 1
            self.message(f"step {self.step}: loss or gradient is not finite (NaN/inf); step skipped "
                         f"({self.nonfinite} so far)", "warning")
            if self.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW:
                raise RunError(f"the loss was NaN/inf for {self.nonfinite_in_a_row} steps in a row (step "
                               f"{self.step}): lower lr (now {self.config.lr:g}) or set grad_clip, then start "
                               "a new run")
        else:
            self.nonfinite_in_a_row = 0
            self._loss_sum += loss
            self._loss_n += 1
        rate, eta = self._progress_numbers()
        epoch = self._epoch_now()
        lr = self.lr_at(self.step - 1)
        self.write_metrics({"kind": "train", "step": self.step, "epoch": round(epoch, 4), "train_loss": loss,
                            "lr": lr, "samples_per_s": round(rate, 2), "eta_s": _finite(eta) and round(eta, 1),
                            "batch_size": n, "step_s": round(seconds, 4), "skipped": loss is None})
        self.emit(TrainStep(self.step, self.max_steps, round(epoch, 4), loss, lr, round(rate, 2),
                                      eta, n))
        if time.monotonic() - self._last_log_line > 30.0:  # a heartbeat for `tail -f log.txt`
            self._last_log_line = time.monotonic()
            self.log(f"step {self.step}/{self.max_steps} epoch {epoch:.2f} loss "
                     f"{'skipped' if loss is None else f'{loss:.4f}'} lr {lr:.2e} {rate:.1f} lines/s "
                     f"eta {_fmt_duration(eta)}")
        if time.monotonic() - self._last_status_write > 2.0:
            self.set_status(step=self.step, epoch=round(epoch, 4), batch_size=self.batch_size,
                            nonfinite_skipped=self.nonfinite, samples_per_s=round(rate, 2), eta_s=_finite(eta))

    def _validation(self) -> bool:
        """Validate, checkpoint, report; returns True when early stopping says to stop.

        Under torchrun rank 0 does all of it while the others wait for its decision.
        """
        self.last_val_step = self.step
        if not self.main:
            return bool(distributed.broadcast_object(None))
        stop = self._validate_and_save()
        if self.dist.active:
            distributed.broadcast_object(stop)
        return stop

    def _validate_and_save(self) -> bool:
        metrics = self.validate()
        cer = metrics.get("cer")
        improved = cer is not None and (self.best_cer is None or cer < self.best_cer - self.config.min_delta)
        if improved:
            self.best_cer, self.best_step, self.bad_validations = cer, self.step, 0
        else:
            self.bad_validations += 1
        rate, eta = self._progress_numbers()
        epoch = round(self._epoch_now(), 4)
        row = {"kind": "val", "step": self.step, "epoch": epoch,
               "train_loss": (self._loss_sum / self._loss_n) if self._loss_n else None,
               "lr": self.lr_at(max(0, self.step - 1)), "samples_per_s": round(rate, 2),
               "eta_s": _finite(eta) and round(eta, 1), **metrics,
               "best_cer": self.best_cer, "is_best": improved, "nonfinite_skipped": self.nonfinite,
               "elapsed_s": round(self._train_time + self._val_time, 2)}
        row = {k: (_finite(v) if isinstance(v, float) else v) for k, v in row.items()}
        self._loss_sum, self._loss_n = 0.0, 0
        name = self.checkpoint(row, improved)
        self.save_last(row)
        self.write_metrics(row)
        acc = row.get("accuracy")
        self.log(f"validation at step {self.step}: val_loss {row.get('val_loss')} accuracy "
                 f"{acc if acc is None else f'{acc:.4f}'} cer {cer if cer is None else f'{cer:.4f}'}"
                 f"{' (best)' if improved else ''} -> {name}")
        if improved:
            self.best_accuracy = acc
        self.set_status(step=self.step, epoch=epoch, best_cer=self.best_cer, best_step=self.best_step,
                        best_accuracy=self.best_accuracy, nonfinite_skipped=self.nonfinite,
                        batch_size=self.batch_size)
        self.emit(Validation(self.step, self.max_steps, epoch, row, improved, self.best_cer, name))
        return bool(self.config.patience and self.bad_validations >= self.config.patience)

    def _shard(self, plan: list[list[int]]) -> list[list[int]]:
        return shard_plan(plan, self.dist.rank, self.dist.world_size)

    def _epoch_now(self) -> float:
        return self.epoch + self.position[0] / max(1, len(self._shard(self.plan)) if self.plan else 1)

    def check_replicas(self) -> None:
        """Under torchrun: fail loudly unless every rank ended with the same weights."""
        if not self.dist.active:
            return
        same, sums = distributed.check_same_on_all(self.model)
        if not same:
            raise RunError(f"the {self.dist.world_size} torchrun processes ended with different weights "
                           f"(checksums {sums}): this is a bug; please report it with RUN/log.txt")
        self.message(f"weights identical on all {self.dist.world_size} processes (checksum {sums[0]:.6g})")

    def run(self) -> str:
        """Train to the end; returns the reason it ended ("max_steps", "early_stopping")."""
        import torch

        cfg = self.config
        self.log(f"training {len(self.train.indices)} lines, validating on {len(self.val.indices)} on "
                 f"{self.device}; {self.max_steps} steps from step {self.step}; batch {self.batch_size}; "
                 f"charset {len(self.charset)} characters; origin {cfg.origin}")
        if self.dist.active:
            self.log(f"torchrun: {self.dist.world_size} processes ({self.dist.backend}), batch {self.batch_size} "
                     f"per process = {self.batch_size * self.dist.world_size} lines per step, "
                     f"{self.steps_per_epoch} steps per epoch")
        while self.step < self.max_steps:
            if self.plan is None:
                self.plan = _plan_epoch(self.train.widths, self.batch_size, cfg.seed, self.epoch)
                self.position = (0, 0)
            first, done_in_first = self.position
            source = _Batches(self.train, self._shard(self.plan)[first:], self.height,
                              cfg.augment if cfg.augment.enabled else None, cfg.seed, self.epoch)
            loader = torch.utils.data.DataLoader(source, batch_size=None, shuffle=False,
                                                 num_workers=cfg.workers, pin_memory=False)
            tick = time.monotonic()
            for offset, batch in enumerate(loader):
                k = first + offset
                total = len(batch["positions"])
                done = done_in_first if offset == 0 else 0
                while done < total:
                    if self.stop_requested():
                        raise _Stop()
                    n = min(self.batch_size, total - done)
                    try:
                        loss = self.train_step(batch["images"][done:done + n], batch["targets"][done:done + n])
                    except Exception as exc:
                        if not _is_oom(exc):
                            raise
                        if self.dist.active:  # ranks must agree on batch shapes: no silent halving
                            raise RunError(f"out of memory at step {self.step + 1} with batch {n} on {self.device} "
                                           f"(rank {self.dist.rank}): start again with a smaller batch_size") from None
                        self.optimizer.zero_grad(set_to_none=True)
                        if self.device.startswith("cuda"):
                            torch.cuda.empty_cache()
                        if n <= 1:
                            raise RunError(f"out of memory at step {self.step + 1} even with one line per batch "
                                           f"on {self.device}: use a smaller model or another device") from None
                        self.batch_size = max(1, n // 2)
                        self.oom_halvings += 1
                        self.message(f"out of memory at step {self.step + 1} with batch {n}: batch size halved "
                                     f"to {self.batch_size}", "warning")
                        continue
                    done += n
                    self.position = (k, done) if done < total else (k + 1, 0)
                    trained, loss = self._agree(n, loss)
                    now = time.monotonic()
                    self._after_step(trained, now - tick, loss)
                    stop_early = False
                    if self.step % cfg.val_interval == 0 or self.step >= self.max_steps:
                        stop_early = self._validation()
                    tick = time.monotonic()
                    if stop_early:
                        self.message(f"early stopping at step {self.step}: validation CER did not improve by "
                                     f"more than {cfg.min_delta} for {cfg.patience} validations "
                                     f"(best {self.best_cer} at step {self.best_step})")
                        return "early_stopping"
                    if self.step >= self.max_steps:
                        return "max_steps"
            self.epoch += 1
            self.plan = None
        if self.last_val_step != self.step:
            self._validation()
        return "max_steps"


def fit(config: TrainConfig, data: PathLike, run_dir: PathLike, callback: Optional[Callback] = None,
        stop_event: Optional[threading.Event] = None, resume: bool = False) -> Run:
    """Train `config` on dataset folder `data` into `run_dir` in this process; returns the Run.

    Stops cleanly (state ``canceled``, last.pt saved) when `stop_event` is set, RUN/cancel.request
    appears or SIGTERM reaches a job. ``resume=True`` continues from RUN/checkpoints/last.pt with the
    same step counter, optimizer, schedule and random state. Raises DatasetError/ModelError/RunError
    after recording the error in RUN/status.json.

    >>> # run = fit(TrainConfig(max_steps=200, val_interval=50), "data/receipts", "runs/r1")
    """
    run_dir = Path(run_dir)
    group = distributed.current()
    problem = None
    if group.main:
        try:
            _prepare_fit(config, data, run_dir, resume)
        except OcrtrainError as exc:
            problem = str(exc)
            if group.active:
                distributed.broadcast_object(problem)
            raise
    if group.active:  # the others start once rank 0 has the run folder ready
        problem = distributed.broadcast_object(problem)
        if problem is not None:
            raise RunError(f"rank 0 could not prepare {run_dir}: {problem}")
    trainer = _Trainer(config, data, run_dir, callback, stop_event, resume)
    if not group.main:
        return _fit_follower(trainer)
    started = _now()
    # cancel() may send SIGTERM only when this process treats it as a stop request (a job), never
    # to, say, a notebook kernel that runs fit() in a thread.
    signals = bool(getattr(signal.getsignal(signal.SIGTERM), "cooperative_stop", False))
    trainer.set_status(state="running", started=started, ended=None, error=None, pid=os.getpid(),
                       host=socket.gethostname(), interrupted=False, reason=None, signals=signals)
    emit(callback, StatusChange("running", 0, 0, str(run_dir)))
    state, error, reason = "failed", None, None
    try:
        trainer.setup()
        trainer._metrics_fh = open(run_dir / METRICS, "a", encoding="utf-8")
        if group.active:
            trainer.set_status(distributed={"world_size": group.world_size, "backend": group.backend})
        trainer.set_status(device=trainer.device, step=trainer.step, max_steps=trainer.max_steps,
                           batch_size=trainer.batch_size, charset_size=len(trainer.charset),
                           train_samples=len(trainer.train.indices), val_samples=len(trainer.val.indices),
                           rejected=len(trainer.rejected))
        emit(callback, StatusChange("running", trainer.step, trainer.max_steps, str(run_dir)))
        try:
            reason = trainer.run()
            trainer.check_replicas()
            state = "finished"
        except _Stop:
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
        if trainer._metrics_fh is not None:
            trainer._metrics_fh.close()
        if error is not None:
            trainer.log(f"failed: {error}", "error")
        else:
            trainer.log(f"{state} at step {trainer.step}/{trainer.max_steps} ({reason})")
        _quietly(lambda: trainer.set_status(
            state=state, ended=_now(), error=error, reason=reason, step=trainer.step,
            max_steps=trainer.max_steps, nonfinite_skipped=trainer.nonfinite, oom_halvings=trainer.oom_halvings,
            best_cer=trainer.best_cer, best_step=trainer.best_step))
        emit(callback, StatusChange(state, trainer.step, trainer.max_steps, str(run_dir), error, reason))
        (run_dir / "cancel.request").unlink(missing_ok=True)
    return Run(run_dir)


def _prepare_fit(config: TrainConfig, data: PathLike, run_dir: Path, resume: bool) -> None:
    if resume:
        if not (run_dir / CONFIG).is_file():
            raise RunError(f"{run_dir} is not a run folder (no {CONFIG}): start a new run instead of resuming")
    else:
        st = Run(run_dir).status() if (run_dir / STATUS).is_file() else {}
        fresh_job = st.get("state") in ("created", "queued") and (run_dir / CONFIG).is_file() \
            and not (run_dir / METRICS).exists()
        if not fresh_job:
            prepare_run(config, data, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)


def _fit_follower(trainer: _Trainer) -> Run:
    """fit() on a torchrun rank other than 0: train in step with rank 0, write nothing."""
    trainer.setup()
    try:
        trainer.run()
        trainer.check_replicas()
    except _Stop:
        pass
    return Run(trainer.run_dir)


def _no_log(text: str, level: str = "info") -> None:
    log.debug(text)


def _quietly(fn) -> None:
    """Call `fn`; an OSError (e.g. a full disk while recording a failure) is logged, not raised."""
    try:
        fn()
    except OSError as exc:
        log.error("could not update the run status: %s", exc)
