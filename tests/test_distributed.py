"""Multi-process training: real torchrun, two CPU processes with the gloo backend, real DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocrtrain.cli import main
from ocrtrain.dataset import Dataset
from ocrtrain.distributed import current, launched_by_torchrun
from ocrtrain.runs import Run
from ocrtrain.train import shard_plan

REPO = Path(__file__).resolve().parents[1]


def _torchrun(*args: str, nproc: int = 2) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    # --standalone picks a free port, so parallel test runs do not collide on 29500.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ocrtrain", "train", *args]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def test_shard_plan_gives_each_rank_its_own_equal_share():
    plan = [[i] for i in range(11)]
    shards = [shard_plan(plan, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]  # 11 batches: the last 2 wait for the next epoch
    seen = [b[0] for s in shards for b in s]
    assert len(seen) == len(set(seen)) == 9
    assert shard_plan(plan, 0, 1) is plan


def test_a_plain_process_is_rank_0_of_1():
    assert not launched_by_torchrun()
    group = current()
    assert (group.rank, group.world_size, group.main, group.active) == (0, 1, True, False)


def test_torchrun_two_gloo_processes_train_a_loadable_evaluable_model(tiny_dataset, tmp_path, capsys):
    run_dir = tmp_path / "ddp"
    proc = _torchrun("--data", str(tiny_dataset), "--run-dir", str(run_dir), "--max-steps", "6",
                     "--val-interval", "3", "--batch-size", "4", "--warmup-steps", "1", "--device", "cpu",
                     "--seed", "3", "--replay", "0")  # no replay lines: the epoch arithmetic below is exact
    out = _finish(proc)
    assert proc.returncode == 0, out
    status = Run(run_dir).status()
    assert status["state"] == "finished", status
    assert status["distributed"] == {"world_size": 2, "backend": "gloo"}
    log = (run_dir / "log.txt").read_text()
    assert "torchrun: 2 processes (gloo), batch 4 per process = 8 samples per step" in log
    assert "weights identical on all 2 processes" in log  # a gathered checksum, checked in the run
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4, 5, 6]  # one writer: no duplicate rows
    # 23 training lines in batches of 4 = 6 batches (one of 3 lines), 3 per rank: the first 3 steps
    # are one epoch, each line trained once by one of the ranks, and both ranks' lines are counted.
    counts = Dataset(tiny_dataset).counts()
    assert counts["train"] == 23
    assert sum(r["batch_size"] for r in train_rows[:3]) == 23
    assert [r["epoch"] for r in train_rows[2::3]] == [1.0, 2.0]
    assert [(r["step"], r["val_set"]) for r in rows if r["kind"] == "val"] == [
        (s, v) for s in (0, 3, 6) for v in ("val", "general")]  # step 0 = the origin, on every rank once
    assert out.count("run folder:") == 1  # only rank 0 prints

    # The model rank 0 saved is an ordinary run: evaluate it, export it, load the export.
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--data", str(tiny_dataset / "test"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["n"] == counts["test"]
    assert main(["export", str(run_dir), "--name", "ddp_receipts", "--out", str(tmp_path / "exp")]) == 0
    from ocrtrain.easyocr_interop import make_reader, read_lines
    from conftest import draw_line

    reader = make_reader(tmp_path / "exp", "ddp_receipts")
    assert len(read_lines(reader, [draw_line("Melk 42,90")])) == 1


def test_torchrun_cancel_stops_all_ranks_at_one_step_and_resume_finishes(tiny_dataset, tmp_path):
    run_dir = tmp_path / "ddp-cancel"
    proc = _torchrun("--data", str(tiny_dataset), "--run-dir", str(run_dir), "--max-steps", "40",
                     "--val-interval", "50", "--batch-size", "2", "--warmup-steps", "1", "--device", "cpu",
                     "--freeze-feature-extractor")
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and metrics.read_text().count('"kind": "train"') >= 2:
            (run_dir / "cancel.request").write_text("test")
            break
        time.sleep(0.2)
    out = _finish(proc)
    assert proc.returncode == 0, out  # canceled is a clean end for torchrun: not hung, not a crash
    status = Run(run_dir).status()
    assert status["state"] == "canceled", status
    stopped = status["step"]
    assert 2 <= stopped < 40
    assert (run_dir / "checkpoints" / "last.pt").is_file()

    resumed = _torchrun("--run-dir", str(run_dir), "--resume")
    out = _finish(resumed)
    assert resumed.returncode == 0, out
    status = Run(run_dir).status()
    assert status["state"] == "finished" and status["step"] == 40, status
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == list(range(1, 41))  # every step once: the ranks agreed where they stopped
