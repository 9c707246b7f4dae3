"""The small interface between the generic training loop (:mod:`ocrtrain.trainer`) and a task.

The trainer owns everything a run needs whatever it trains: steps, warm-up and schedule, clipping,
mixed precision, out-of-memory halving, non-finite skips, torchrun agreement, cancel, checkpoint
cadence and versions, early stopping, exact resume and events. A task owns what is specific: the
model and its data, how an epoch is planned and batched, the loss, validation and the checkpoint
format. Text-line recognition (:mod:`ocrtrain.tasks.recognition`) is the first task.

>>> from ocrtrain.tasks import task_names
>>> "recognition" in task_names()
True
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["Task", "TaskContext"]


@dataclass(frozen=True)
class TaskContext:
    """What a task gets from the trainer at setup."""

    config: Any               # the run's TrainConfig
    data: Any                 # a DataSpec (resolved): training sources and validation sets
    device: str               # "cpu" or "cuda:N"
    run_dir: Path
    main: bool                # rank 0 (writes the run folder) or the only process
    message: Callable[[str, str], None]   # message(text, level) -> the run log and the callback
    write_rejected: Callable[[list], None]  # rows of labels/samples the task cannot use


class Task:
    """Base class of a training task; subclasses implement the methods that raise NotImplementedError."""

    name = "task"
    #: Lower is better for these metrics (anything else, e.g. accuracy, higher is better).
    lower_is_better = frozenset({"cer", "wer", "ned", "loss", "val_loss"})
    default_metric = "loss"
    model: Any = None

    # ---- setup
    def setup(self, ctx: TaskContext, resume_from: Optional[Path]) -> None:
        """Build or load the model (``self.model``, on ctx.device) and read the data.

        `resume_from` is the run's last.pt when resuming: load the model from it, not from the origin.
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the run log (what is trained on what)."""
        return self.name

    def status_fields(self) -> dict:
        """Extra fields for status.json once set up (e.g. sample counts)."""
        return {}

    def data_fingerprint(self) -> dict:
        """{training source path: content hash} now; the trainer compares it with the run's record at
        resume and between epochs (a dataset replaced under a run is never trained on silently)."""
        return {}

    def parameters(self):
        """The parameters to optimise (default: those of self.model that require grad)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    # ---- epochs and batches
    def plan_epoch(self, epoch: int, batch_size: int, seed: int) -> list[list[int]]:
        """Batches of sample positions for `epoch`; must be deterministic in its arguments."""
        raise NotImplementedError

    def batch_source(self, batches: Sequence[list[int]], epoch: int, seed: int) -> Sequence[dict]:
        """Map-style source (a DataLoader with batch_size=None reads it): item i = batch i, a dict."""
        raise NotImplementedError

    def batch_len(self, batch: dict) -> int:
        return len(batch["positions"])

    def slice_batch(self, batch: dict, start: int, stop: int) -> dict:
        """Part of a batch (after an out-of-memory halving)."""
        return {k: (v[start:stop] if hasattr(v, "__getitem__") else v) for k, v in batch.items()}

    # ---- steps
    def forward(self, net, batch: dict, device: str):
        """Model outputs for a training batch (the trainer wraps this in autocast)."""
        raise NotImplementedError

    def loss(self, outputs, batch: dict):
        """Scalar loss tensor from the outputs (computed in float32, outside autocast)."""
        raise NotImplementedError

    def validate(self, model, autocast: Callable) -> dict[str, dict]:
        """Metrics per validation set, in order (the first is the default for picking the best)."""
        raise NotImplementedError

    # ---- checkpoints and resumable state
    def save_checkpoint(self, path: Path, step: int, metrics: dict, extra: Optional[dict] = None) -> None:
        raise NotImplementedError

    def load_resume_state(self, path: Path) -> dict:
        """The dict saved by save_checkpoint(extra=...) plus "step", for resuming."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Task state to keep in last.pt beyond the model (plain data)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
