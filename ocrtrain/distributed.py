"""Multi-process training under ``torchrun``: this process's rank, and agreeing across ranks.

``torchrun --nproc_per_node=N -m ocrtrain train ...`` starts N copies of the CLI with RANK,
WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT set. :func:`init_from_env` joins them into one
``torch.distributed`` process group (NCCL on GPUs, gloo on CPU); the training loop then wraps the
model in :class:`torch.nn.parallel.DistributedDataParallel` and asks :func:`current` who it is.
Rank 0 alone writes the run folder; the others train their share of each epoch.

>>> current().world_size  # a plain process: one rank
1
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import ConfigError, RunError
from .sysinfo import available_cpus

__all__ = ["Dist", "launched_by_torchrun", "init_from_env", "current", "shutdown", "all_sum",
           "broadcast_object", "check_same_on_all"]

#: How long a rank waits for the others in a collective (rank 0 validating, writing checkpoints).
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the process group (rank 0 of 1 outside torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a whole number: start the run with "
                          "torchrun, or unset it") from None


def launched_by_torchrun() -> bool:
    """True when WORLD_SIZE says this process is one of several (torchrun with nproc > 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def current() -> Dist:
    """This process's rank and the group size (the default Dist when no group was joined)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), dist.get_backend())


def init_from_env(device: str = "auto") -> Dist:
    """Join the process group torchrun described in the environment (no-op for a single process).

    `device` is the TrainConfig device: cpu uses gloo; auto/cuda use NCCL on cuda:LOCAL_RANK when
    torch sees enough GPUs, else gloo on CPU (auto) or an error (cuda).
    """
    import torch
    import torch.distributed as dist

    if not launched_by_torchrun():
        return Dist()
    if dist.is_initialized():
        return current()
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", _env_int("WORLD_SIZE", 1))
    wants_cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested under torchrun but torch sees no CUDA device: use "
                          "--device cpu (gloo) or run on a GPU node")
    if wants_cuda and torch.cuda.device_count() < local_world:
        if device.startswith("cuda"):
            raise ConfigError(f"torchrun started {local_world} processes on this node but only "
                              f"{torch.cuda.device_count()} GPU(s) are visible: set --nproc_per_node to at most "
                              f"{torch.cuda.device_count()}")
        wants_cuda = False
    if wants_cuda:
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
        # N processes on one CPU: split the cores instead of oversubscribing them N times.
        cores = available_cpus()  # affinity mask and container CPU quota
        if "OMP_NUM_THREADS" not in os.environ or os.environ.get("OMP_NUM_THREADS") == "1":
            torch.set_num_threads(max(1, cores // max(1, local_world)))
    try:
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    except Exception as exc:  # bad MASTER_ADDR/PORT, a peer that never came
        raise RunError(f"could not join the torchrun process group ({backend}; {type(exc).__name__}: {exc}): "
                       "start all processes with the same torchrun command, or check MASTER_ADDR/MASTER_PORT") from exc
    return current()


def shutdown() -> None:
    """Leave the process group (safe to call when none was joined)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device():
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of `values` over all ranks (the values themselves for one process)."""
    import torch
    import torch.distributed as dist

    if not current().active:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (picklable objects only)."""
    import torch.distributed as dist

    if not current().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device() if dist.get_backend() == "nccl" else None)
    return box[0]


def check_same_on_all(model) -> tuple[bool, list[float]]:
    """Whether `model`'s parameters are identical on every rank (a float64 checksum from each).

    Buffers are left out: BatchNorm running statistics follow each rank's own last batch (DDP
    copies rank 0's at every forward, and rank 0's are the ones saved).
    """
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        checksum = sum(float(p.detach().double().abs().sum()) + float(p.detach().double().sum())
                       for p in model.parameters())
    if not current().active:
        return True, [checksum]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, checksum)
    return all(g == gathered[0] for g in gathered), [float(g) for g in gathered]
