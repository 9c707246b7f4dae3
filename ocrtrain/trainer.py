"""The generic training loop: everything a run needs whatever the task trains.

Steps, warm-up and schedule, gradient clipping, mixed precision, CUDA out-of-memory halving,
non-finite skips, torchrun agreement, cooperative cancel, checkpoint cadence and versions, early
stopping on a chosen validation metric, and the state for an exact resume. It knows nothing of
CTC, charsets or images: a :class:`ocrtrain.tasks.Task` supplies model, batches, loss and metrics.
:func:`ocrtrain.train.fit` is the entry point.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Optional

from . import distributed
from .errors import ConfigError, RunError
from .events import Callback, Event, Message, emit
from .trainer_io import RunWriter
from .trainstate import (effective_warmup, lr_factor, rng_state, run_length, seed_everything, set_rng_state,
                         shard_plan)

__all__ = ["Trainer", "Stop", "MAX_NONFINITE_IN_A_ROW", "forward", "parse_select"]

log = logging.getLogger(__name__)

#: Steps in a row with a non-finite loss/gradient after which training gives up.
MAX_NONFINITE_IN_A_ROW = 25


class Stop(Exception):
    """Raised inside the loop when a stop was requested (handled as ``canceled``)."""


def forward(task, net, batch, device):
    """The task's forward call, separate so tests can inject faults (e.g. an out-of-memory error)."""
    return task.forward(net, batch, device)


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def parse_select(select: str, sets: list[str], default_metric: str) -> tuple[str, str]:
    """``"NAME:METRIC"``, ``"METRIC"`` (first set) or "" (first set, the task's default metric)."""
    if not select:
        return sets[0], default_metric
    name, sep, metric = select.rpartition(":")
    if not sep:
        name, metric = sets[0], select
    if name not in sets:
        raise ConfigError(f"select {select!r} names validation set {name!r}, but the run validates on "
                          f"{', '.join(sets)}: use one of those (e.g. {sets[0]}:{default_metric})")
    return name, metric


