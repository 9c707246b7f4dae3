"""Quota-aware CPU counts: cgroup v2 cpu.max and v1 cfs quota files, parents included, and the affinity mask."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from ocrtrain import sysinfo


def _tree(tmp_path: Path, proc: str, files: dict) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (tmp_path / "self-cgroup").write_text(proc)
    return tmp_path / "self-cgroup", root


@pytest.mark.parametrize("proc,files,expected", [
    ("0::/\n", {"cpu.max": "max 100000\n"}, None),
    ("0::/\n", {"cpu.max": "150000 100000\n"}, 1.5),
    # a Binder-like pod: the quota sits on a parent of the process's own group
    ("0::/kubepods/pod1/c1\n", {"kubepods/pod1/cpu.max": "200000 100000\n", "kubepods/pod1/c1/cpu.max": "max 100000\n"}, 2.0),
    ("0::/a/b\n", {"a/cpu.max": "400000 100000\n", "a/b/cpu.max": "100000 100000\n"}, 1.0),
    ("4:cpu,cpuacct:/docker/x\n", {"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),
    ("1:cpu:/\n2:cpuacct:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ("0::/\n", {"cpu.max": "garbage\n"}, None),
    ("", {}, None),
])
def test_cgroup_cpu_limit(tmp_path, proc, files, expected):
    proc_file, root = _tree(tmp_path, proc, files)
    assert sysinfo.cgroup_cpu_limit(proc_file, root) == expected


def test_no_proc_file_means_no_quota(tmp_path):
    assert sysinfo.cgroup_cpu_limit(tmp_path / "missing", tmp_path) is None


def test_available_cpus_on_this_machine():
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = sysinfo.cgroup_cpu_limit()
    expected = affinity if limit is None else min(affinity, max(1, math.ceil(limit)))
    assert sysinfo.available_cpus() == expected >= 1


def test_available_cpus_follows_a_quota_and_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(sysinfo, "cgroup_cpu_limit", lambda: 1.2)
    monkeypatch.setattr(sysinfo, "affinity_cpus", lambda: 8)
    assert sysinfo.available_cpus() == 2
    monkeypatch.setattr(sysinfo, "cgroup_cpu_limit", lambda: 0.3)
    assert sysinfo.available_cpus() == 1
    monkeypatch.setattr(sysinfo, "cgroup_cpu_limit", lambda: None)
    assert sysinfo.available_cpus() == 8


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity masks here")
def test_affinity_mask_counts(tmp_path):
    import subprocess
    import sys

    cpu = sorted(os.sched_getaffinity(0))[0]
    code = f"import os; os.sched_setaffinity(0, {{{cpu}}}); from ocrtrain.sysinfo import available_cpus; print(available_cpus())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_synth_and_distributed_use_it():
    root = Path(sysinfo.__file__).parent
    assert "available_cpus()" in (root / "synth.py").read_text()
    assert "available_cpus()" in (root / "distributed.py").read_text()
    assert "os.cpu_count()" not in (root / "synth.py").read_text()
