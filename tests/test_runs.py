"""Runs as jobs: separate processes, one per device at a time, cancel, kill -9 + resume, listing."""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

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
    assert [r["step"] for r in run.metrics("val") if r["val_set"] == "val"] == [0, 2, 4, 6, 8]
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


def test_cli_runs_on_an_empty_folder_says_so_and_json_is_an_empty_list(tmp_path, capsys):
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out == "" and f"no runs under {tmp_path}" in out.err
    assert main(["runs", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cancel_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    assert main(["cancel", str(folder)]) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "is not a run folder" in err and "ocrtrain runs" in err
    assert list(folder.iterdir()) == []  # nothing written
    with pytest.raises(RunError, match="does not exist"):
        cancel(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("detach", [False, True])
def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path, capsys, detach):
    folder = tmp_path / "not-a-run"
    (folder / "notes").mkdir(parents=True)
    assert main(["resume", str(folder)] + (["--detach"] if detach else [])) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "is not a run folder" in err and "Traceback" not in err
    assert [p.name for p in folder.iterdir()] == ["notes"]  # nothing written, no job started
    assert main(["resume", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "missing").exists()


def _fake_running(run_dir, pid, **fields):
    from ocrtrain import runfolder

    runfolder.create_run(run_dir, {"format": "ocrtrain-run/1", "config": TrainConfig(**FAST).to_dict(),
                                   "data": "/d"})
    runfolder.update_status(run_dir, state="running", pid=pid, signals=True, **fields)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process tokens need /proc")
def test_cancel_signals_only_the_runs_own_job(tmp_path):
    import subprocess
    import sys

    from ocrtrain import runfolder
    from ocrtrain.jobs import job_token

    # A live process that is not this run's job: same pid in the status, but no token, another
    # process's token, or a token whose start time differs (a reused pid). None of them is signaled.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name, fields in [("no-token", {}), ("not-a-job", {"job": job_token(other.pid)}),
                             ("reused", {"job": f"{other.pid}:1"})]:
            run_dir = tmp_path / name
            _fake_running(run_dir, other.pid, **fields)
            cancel(run_dir)
            assert other.poll() is None, f"{name}: an unrelated process got SIGTERM"
            assert runfolder.cancel_requested(run_dir)
            state = Run(run_dir).status()["state"]
            # A reused pid means the job is gone: the run reads as interrupted and is marked canceled.
            assert state == ("canceled" if name == "reused" else "running"), name
    finally:
        other.kill()
        other.wait()


def test_cli_train_without_run_is_listed_under_the_home(tiny_dataset, _ocrtrain_home, capsys):
    from ocrtrain.home import runs_root

    assert runs_root() == _ocrtrain_home / "runs"
    assert main(["train", "--data", str(tiny_dataset), "--max-steps", "1", "--batch-size", "4", "--val-limit", "4",
                 "--val-interval", "1", "--workers", "0", "--warmup-steps", "0", "--freeze-feature-extractor",
                 "--device", "cpu"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("run folder: "))
    run_dir = line.removeprefix("run folder: ").split("  ")[0]
    rows = {r["path"]: r for r in list_runs()}  # the default root is the home's runs folder
    assert rows[run_dir]["state"] == "finished" and rows[run_dir]["step"] == 1
    assert main(["runs"]) == 0 and Run(run_dir).name in capsys.readouterr().out
    W = pytest.importorskip("ipywidgets")  # noqa: F841 - the dashboard's Monitor sees it too
    from ocrtrain.workbench import MonitorPanel, Workspace

    monitor = MonitorPanel(Workspace())
    row = next(r for r in monitor.rows if r["path"] == str(Path(run_dir).resolve()) or r["name"] == Run(run_dir).name)
    assert row["state"] == "finished" and row["best_cer"] is not None
    monitor.close()
