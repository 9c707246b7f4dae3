"""Runs as jobs: separate processes, one per device at a time, cancel, kill -9 + resume, listing."""
from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from ocrtrain.cli import main
from ocrtrain.errors import RunError
from ocrtrain.runs import (Run, cancel, create_run_dir, launch, list_runs, new_run_name, pid_alive, resume)
from ocrtrain.train import TrainConfig

FAST = dict(batch_size=4, val_limit=4, workers=0, warmup_steps=1, freeze_feature_extractor=True, device="cpu")


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_run_names_and_folders(tmp_path):
    assert re.fullmatch(r"\d{8}-\d{6}-[a-z]+-[a-z]+", new_run_name())
    a, b = create_run_dir(tmp_path), create_run_dir(tmp_path)
    assert a != b and a.parent == b.parent == tmp_path
    assert create_run_dir(tmp_path, "mine").name == "mine"
    with pytest.raises(RunError, match="already exists"):
        create_run_dir(tmp_path, "mine")
    with pytest.raises(RunError, match="does not exist"):
        Run(tmp_path / "nope")


def test_queue_then_cancel_running_job(tiny_dataset, tmp_path):
    root = tmp_path / "runs"
    first = launch(TrainConfig(**FAST, max_steps=400, val_interval=2), tiny_dataset, runs_root=root, name="first")
    second = launch(TrainConfig(**FAST, max_steps=2, val_interval=2), tiny_dataset, runs_root=root, name="second")
    assert first.status()["pid"] != second.status()["pid"]
    _wait_for(lambda: first.status()["state"] == "running" and first.status().get("step", 0) >= 1,
              what="the first job to train")
    time.sleep(0.5)  # give the second job time to reach the device lock
    assert second.status()["state"] == "queued"
    assert second.status().get("waiting_for", "").endswith("first")
    rows = {r["name"]: r for r in list_runs(root)}
    assert rows["first"]["state"] == "running" and rows["second"]["state"] == "queued"

    cancel(first.path)
    st = first.wait(timeout=60)
    assert st["state"] == "canceled" and 1 <= st["step"] < 400
    assert first.checkpoint_path("last").is_file()
    assert "canceled at step" in first.log_tail(20)
    _wait_for(lambda: not pid_alive(st["pid"]), what="the canceled job to exit")

    st2 = second.wait(timeout=60)
    assert st2["state"] == "finished" and st2["step"] == 2
    assert st2["started"] >= st["ended"]  # it started only when the device was free
    with pytest.raises(RunError, match="already finished"):
        cancel(second.path)


def test_killed_job_shows_interrupted_and_resumes_to_the_end(tiny_dataset, tmp_path, capsys):
    root = tmp_path / "runs"
    run = launch(TrainConfig(**FAST, max_steps=8, val_interval=2), tiny_dataset, runs_root=root, name="killed")
    _wait_for(lambda: (run.path / "checkpoints" / "last.pt").is_file(), what="the first last.pt")
    pid = run.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not pid_alive(pid), what="the job to die")
    st = run.status()
    assert st["state"] == "failed" and st["interrupted"] and "ocrtrain resume" in st["error"]
    assert 2 <= st["step"] < 8
    [row] = list_runs(root)
    assert row["state"] == "failed" and row["interrupted"]

    assert main(["runs", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["interrupted"] is True
    assert main(["resume", str(run.path)]) == 0
    st = run.status()
    assert st["state"] == "finished" and st["step"] == 8 and not st.get("interrupted")
    steps = [r["step"] for r in run.metrics("train")]
    assert steps == list(range(1, 9))  # rows after the checkpoint were replaced, not duplicated
    assert [r["step"] for r in run.metrics("val")] == [2, 4, 6, 8]
    assert main(["runs", str(root)]) == 0
    assert re.search(r"killed\s+finished\s+8/8", capsys.readouterr().out)
    with pytest.raises(RunError, match="already finished"):
        resume(run.path)


def test_cli_detach_and_cancel(tiny_dataset, tmp_path, capsys):
    root = tmp_path / "runs"
    assert main(["train", "--data", str(tiny_dataset), "--runs-root", str(root), "--detach", "--max-steps", "300",
                 "--batch-size", "4", "--val-limit", "4", "--workers", "0", "--warmup-steps", "1",
                 "--freeze-feature-extractor", "--device", "cpu"]) == 0
    run_dir = capsys.readouterr().out.strip()
    run = Run(run_dir)
    assert run.path.parent == root and run.status()["state"] in ("queued", "running")
    assert main(["cancel", run_dir, "--wait"]) == 0
    assert run.status()["state"] == "canceled"
    assert main(["resume", run_dir, "--detach"]) == 0
    _wait_for(lambda: run.status()["state"] == "running", what="the resumed job")
    cancel(run.path, wait=True)
    assert run.status()["state"] == "canceled"
