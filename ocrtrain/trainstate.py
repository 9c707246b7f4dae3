"""Pieces of the training loop that any task shares: the learning-rate schedule, random state that
survives a resume, and size-bucketed epoch plans (also split between torchrun processes).

>>> lr_factor(0, warmup=10, total=100, schedule="cosine")
0.1
>>> shard_plan([[0], [1], [2], [3], [4]], rank=1, world_size=2)
[[1], [3]]
"""
from __future__ import annotations

import math
import random
from typing import Sequence

import numpy as np

__all__ = [
    "effective_warmup",
    "run_length",
    "lr_factor",
    "plan_epoch",
    "shard_plan",
    "sorted_batches",
    "rng_state",
    "set_rng_state",
    "seed_everything",
]


def run_length(max_steps: int, max_epochs: int, steps_per_epoch: int) -> tuple[int, int]:
    """(steps, epochs) a run trains: max_steps when set (0 = max_epochs whole epochs), and the
    epochs those steps start (the last may be partial).

    >>> run_length(500, 10, 167), run_length(0, 3, 167)
    ((500, 3), (501, 3))
    """
    steps = max_steps or max_epochs * steps_per_epoch
    return steps, -(-steps // max(1, steps_per_epoch))


def effective_warmup(warmup_steps: int, total_steps: int) -> int:
    """Warm-up steps actually used: a warm-up as long as the run (e.g. the default 20 with
    ``--max-steps 20``) would never reach the set learning rate, so it is cut to a tenth of the run."""
    if total_steps and warmup_steps >= total_steps:
        return total_steps // 10
    return warmup_steps


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at 0-based `step`: linear warm-up, then constant/cosine/linear."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def plan_epoch(sizes: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar-size samples: sort within shuffled pools, then shuffle the batches.

    Deterministic in (sizes, batch_size, seed, epoch), so a resumed run can rebuild any epoch.
    """
    rng = np.random.default_rng([seed & 0xFFFFFFFF, epoch, 7])
    order = rng.permutation(len(sizes)).tolist()
    pool = max(batch_size * 16, batch_size)
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda p: sizes[p])
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


def sorted_batches(sizes: Sequence[int], batch_size: int) -> list[list[int]]:
    """All samples in batches of similar size, in size order (validation: no shuffling needed)."""
    order = sorted(range(len(sizes)), key=lambda p: sizes[p])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def seed_everything(seed: int) -> None:
    """Seed torch, Python's and NumPy's global generators (a fresh run; a resume restores instead)."""
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)


def rng_state(device: str) -> dict:
    """torch/Python/NumPy (and CUDA) generator states as plain data a weights-only checkpoint holds."""
    import torch

    py = random.getstate()
    npst = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": [py[0], list(py[1]), py[2]],
             "numpy": {"kind": npst[0], "keys": npst[1].tolist(), "pos": int(npst[2]),
                       "has_gauss": int(npst[3]), "gauss": float(npst[4])}}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def set_rng_state(state: dict, device: str) -> None:
    """Restore what :func:`rng_state` saved."""
    import torch

    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst["kind"], np.array(npst["keys"], dtype=np.uint32), npst["pos"],
                         npst["has_gauss"], npst["gauss"]))
    if device.startswith("cuda") and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], torch.device(device))
