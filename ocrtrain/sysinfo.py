"""How many CPUs this process may really use: affinity mask and container CPU quota.

``os.cpu_count()`` counts the machine's cores. A container (a Binder pod, a Kubernetes job, a
``docker run --cpus=2``) is usually limited by a cgroup CPU quota instead, and a process can be
pinned to fewer cores (``taskset``). Starting one worker per machine core there oversubscribes the
quota: the workers are throttled and run slower than fewer would. :func:`available_cpus` takes the
smallest of the three. Outside Linux only ``os.cpu_count()`` applies. torch makes the same
mistake for its own threads: :func:`limit_torch_threads` lowers them to that count.

>>> available_cpus() >= 1
True
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Union

__all__ = ["available_cpus", "affinity_cpus", "cgroup_cpu_limit", "limit_torch_threads"]

PathLike = Union[str, Path]


def affinity_cpus() -> int:
    """The cores this process may run on (``sched_getaffinity``), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_limit(folder: Path) -> Optional[float]:
    text = _read(folder / "cpu.max")  # "max 100000" (no quota) or "200000 100000"
    parts = text.split() if text else []
    if len(parts) == 2 and parts[0] != "max":
        try:
            quota, period = int(parts[0]), int(parts[1])
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


def _v1_limit(folder: Path) -> Optional[float]:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        quota_us, period_us = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _ancestors(root: Path, relative: str) -> list[Path]:
    """``root/a/b``, ``root/a``, ``root``: a quota of a parent group caps its children too."""
    parts = [p for p in relative.strip("/").split("/") if p and p not in (".", "..")]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_cpu_limit(proc_cgroup: PathLike = "/proc/self/cgroup", fs_root: PathLike = "/sys/fs/cgroup") -> Optional[float]:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when there is none.

    Reads cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) along the
    group's path and its parents, and returns the smallest quota found.
    """
    lines = _read(Path(proc_cgroup))
    if lines is None:
        return None
    fs_root = Path(fs_root)
    limits = []
    for line in lines.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            limits += [_v2_limit(folder) for folder in _ancestors(fs_root, relative)]
        elif "cpu" in controllers.split(","):
            for mount in (fs_root / controllers, fs_root / "cpu", fs_root / "cpu,cpuacct"):
                limits += [_v1_limit(folder) for folder in _ancestors(mount, relative)]
    found = [x for x in limits if x is not None]
    return min(found) if found else None


def available_cpus() -> int:
    """CPUs to plan work for: the affinity mask, capped by the cgroup quota (rounded up), at least 1."""
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return cpus


def limit_torch_threads() -> Optional[int]:
    """Lower torch's CPU threads to :func:`available_cpus` when it counted more; the new count, or
    None when nothing changed.

    torch starts one thread per core of the machine: a Binder pod with a 2-CPU quota on a 32-core
    node would run 32 threads that the quota throttles. ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``,
    when set, are the user's choice and are kept.
    """
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return None
    import torch

    cpus = available_cpus()
    if torch.get_num_threads() <= cpus:
        return None
    torch.set_num_threads(cpus)
    return cpus