class Trainer:
    """One training session (a fresh start or a resume) of one run folder with one task."""

    def __init__(self, task, config, data, run_dir: Path, callback: Optional[Callback],
                 stop_event: Optional[threading.Event], resume: bool, events):
        self.task = task
        self.config = config
        self.data = data
        self.run_dir = run_dir
        self.callback = callback
        self.stop_event = stop_event
        self.resume = resume
        self.events = events  # the TrainStep / Validation event classes of ocrtrain.train
        # Under torchrun every rank trains; rank 0 alone writes the run folder and reports.
        self.dist = distributed.current()
        self.main = self.dist.main
        self.io = RunWriter(run_dir, self.main)
        self.net = None
        self._agreed_stop = False
        self.step = self.epoch = self.max_steps = 0
        self.batch_size = config.batch_size
        self.position = (0, 0)  # (batch index in the epoch plan, samples of that batch already trained)
        self.plan: Optional[list[list[int]]] = None
        self.best_value: Optional[float] = None
        self.best_step: Optional[int] = None
        self.best_metrics: dict = {}
        self.bad_validations = self.nonfinite = self.nonfinite_in_a_row = self.oom_halvings = 0
        self.samples_seen = 0
        self.last_val_step = -1
        self.select_name, self.select_metric = "", ""
        self.baseline: dict = {}  # metrics per validation set at step 0 (the origin)
        self._window: list[tuple[int, float]] = []
        self._train_time = self._val_time = self._last_val_seconds = 0.0
        self._loss_sum, self._loss_n = 0.0, 0
        self._last_status_write = 0.0
        self._last_save = time.monotonic()
        self._last_log_line = time.monotonic()

    # ---- reporting
    def message(self, text: str, level: str = "info") -> None:
        if self.main:
            self.io.log(text, level)
            emit(self.callback, Message(text, level))

    def emit(self, event: Event) -> None:
        if self.main:
            emit(self.callback, event)

    def set_status(self, **fields) -> None:
        self.io.status(**fields)
        self._last_status_write = time.monotonic()

    def stop_requested(self) -> bool:
        if self.dist.active:  # every rank must stop at the same step: see _agree()
            return self._agreed_stop
        return self._local_stop()

    def _local_stop(self) -> bool:
        return bool(self.stop_event is not None and self.stop_event.is_set()) or \
            (self.main and self.io.cancel_requested())

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
    def _pick_device(self) -> str:
        from .train import resolve_device

        cfg = self.config
        if not self.dist.active:
            return resolve_device(cfg.device)
        device = f"cuda:{self.dist.local_rank}" if self.dist.backend == "nccl" else "cpu"
        if cfg.device not in ("auto", "cpu", "cuda") and cfg.device != device:
            self.message(f"device {cfg.device} ignored under torchrun: rank {self.dist.rank} uses {device}", "warning")
        return device

    def setup(self) -> None:
        from .tasks import TaskContext

        cfg = self.config
        self.device = self._pick_device()
        if cfg.amp != "off" and not self.device.startswith("cuda"):
            raise ConfigError(f"amp {cfg.amp} needs a CUDA device but the run uses {self.device}: set amp off")
        resume_from, self.state, exact = self._resume_point() if self.resume else (None, None, True)
        if resume_from is None:
            seed_everything(cfg.seed)
            if self.resume:  # nothing to continue from: start over, without duplicating old rows
                self.io.truncate_after(-1)
        ctx = TaskContext(cfg, self.data, self.device, self.run_dir, self.main, self.message, self.io.rejected)
        self.task.setup(ctx, resume_from)
        self.check_data()
        self._wrap_model()
        self._make_optimizer()
        steps_per_epoch = len(self._shard(self.task.plan_epoch(0, cfg.batch_size, cfg.seed)))
        if steps_per_epoch == 0:
            raise RunError(f"the training data makes fewer batches of {cfg.batch_size} than the "
                           f"{self.dist.world_size} torchrun processes: lower batch_size or --nproc_per_node, "
                           "or add data")
        self.steps_per_epoch = steps_per_epoch
        self.max_steps = run_length(cfg.max_steps, cfg.max_epochs, steps_per_epoch)[0]
        if self.state is not None:
            self._restore(self.state) if exact else self._restore_inexact(self.state)

    def _resume_point(self) -> tuple[Optional[Path], Optional[dict], bool]:
        """(checkpoint, its state, exact): last.pt, else the newest readable step checkpoint (weights and
        step only: not exact), else (None, None, True) = start again from the origin."""
        from .errors import ModelError
        from .runfolder import list_checkpoints

        last = self.io.checkpoint_path("last")
        candidates = [last] + [self.io.ckpt_dir / n for n in reversed(list_checkpoints(self.run_dir))
                               if n.startswith("step-")]
        for path in candidates:
            if not path.is_file():
                continue
            try:
                state = self.task.load_resume_state(path)
            except ModelError as exc:
                self.message(f"cannot resume from {path} ({exc}); trying an older checkpoint", "warning")
                continue
            exact = path == last
            self.message(f"resuming from {path} at step {state['step']}" + (
                "" if exact else " (no readable last.pt: weights and step only; optimizer and data order "
                                 "start afresh, so this is not an exact resume)"), "info" if exact else "warning")
            return path, state, exact
        self.message(f"no checkpoint to resume from in {self.io.ckpt_dir}: starting again from origin "
                     f"{self.config.origin}", "warning")
        return None, None, True

    def check_data(self) -> None:
        """RunError when a training source is no longer the data this run started on."""
        recorded = self.io.recorded_fingerprint()
        now = self.task.data_fingerprint()
        for path, value in now.items():
            before = recorded.get(path)
            if before and value and before != value:
                raise RunError(f"dataset {path} changed since this run started (content hash {before[:12]} -> "
                               f"{value[:12]}): put the original back and `ocrtrain resume {self.run_dir}`, or "
                               f"start a new run with origin run:{self.run_dir}@last on the new data")

    def _wrap_model(self) -> None:
        import torch

        cfg = self.config
        self.model = self.task.model
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            # DDP broadcasts rank 0's weights here and averages gradients in backward().
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.dist.local_rank] if self.device.startswith("cuda") else None)
        if cfg.compile:
            # Input sizes change from batch to batch: one dynamic graph instead of a recompile per size.
            self.net = torch.compile(self.net, dynamic=True)

    def _make_optimizer(self) -> None:
        import torch

        cfg = self.config
        self.params = list(self.task.parameters())
        # On CUDA one fused kernel updates all parameters instead of a launch per tensor.
        fused = {"fused": True} if self.device.startswith("cuda") else {}
        if cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        elif cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        else:  # EasyOCR / deep-text-recognition-benchmark defaults
            self.optimizer = torch.optim.Adadelta(self.params, lr=cfg.lr, rho=0.95, eps=1e-8,
                                                  weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None

    def _restore_inexact(self, st: dict) -> None:
        self.step = int(st["step"])
        self.epoch, batch = divmod(self.step, self.steps_per_epoch)
        self.position = (batch, 0)
        self.plan = self.task.plan_epoch(self.epoch, self.batch_size, self.config.seed)
        self.last_val_step = self.step
        best = self.io.best_metrics()
        if best is not None:
            self.best_step, self.best_metrics = best
        self.io.truncate_after(self.step)

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
        self.best_value = tr.get("best_value", tr.get("best_cer"))
        self.best_step = tr.get("best_step")
        self.best_metrics = dict(tr.get("best_metrics") or {})
        if not self.best_metrics and tr.get("best_accuracy") is not None:
            self.best_metrics = {"cer": tr.get("best_cer"), "accuracy": tr.get("best_accuracy")}
        self.bad_validations = int(tr.get("bad_validations", 0))
        self.nonfinite = int(tr.get("nonfinite", 0))
        self.oom_halvings = int(tr.get("oom_halvings", 0))
        self.last_val_step = int(tr.get("last_val_step", self.step))
        self.baseline = dict(tr.get("baseline") or {})
        self.task.load_state_dict(st.get("task") or {})
        set_rng_state(st["rng"], self.device)
        # Rows written after last.pt (the process died later) would duplicate the steps we redo.
        self.io.truncate_after(self.step)

    # ---- steps
    def lr_at(self, step: int) -> float:
        return self.config.lr * lr_factor(step, effective_warmup(self.config.warmup_steps, self.max_steps),
                                          self.max_steps, self.config.schedule)

    def autocast(self):
        import contextlib

        import torch

        if self.config.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def train_step(self, batch: dict) -> Optional[float]:
        """One optimizer step; returns the loss, or None when it was skipped as non-finite."""
        import torch

        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            outputs = forward(self.task, self.net, batch, self.device)
        loss = self.task.loss(outputs, batch)
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

    def _halve_after_oom(self, n: int) -> None:
        import torch

        if self.dist.active:  # ranks must agree on batch shapes: no silent halving
            raise RunError(f"out of memory at step {self.step + 1} with batch {n} on {self.device} "
                           f"(rank {self.dist.rank}): start again with a smaller batch_size") from None
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if n <= 1:
            raise RunError(f"out of memory at step {self.step + 1} even with one sample per batch "
                           f"on {self.device}: use a smaller model or another device") from None
        self.batch_size = max(1, n // 2)
        self.oom_halvings += 1
        self.message(f"out of memory at step {self.step + 1} with batch {n}: batch size halved "
                     f"to {self.batch_size}", "warning")

    # ---- state
    def extra_state(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"schedule": self.config.schedule, "lr": self.config.lr,
                          "warmup_steps": effective_warmup(self.config.warmup_steps, self.max_steps),
                          "max_steps": self.max_steps},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(self.device),
            "epoch": self.epoch,
            "samples_seen": self.samples_seen,
            "task": self.task.state_dict(),
            "trainer": {
                "max_steps": self.max_steps, "batch_size": self.batch_size, "position": list(self.position),
                "world_size": self.dist.world_size, "plan": self.plan, "best_value": self.best_value,
                "best_cer": self.best_metrics.get("cer"), "best_accuracy": self.best_metrics.get("accuracy"),
                "best_metrics": self.best_metrics, "best_step": self.best_step,
                "bad_validations": self.bad_validations, "nonfinite": self.nonfinite,
                "oom_halvings": self.oom_halvings, "last_val_step": self.last_val_step,
                "baseline": self.baseline,
            },
        }

    def save_last(self, metrics: Optional[dict] = None) -> None:
        self._last_save = time.monotonic()
        if self.main:
            self.io.guarded("save last.pt", self.task.save_checkpoint, self.io.checkpoint_path("last"),
                            self.step, metrics or {}, self.extra_state())

    def _shard(self, plan: list[list[int]]) -> list[list[int]]:
        return shard_plan(plan, self.dist.rank, self.dist.world_size)

    def epoch_now(self) -> float:
        return self.epoch + self.position[0] / max(1, len(self._shard(self.plan)) if self.plan else 1)

    def check_replicas(self) -> None:
        """Under torchrun: fail loudly unless every rank ended with the same weights."""
        if not self.dist.active:
            return
        same, sums = distributed.check_same_on_all(self.model)
        if not same:
            raise RunError(f"the {self.dist.world_size} torchrun processes ended with different weights "
                           f"(checksums {sums}): this is a bug; please report it with the run's log")
        self.message(f"weights identical on all {self.dist.world_size} processes (checksum {sums[0]:.6g})")

    def run(self) -> str:
        """Train to the end; returns the reason it ended ("max_steps", "early_stopping")."""
        from .trainer_loop import run_loop

        return run_loop(self)
